"""Training and evaluating runs: ``train``, ``evaluate RUN``, ``compare``, ``noisy-student``, ``robustness``,
``explain``."""

from __future__ import annotations

import argparse
from pathlib import Path

from retrieval.cli.args import (
    Commands,
    add_device_options,
    add_json_option,
    add_set_option,
    positive_int,
    print_json,
)

CONFIG_HELP = "a shipped config name (demo, tagging/fcn, msd500/hybrid_word2vec, ...) or a YAML file"


def _train(args: argparse.Namespace) -> int:
    from retrieval.config import load_config
    from retrieval.training.tasks import train_task

    config = load_config(args.config, args.set)
    state = train_task(config, args.out, resume=args.resume, progress=not args.quiet)
    metric = "PR-AUC" if config.task == "tagging" else "MAP"
    print(f"trained {state.epoch} epochs; best validation {metric} {state.best_map:.4f} at epoch {state.best_epoch}")
    print(f"run: {args.out}")
    return 0


def _evaluate_run(args: argparse.Namespace) -> int:
    from retrieval.training.tasks import evaluate_task, format_summary

    if args.other_render is not None:
        return _evaluate_other_render(args)
    summary = evaluate_task(args.run, split=args.split, progress=not args.quiet, device=args.device,
                            precision=args.precision)
    if args.json:
        print_json({k: v for k, v in summary.items() if k != "per_tag"})
    else:
        print(format_summary(summary))
        print(f"wrote {Path(args.run) / 'metrics.json'}")
    return 0


def _evaluate_other_render(args: argparse.Namespace) -> int:
    """``evaluate RUN --other-render [DIR]``: build (or reuse) the run's demo generalisation set, compare."""
    from retrieval import paths
    from retrieval.config import expand_path
    from retrieval.data.demo.other_render import build_other_render, format_summary
    from retrieval.runs import load_run
    from retrieval.training.experiment import evaluate_generalisation, format_generalisation

    demo = Path(expand_path(load_run(args.run).config.data.root))
    other = Path(args.other_render) if args.other_render else demo.parent / paths.demo_other_render_dir().name
    print(format_summary(other, build_other_render(other, demo, progress=not args.quiet)))
    result = evaluate_generalisation(args.run, other, progress=not args.quiet)
    if args.json:
        print_json({k: v for k, v in result.items() if k not in ("demo_test", "other_render")})
    else:
        print(format_generalisation(result))
        print(f"wrote {Path(args.run) / 'generalisation.json'}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from retrieval.config import resolve_config
    from retrieval.training.compare import run_table

    run_table(resolve_config(args.table), args.out, args.set, progress=not args.quiet)
    print((Path(args.out) / "table.md").read_text())
    print(f"wrote {Path(args.out) / 'table.md'}, table.json and category_map.png")
    return 0


def _noisy_student(args: argparse.Namespace) -> int:
    from retrieval.config import load_config
    from retrieval.training.tagging import noisy_student

    config = load_config(args.config, args.set)
    runs = noisy_student(config, args.teacher, args.out, iterations=args.iterations, progress=not args.quiet)
    print("students: " + ", ".join(str(r) for r in runs))
    return 0


def _robustness(args: argparse.Namespace) -> int:
    from retrieval.tagging.robustness import robustness_table

    robustness_table(args.runs, args.out, perturbations=args.perturbations, split=args.split,
                     max_tracks=args.max_tracks, progress=not args.quiet)
    print((Path(args.out) / "robustness.md").read_text())
    print(f"wrote {Path(args.out) / 'robustness.md'} and robustness.json")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from retrieval.tagging.explain import explain

    out = args.out or str(Path(args.model) / "explain")
    result = explain(args.file, args.model, out, tags=args.tags, top_k=args.top_k)
    print("\n".join(result.lines()))
    return 0


def add_commands(commands: Commands) -> None:
    """Add ``train``, ``compare``, ``noisy-student``, ``robustness`` and ``explain``."""
    train = commands.add_parser("train", help="train a model from a config (a retrieval or a tagging run)")
    train.add_argument("--config", required=True, help=CONFIG_HELP)
    train.add_argument("--out", required=True, help="run folder")
    add_set_option(train)
    train.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    train.set_defaults(func=_train)

    compare = commands.add_parser("compare", help="train + evaluate every row of a table file; write table.md")
    compare.add_argument("table", help="a table file or a shipped one's name, e.g. demo/table, tagging/table")
    compare.add_argument("--out", required=True, help="folder for the runs and the table")
    add_set_option(compare, help="override a config key of every row (repeatable)")
    compare.set_defaults(func=_compare)

    student = commands.add_parser("noisy-student", help="iterated noisy-student training of a tagger")
    student.add_argument("--config", required=True,
                         help="the student's tagging config (task: tagging), e.g. tagging/noisy_student")
    student.add_argument("--teacher", required=True, help="a trained tagging run (the first teacher)")
    student.add_argument("--out", required=True, help="folder for OUT/student_1, OUT/student_2, ...")
    student.add_argument("--iterations", type=positive_int, default=1,
                         help="students trained in turn, each teaching the next (default 1)")
    add_set_option(student)
    student.set_defaults(func=_noisy_student)

    robust = commands.add_parser("robustness", help="tagging ROC-AUC / PR-AUC under perturbed audio (SMC 2020)")
    robust.add_argument("runs", nargs="+", help="trained tagging runs")
    robust.add_argument("--out", required=True, help="folder for robustness.md and robustness.json")
    robust.add_argument("--perturbations", nargs="+", default=None,
                        help="names (time_stretch pitch_shift compression white_noise), optionally name=s1,s2")
    robust.add_argument("--split", default="test", help="the split to score (default test)")
    robust.add_argument("--max-tracks", type=positive_int, default=None,
                        help="only the first N tracks of the split")
    robust.set_defaults(func=_robustness)

    why = commands.add_parser("explain", help="per-tag attention over time as heat maps (CNNSA, MTT, SpecTNT)")
    why.add_argument("file", help="an audio file")
    why.add_argument("--model", required=True, help="a trained tagging run with an attention backbone")
    why.add_argument("--out", default=None, help="folder for the PNGs (default MODEL/explain)")
    why.add_argument("--tags", nargs="+", default=None, help="tags to explain (default: the most probable)")
    why.add_argument("--top-k", type=positive_int, default=3,
                     help="how many of the most probable tags to explain without --tags (default 3)")
    why.set_defaults(func=_explain)


def add_evaluations(evaluations: Commands) -> None:
    """Add ``evaluate RUN`` (reached as ``evaluate run RUN``, see :mod:`retrieval.cli.app`)."""
    run = evaluations.add_parser(
        "run", prog="retrieval evaluate", help="RUN: a run folder, scored with the paper's protocol "
        "(`retrieval evaluate RUN [--split] [--json]`)")
    run.add_argument("run", metavar="RUN", help="a trained run folder (retrieval or tagging)")
    run.add_argument("--split", default="test", choices=["train", "valid", "test"],
                     help="the split to score (default test)")
    run.add_argument("--other-render", nargs="?", const="", metavar="DIR",
                     help="compare MAP on the demo test split with MAP on the generalisation set in DIR (built "
                     "there if missing; default: other_render beside the run's demo corpus)")
    add_device_options(run, default=None)
    add_json_option(run)
    run.set_defaults(func=_evaluate_run)
