"""The published musicnn taggers against the demo model, on the demo test split, per shared tag.

The demo model is trained on the demo corpus; musicnn has heard only real recordings (MagnaTagATune, MSD) and
never a demo render. On the tags both vocabularies name (MTT: instruments, "classical", "dance", "choir";
MSD: "folk", "guitar", "happy", "sad", …), this prints per-tag AP and ROC-AUC of the demo model (its own
protocol: tag → track cosine, ``retrieval evaluate``) beside musicnn's probability of that tag, on the same
tracks and labels. Accuracy only — no timing.

    PYTHONPATH=. .venv/bin/python benchmarks/pretrained_on_demo.py [RUN]     # default: the `make demo` run
    PYTHONPATH=. .venv/bin/python benchmarks/pretrained_on_demo.py --smoke   # make test: a tiny corpus
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from retrieval.evaluation import retrieval_metrics


def compare(run: Path, split: str) -> list[dict]:
    """Per shared tag: {tag, model, positives, ap, roc_auc} for the run and each musicnn tagger."""
    from retrieval.config import expand_path
    from retrieval.data.assembly import prepare_data
    from retrieval.data.corpus import load_corpus
    from retrieval.pretrained.tagger import PretrainedTagger
    from retrieval.runs import load_run
    from retrieval.training.experiment import split_scores

    loaded = load_run(run)
    config = loaded.config
    data, _ = prepare_data(config, vocabulary=loaded.vocabulary, progress=False, need_audio=True,
                           need_listening=True, splits=("train", "valid", split))
    ids = data.splits[split].ids
    labels = data.splits[split].labels.numpy()
    tags = list(data.vocabulary.tags)
    ours = split_scores(loaded.model, data, split, config.eval.n_crops, config.eval.batch_size)
    located = load_corpus(expand_path(config.data.root)).audio_locator().locate(ids)
    keep = [i for i, track in enumerate(ids) if track in located.found]
    files = [str(located.found[ids[i]]) for i in keep]
    rows = []
    for name in ("musicnn-mtt", "musicnn-msd"):
        tagger = PretrainedTagger(name)
        lower = {label.lower(): j for j, label in enumerate(tagger.labels)}
        shared = [t for t in tags if t.lower() in lower]
        columns = [tags.index(t) for t in shared]
        usable = [c for c in columns if labels[keep][:, c].any() and not labels[keep][:, c].all()]
        if not usable:
            continue
        probabilities = tagger.embed_files(files)[0]
        theirs = probabilities[:, [lower[tags[c].lower()] for c in usable]]
        for who, scores in ((run.name or "run", ours[keep][:, usable]), (name, theirs)):
            metrics = retrieval_metrics(scores, labels[keep][:, usable], k=10)
            for i, c in enumerate(usable):
                rows.append({"tag": tags[c], "model": who, "vocabulary": name,
                             "positives": int(labels[keep][:, c].sum()), "ap": float(metrics.ap[i]),
                             "roc_auc": float(metrics.roc_auc[i])})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", nargs="?", default=None, help="a trained run folder (default: the demo run)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--smoke", action="store_true", help="make test: train a tiny run on a tiny corpus first")
    args = parser.parse_args(argv)
    from retrieval import paths

    with tempfile.TemporaryDirectory() as scratch:
        run = Path(args.run) if args.run else paths.demo_run_dir()
        if args.smoke:  # the tiny corpus' test split is too small to hold positives of the shared tags
            run, args.split = _tiny_run(Path(scratch)), "train"
        rows = compare(run, args.split)
    print(f"{args.split} split of {run}; AP and ROC-AUC per tag both vocabularies name")
    print("| tag | positives | vocabulary | model | AP | ROC-AUC |")
    print("|---|---:|---|---|---:|---:|")
    for row in rows:
        print(f"| {row['tag']} | {row['positives']} | {row['vocabulary']} | {row['model']} | {row['ap']:.3f} | "
              f"{row['roc_auc']:.3f} |")
    for vocabulary in sorted({row["vocabulary"] for row in rows}):
        for model in dict.fromkeys(row["model"] for row in rows if row["vocabulary"] == vocabulary):
            chosen = [row for row in rows if row["vocabulary"] == vocabulary and row["model"] == model]
            print(f"mean over the {len(chosen)} {vocabulary} tags, {model}: "
                  f"AP {np.mean([r['ap'] for r in chosen]):.3f}, ROC-AUC {np.mean([r['roc_auc'] for r in chosen]):.3f}")
    return 0


def _tiny_run(scratch: Path) -> Path:
    """A seconds-long run of ``configs/demo/tiny.yaml`` on a 48-track demo corpus (for --smoke)."""
    from retrieval.config import load_config
    from retrieval.data.demo import build_demo_corpus
    from retrieval.training.experiment import train_run

    corpus = scratch / "demo"
    build_demo_corpus(corpus, n_tracks=48, seed=0, seconds=5.0, workers=1, progress=False)
    tiny = Path(__file__).resolve().parents[1] / "configs" / "demo" / "tiny.yaml"
    config = load_config(tiny, [f"data.root={corpus}", "train.epochs=1", "train.steps=2"])
    train_run(config, scratch / "run", progress=False)
    return scratch / "run"


if __name__ == "__main__":
    raise SystemExit(main())
