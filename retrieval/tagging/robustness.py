"""Robustness of trained taggers to audio perturbations (Won et al., SMC 2020, REFERENCE §3).

For each run, every track of a split is decoded once at the model's sample rate; then, for the clean waveform and
for each perturbation at each strength (:data:`retrieval.augment.PERTURBATIONS`) applied to the *whole* track::

    file ──load_audio(sr)──▶ wave (T,) ──perturbation.apply──▶ wave' ──model front end──▶ features (n_mels, frames)
         ──equally_spaced_crops──▶ (eval.n_crops, n_mels, input_frames) ──predict_crops──▶ (n_tags,) probabilities

and the split's probabilities are scored with :func:`~retrieval.tagging.predict.tagging_summary` (macro ROC-AUC
and PR-AUC), the protocol of ``retrieval evaluate``. The clean row therefore equals
:func:`~retrieval.training.tagging.evaluate_tagging_run` on the same tracks, up to the rounding of its feature
cache (float16 log-mels, here float32 computed on the fly: differences of ~1e-3 in the figures).

Perturbations are named ``"name"`` (the registry's strengths) or ``"name=s1,s2"`` (chosen strengths), e.g.
``["time_stretch", "white_noise=40,20"]``. White noise is drawn from a ``torch.Generator`` seeded by
``(seed, track id, perturbation, strength)``, so a track gets the same noise whatever else is evaluated.

Example::

    result = robustness_table(["runs/tagging/fcn", "runs/tagging/cnnsa"], "runs/robustness",
                              perturbations=["pitch_shift=-2,2", "white_noise"])
    result["runs"][0]["perturbed"][0]      # {"perturbation": "pitch_shift", "strength": -2.0, "roc_auc": ...}

writes ``OUT/robustness.json`` (this dict) and ``OUT/robustness.md`` (one row per perturbation and strength, one
column per run, "ROC-AUC / PR-AUC"; then the drop in ROC-AUC relative to clean).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from retrieval.augment import PERTURBATIONS, Perturbation, get_perturbation
from retrieval.errors import AudioError, ConfigError, InputError
from retrieval.fileio import write_text_atomic
from retrieval.runs import Run, load_run
from retrieval.tagging.predict import tagging_summary

log = logging.getLogger(__name__)

__all__ = ["format_robustness_markdown", "robustness_table"]

JSON_FILE = "robustness.json"
MARKDOWN_FILE = "robustness.md"

#: One evaluated condition: a perturbation and its strength, or ``None`` for the clean input.
Condition = tuple[Perturbation, float] | None


# ---- which perturbations ------------------------------------------------------------------------------------
def _parse_perturbation(spec: str) -> list[tuple[Perturbation, float]]:
    """``"name"`` → the registry's strengths; ``"name=s1,s2"`` → those strengths (floats, in that order).

    Raises:
        ConfigError: an unknown name (listing the valid ones) or a strength that is not a number.
    """
    name, equals, values = spec.partition("=")
    perturbation = get_perturbation(name.strip())
    if not equals:
        return [(perturbation, s) for s in perturbation.strengths]
    try:
        strengths = [float(v) for v in values.split(",")]
    except ValueError:
        raise ConfigError(f"perturbation {spec!r}: strengths must be comma-separated numbers, e.g. "
                          f"'{perturbation.name}={','.join(f'{s:g}' for s in perturbation.strengths)}'") from None
    return [(perturbation, s) for s in strengths]


def _conditions(perturbations: Sequence[str] | None) -> list[tuple[Perturbation, float]]:
    """Every (perturbation, strength) to evaluate, in table order; ``None`` means the whole registry."""
    if isinstance(perturbations, str):
        raise ConfigError(f"perturbations must be a list of names, got the string {perturbations!r}; "
                          f"wrap it in a list: [{perturbations!r}]")
    specs = list(PERTURBATIONS) if perturbations is None else list(perturbations)
    conditions = [c for spec in specs for c in _parse_perturbation(spec)]
    seen = set()
    for perturbation, strength in conditions:
        if (perturbation.name, strength) in seen:
            raise ConfigError(f"perturbation {perturbation.name} at strength {strength:g} is listed twice "
                              f"in {specs}")
        seen.add((perturbation.name, strength))
    return conditions


def _generator(seed: int, track_id: str, perturbation: Perturbation, strength: float) -> torch.Generator:
    """A CPU generator seeded by a stable hash of ``(seed, track_id, perturbation, strength)`` (Python's
    ``hash`` of a string changes between processes, so it cannot be used)."""
    key = f"{seed}|{track_id}|{perturbation.name}|{float(strength)!r}".encode()
    return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1)


# ---- one run ------------------------------------------------------------------------------------------------
@torch.no_grad()
def _crops(loaded: Run, wave: torch.Tensor) -> torch.Tensor:
    """A whole waveform (T,) → ``eval.n_crops`` equally spaced crops of its features (n_crops, n_mels, frames)."""
    from retrieval.audio import equally_spaced_crops

    model = loaded.model
    features = model.backbone.frontend(wave[None])[0]  # (n_mels, frames): the whole track, as the cache holds it
    return equally_spaced_crops(features, model.input_frames, loaded.config.eval.n_crops)


def _split_tracks(loaded: Run, split: str, max_tracks: int | None) -> tuple[list[str], dict[str, Path],
                                                                                  np.ndarray, int]:
    """The split's tracks with an audio file (the first ``max_tracks``, in split order) → (ids, paths,
    labels (n, n_tags) bool in the run's tag order, number of tracks without audio)."""
    from retrieval.data.assembly import config_corpus, prepare_data

    config = loaded.config
    # Labels in the vocabulary's column order, through the same loader as `retrieval evaluate`.
    data, _ = prepare_data(config, vocabulary=loaded.vocabulary, progress=False, need_audio=False,
                           need_listening=False, splits=(split,))
    corpus = config_corpus(config)
    ids = data.splits[split].ids
    found = corpus.audio_locator().locate(ids).found
    rows = [r for r, i in enumerate(ids) if i in found][:max_tracks]
    missing = sum(i not in found for i in ids)
    if missing:
        log.warning("%s: %d of %d %s tracks have no audio file; scored without them", corpus.root, missing,
                    len(ids), split)
    labels = data.splits[split].labels.numpy()[rows]
    return [ids[r] for r in rows], found, labels, missing


