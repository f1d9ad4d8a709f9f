"""Comparison tables: train and evaluate several configs, one row each, with one command.

A table file lists rows, each a config plus optional overrides (paths relative to the table file)::

    rows:
      - {name: audio, config: audio.yaml}
      - {name: "audio, random sampling", config: audio.yaml, set: [train.sampler=random, train.negatives=uniform]}

``{out}`` in a ``set`` value is the table's output folder, so a row can point at an earlier row's run (e.g. a
noisy student's ``tagging.teacher={out}/teacher``).

``retrieval compare configs/demo/table.yaml --out runs/table`` trains every row into ``OUT/<slug>`` (a finished run
is reused, an interrupted one resumed), evaluates it on the test split (a test evaluation newer than the run's best
checkpoint is reused), and writes ``OUT/table.md`` (MAP, P@10,
ROC-AUC and per-category MAP), ``OUT/table.json`` and ``OUT/category_map.png``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from retrieval.config import load_config
from retrieval.errors import ConfigError
from retrieval.fileio import write_text_atomic


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def read_table(path: str | Path) -> list[dict]:
    """The rows of a table file, each {"name", "config" (absolute), "set" (list)}; errors name the row."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: table file not found")
    raw = yaml.safe_load(path.read_text()) or {}
    rows = raw.get("rows")
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f"{path}: expected a non-empty list under 'rows'")
    out = []
    for i, row in enumerate(rows):
        unknown = set(row) - {"name", "config", "set"}
        if unknown or "name" not in row or "config" not in row:
            raise ConfigError(
                f"{path}: rows[{i}] needs 'name' and 'config' (and optional 'set'); got {sorted(row)}"
            )
        out.append(
            {"name": row["name"], "config": path.parent / row["config"], "set": list(row.get("set", []))}
        )
    return out


def run_table(
    table: str | Path, out: str | Path, overrides: list[str] | tuple = (), progress: bool = True
) -> list[dict]:
    """Train (or reuse) and evaluate every row; returns the rows with their test summaries."""
    from retrieval.evaluation import plot_category_map
    from retrieval.runs import run_is_complete
    from retrieval.training.tasks import evaluate_task, train_task

    out = Path(out)
    results = []
    tasks = set()
    for row in read_table(table):
        config = load_config(row["config"], [s.replace("{out}", str(out)) for s in (*row["set"], *overrides)])
        tasks.add(config.task)
        if len(tasks) > 1:
            raise ConfigError(f"{table}: rows mix tasks {sorted(tasks)}; one table compares runs of one task")
        folder = out / slug(row["name"])
        if not run_is_complete(folder, config):
            if progress:
                print(f"== training {row['name']} → {folder}")
            train_task(config, folder, resume=(folder / "checkpoints" / "last.ckpt").exists(), progress=progress)
        summary = _reusable_metrics(folder) or evaluate_task(folder, "test", progress=progress)
        history = json.loads((folder / "history.json").read_text())
        summary["train_seconds"] = sum(h["seconds"] for h in history)
        unit = "clips" if config.task == "tagging" else "triplets"
        summary[f"{unit}_per_s"] = sum(h[f"{unit}_per_s"] for h in history) / len(history)
        results.append({**row, "config": str(row["config"]), "summary": summary})
    formatter = format_tagging_markdown if tasks == {"tagging"} else format_markdown
    write_text_atomic(out / "table.md", formatter(results))
    slim = [{**r, "summary": {k: v for k, v in r["summary"].items() if k != "per_tag"}} for r in results]
    write_text_atomic(out / "table.json", json.dumps(slim, indent=2))
    plot_category_map({r["name"]: r["summary"] for r in results}, out / "category_map.png")
    return results


def _reusable_metrics(folder: Path) -> dict | None:
    """The run's test-split ``metrics.json`` when it was written after its best checkpoint (else None)."""
    metrics, best = folder / "metrics.json", folder / "checkpoints" / "best.ckpt"
    if not metrics.exists() or not best.exists() or metrics.stat().st_mtime < best.stat().st_mtime:
        return None
    summary = json.loads(metrics.read_text())
    return summary if summary.get("split") == "test" else None


def format_markdown(results: list[dict]) -> str:
    """A markdown table: one row per run; MAP, P@10, ROC-AUC, then MAP per category."""
    categories = sorted({c for r in results for c in r["summary"]["per_category"]})
    k = results[0]["summary"]["k"]
    head = ["run", "MAP", f"P@{k}", "ROC-AUC", *[f"MAP {c}" for c in categories]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        s = r["summary"]
        cells = [r["name"], _number(s["map"]), _number(s[f"p_at_{k}"]), _number(s["roc_auc"])]
        cells += [_number(s["per_category"].get(c, {}).get("map")) for c in categories]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_tagging_markdown(results: list[dict]) -> str:
    """A markdown table of tagging runs: backbone, parameters, macro ROC-AUC / PR-AUC on the test split, audio
    seconds tagged per second on this CPU (decode → features → model), training clips per second."""
    head = ["run", "backbone", "parameters", "ROC-AUC", "PR-AUC", "audio s / s", "train clips / s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        s = r["summary"]
        speed = s.get("audio_seconds_per_s")
        cells = [r["name"], s["backbone"], f"{s['parameters']:,}", _number(s["roc_auc"]), _number(s["pr_auc"]),
                 "–" if speed is None else f"{speed:.0f}", f"{s['clips_per_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    """Four decimals, or "–" where nothing could be scored (e.g. a category with no scorable tag)."""
    return "–" if value is None else f"{value:.4f}"
