"""`makemore compare`: runs side by side, the whole progression of models in one table and one plot.

Each run is evaluated anew on its whole train, dev and test splits (the one metric), so the table
holds the same numbers `makemore eval` prints, with the parameters and training time beside them.
"""

from __future__ import annotations

import math
from pathlib import Path

from .errors import MakemoreError
from .runs import evaluate, evaluate_ensemble, find_runs


def compare(paths: list[str], with_ensemble: bool = False) -> list[dict]:
    """One row per run (each path a run directory, or a folder of runs), best dev NLL first;
    with_ensemble: one more row, the ensemble of all of them (ensemble.py)."""
    run_dirs = find_runs(paths)
    names = [d.name for d in run_dirs]
    rows = []
    for run_dir, name in zip(run_dirs, names):
        label = name if names.count(name) == 1 else str(run_dir)  # two runs called alike: their paths
        rows.append({"run": label, **evaluate(run_dir)})
    if with_ensemble:
        if len(run_dirs) < 2:
            raise MakemoreError("--ensemble mixes several runs; these paths hold one")
        rows.append({"run": f"ensemble of {len(run_dirs)}", **evaluate_ensemble(run_dirs)})
    return sorted(rows, key=lambda r: (r["dev"] != r["dev"], r["dev"]))  # an empty dev split (nan) last


def sweep(paths: list[str]) -> list[dict]:
    """Per model type, its runs' train and dev NLL against the one model option they differ in (the
    strength of bigram's --alpha or bigram-nn's --regularization, say), in increasing order."""
    by_type: dict[str, list[dict]] = {}
    for run_dir in find_runs(paths):
        row = evaluate(run_dir)
        by_type.setdefault(row["type"], []).append(row)
    panels = []
    for model_type, rows in by_type.items():
        options = rows[0]["options"]
        varying = [k for k in options if k != "vocab_size" and len({str(r["options"][k]) for r in rows}) > 1]
        if len(varying) != 1:
            differ = f"differ in {', '.join(varying)}" if varying else "do not differ in any model option"
            raise MakemoreError(f"the {len(rows)} {model_type} runs {differ}: a sweep varies exactly one")
        rows.sort(key=lambda r: r["options"][varying[0]])
        panels.append(
            {
                "type": model_type,
                "option": varying[0],
                "values": [r["options"][varying[0]] for r in rows],
                "train": [r["train"] for r in rows],
                "dev": [r["dev"] for r in rows],
                "uniform": math.log(options["vocab_size"]),
            }
        )
    return panels


def markdown(rows: list[dict]) -> str:
    """The rows as a markdown table: NLL in nats per character on each whole split. A text-mode run is
    marked (text): its train and dev are the first 90% of the characters and the rest; it has no test."""
    nll = lambda x: "–" if x != x else f"{x:.4f}"  # noqa: E731  (nan: an empty split)
    lines = [
        "| run | model | parameters | train | dev | test | best step | training time |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | `{r['type']}`{' (text)' * bool(r.get('text'))} | {r['params']:,} | {nll(r['train'])} | "
            f"{nll(r['dev'])} | "
            f"{nll(r['test'])} | {r['step']:,} | {r['train_seconds']:.1f} s |"
        )
    return "\n".join(lines) + "\n"


def outputs(out: Path) -> tuple[Path, Path]:
    return out / "compare.md", out / "compare.png"