def _run_probabilities(loaded: Run, ids: list[str], paths: dict[str, Path],
                       conditions: list[Condition], seed: int, device: torch.device,
                       progress: bool) -> tuple[list[np.ndarray], list[int]]:
    """Whole-track probabilities of ``ids`` under every condition → ([(n_kept, n_tags) per condition], kept rows).

    Tracks go ``eval.batch_size`` at a time: a batch is decoded once and each condition in turn perturbs,
    featurises and tags it, so memory holds one batch of clean waveforms and one condition's crops. A file that
    cannot be decoded is left out (and logged), as ``retrieval evaluate``'s feature cache leaves it out.
    """
    from tqdm import tqdm

    from retrieval.audio import load_audio

    model = loaded.model.to(device).eval()
    rate = model.mel.sample_rate
    batch_size = loaded.config.eval.batch_size
    probabilities: list[list[torch.Tensor]] = [[] for _ in conditions]
    kept: list[int] = []
    bar = tqdm(total=len(ids), desc=f"robustness {loaded.folder.name}", unit="track", disable=not progress)
    for start in range(0, len(ids), batch_size):
        rows, waves = [], []
        for r in range(start, min(start + batch_size, len(ids))):
            try:
                waves.append(torch.from_numpy(load_audio(paths[ids[r]], rate)).to(device))
                rows.append(r)
            except AudioError as error:
                log.warning("skipped unreadable audio: %s", error)
        for c, condition in enumerate(conditions):
            crops = []
            for r, wave in zip(rows, waves, strict=True):
                if condition is not None:
                    perturbation, strength = condition
                    wave = perturbation.apply(wave, rate, strength, _generator(seed, ids[r], perturbation, strength))
                crops.append(_crops(loaded, wave))
            if crops:
                probabilities[c].append(model.predict_crops(torch.stack(crops)).cpu())
        kept += rows
        bar.update(min(batch_size, len(ids) - start))
    bar.close()
    empty = torch.zeros(0, model.n_tags)
    return [torch.cat(p).numpy() if p else empty.numpy() for p in probabilities], kept


def _scores(probabilities: np.ndarray, labels: np.ndarray, loaded: Run) -> dict:
    """Macro ``{"roc_auc", "pr_auc"}`` of ``tagging_summary`` (None where no tag has a positive and a negative)."""
    summary = tagging_summary(probabilities, labels, loaded.vocabulary)
    return {"roc_auc": summary["roc_auc"], "pr_auc": summary["pr_auc"]}


def _evaluate_run(loaded: Run, split: str, conditions: list[tuple[Perturbation, float]],
                  max_tracks: int | None, seed: int, device: torch.device, progress: bool) -> dict:
    """One run's figures: clean and under every condition (see :func:`robustness_table`)."""
    ids, paths, labels, missing = _split_tracks(loaded, split, max_tracks)
    probabilities, kept = _run_probabilities(loaded, ids, paths, [None, *conditions], seed, device, progress)
    if not kept:
        raise InputError(f"{loaded.folder}: no track of the {split!r} split of {loaded.config.data.root} has readable "
                         "audio; check the corpus's audio/ folder")
    labels = labels[kept]
    clean, *perturbed = (_scores(p, labels, loaded) for p in probabilities)
    return {
        "run": str(loaded.folder),
        "backbone": loaded.config.model.audio.backbone,
        "n_tracks": len(kept),
        "excluded": {"no_audio": missing, "unreadable": len(ids) - len(kept)},
        "n_crops": loaded.config.eval.n_crops,
        "clean": clean,
        "perturbed": [{"perturbation": p.name, "strength": s, "label": p.label(s), **figures}
                      for (p, s), figures in zip(conditions, perturbed, strict=True)],
    }


