"""`models`: every model at its default recipe on the bundled names: parameters, train/dev/test NLL
and training time, the table the README shows. Trains each missing run with `makemore train --type T`
(no other flags but --threads) into --runs DIR/T, evaluates every run. Rows of types not named are
kept from the previous result file. --quick: `mlp` (unless types are named) trained for a few steps
on a tiny file into a temporary directory (unless --runs), their rows not merged with earlier ones.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from makemore import checkpoint
from makemore.models import REGISTRY
from makemore.runs import evaluate

from .common import RESULTS, ROOT, say, tiny_names
from .common import makemore as run_makemore

RUNS = ROOT / "runs" / "bench"
QUICK_TYPES = ("mlp",)
QUICK_STEPS = 5


def ensure_trained(model_type: str, runs: Path, threads: int, quick: bool) -> Path:
    run_dir = runs / model_type
    if not (run_dir / checkpoint.BEST).exists():
        args = ["train", "--type", model_type, "-o", str(run_dir), "-q", "--threads", str(threads)]
        if quick:
            args += ["-i", str(tiny_names(runs)), "--max-steps", str(QUICK_STEPS)]
        say("makemore " + " ".join(args))
        run_makemore(args)
    return run_dir


def row(model_type: str, runs: Path, threads: int, quick: bool) -> dict:
    run_dir = ensure_trained(model_type, runs, threads, quick)
    report = evaluate(run_dir)
    last = checkpoint.load(run_dir / checkpoint.LAST)
    return {
        "type": model_type,
        "params": report["params"],
        "train": report["train"],
        "dev": report["dev"],
        "test": report["test"],
        "best_step": report["step"],
        "steps": last.step,
        "train_seconds": round(last.train_seconds, 1),
    }


def markdown(res: dict, args) -> str:
    lines = ["| model | params | train | dev | test | steps | training time |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        lines.append(
            f"| `{r['type']}` | {r['params']:,} | {r['train']:.4f} | {r['dev']:.4f} | {r['test']:.4f} | "
            f"{r['steps']:,} | {r['train_seconds']:.1f} s |"
        )
    return "\n".join(lines) + "\n"


def add_arguments(p) -> None:
    p.add_argument("--types", nargs="+", choices=list(REGISTRY), metavar="T", help="model types (default: all)")
    p.add_argument("--runs", type=Path, metavar="DIR", help=f"runs, DIR/TYPE (default: {RUNS.relative_to(ROOT)})")


def run(args) -> tuple[list[dict], dict]:
    types = args.types or (QUICK_TYPES if args.quick else list(REGISTRY))
    previous = RESULTS / "models.json"
    by_type = {}
    if not args.quick and previous.exists():
        by_type = {r["type"]: r for r in json.loads(previous.read_text())["rows"]}
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or (Path(tmp) if args.quick else RUNS)
        by_type |= {t: row(t, runs, args.threads, args.quick) for t in types}
    return [by_type[t] for t in REGISTRY if t in by_type], {}