# ---- the table ----------------------------------------------------------------------------------------------
def _column_names(runs: list[dict]) -> list[str]:
    """Each run's column: its folder name, or its whole path where two runs share a folder name."""
    names = [Path(r["run"]).name for r in runs]
    return [n if names.count(n) == 1 else r["run"] for n, r in zip(names, runs, strict=True)]


def robustness_table(runs: Sequence[str | Path], out: str | Path, perturbations: Sequence[str] | None = None,
                     split: str = "test", max_tracks: int | None = None, seed: int = 0,
                     progress: bool = True, device: str | torch.device = "cpu") -> dict:
    """Tag ``split`` of each run's corpus clean and under each perturbation; write and return the table.

    Args:
        runs: trained tagging run folders (``task: tagging``); each is scored on its own config's corpus.
        out: folder for ``robustness.json`` and ``robustness.md`` (created).
        perturbations: ``"name"`` or ``"name=s1,s2"`` items (module docstring); None: every perturbation of
            :data:`retrieval.augment.PERTURBATIONS` at its registered strengths.
        split: the corpus split to tag.
        max_tracks: score only the first N tracks (with audio) of the split, in split order; None: all.
        seed: seeds the random perturbations (white noise), per track, perturbation and strength.
        progress: show a progress bar per run.
        device: where the perturbations, front end and model run.

    Returns:
        The dict written to ``robustness.json``: ``{"split", "seed", "max_tracks", "conditions": [{"perturbation",
        "strength", "label"}], "runs": [{"run", "name", "backbone", "n_tracks", "excluded", "n_crops",
        "clean": {"roc_auc", "pr_auc"}, "perturbed": [{"perturbation", "strength", "label", "roc_auc",
        "pr_auc"}]}]}``, conditions and ``perturbed`` in the same order. A figure is None where no tag of the
        tracks has both a positive and a negative.

    Raises:
        FileNotFoundError: a run has no checkpoint (named). ValueError: a run is not a tagging run, or has no
            readable audio in ``split``. ConfigError: an unknown perturbation (the valid ones are listed) or a bad
            strength.
    """
    if isinstance(runs, (str, Path)):
        runs = [runs]
    if not runs:
        raise ValueError("robustness_table: give at least one tagging run folder")
    if max_tracks is not None and max_tracks < 1:
        raise ValueError(f"max_tracks must be >= 1 or None (every track), got {max_tracks}")
    conditions = _conditions(perturbations)  # before any run is loaded: a typo fails at once
    loaded = [load_run(run, task="tagging") for run in runs]  # a bad path fails before minutes of tagging other runs
    device = torch.device(device)
    results = [_evaluate_run(run, split, conditions, max_tracks, seed, device, progress) for run in loaded]
    for result, name in zip(results, _column_names(results), strict=True):
        result["name"] = name
    table = {
        "split": split,
        "seed": seed,
        "max_tracks": max_tracks,
        "conditions": [{"perturbation": p.name, "strength": s, "label": p.label(s)} for p, s in conditions],
        "runs": results,
    }
    out = Path(out)
    write_text_atomic(out / JSON_FILE, json.dumps(table, indent=2))
    write_text_atomic(out / MARKDOWN_FILE, format_robustness_markdown(table))
    return table


def _number(value: float | None, signed: bool = False) -> str:
    """Three decimals ("+" on differences), or "–" where nothing could be scored."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def format_robustness_markdown(result: dict) -> str:
    """Markdown of a :func:`robustness_table` result: figures per (perturbation, strength) and run, then drops.

    Table 1: a "clean" row, then one row per condition; each run's cell is "ROC-AUC / PR-AUC".
    Table 2: ROC-AUC drop, ``clean − perturbed`` (positive: the perturbation hurts).
    """
    runs = result["runs"]
    head = "| condition | " + " | ".join(r["name"] for r in runs) + " |"
    rule = "|" + "---|" * (len(runs) + 1)

    def row(label: str, cells: list[str]) -> str:
        return f"| {label} | " + " | ".join(cells) + " |"

    def pair(figures: dict) -> str:
        return f"{_number(figures['roc_auc'])} / {_number(figures['pr_auc'])}"

    def drop(run: dict, i: int) -> str:
        clean, perturbed = run["clean"]["roc_auc"], run["perturbed"][i]["roc_auc"]
        return _number(None if clean is None or perturbed is None else clean - perturbed, signed=True)

    described = "; ".join(f"{r['name']}: {r['backbone']}, {r['n_tracks']} tracks, {r['n_crops']} crops"
                          for r in runs)
    lines = [
        f"# Robustness: macro ROC-AUC / PR-AUC on the {result['split']} split",
        "",
        f"Each whole track perturbed, then tagged as by `retrieval evaluate` ({described}).",
        "",
        head, rule,
        row("clean", [pair(r["clean"]) for r in runs]),
        *(row(c["label"], [pair(r["perturbed"][i]) for r in runs]) for i, c in enumerate(result["conditions"])),
        "",
        "## ROC-AUC drop (clean − perturbed)",
        "",
        head, rule,
        *(row(c["label"], [drop(r, i) for r in runs]) for i, c in enumerate(result["conditions"])),
    ]
    return "\n".join(lines) + "\n"
