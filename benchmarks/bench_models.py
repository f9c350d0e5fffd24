"""Every model at its default recipe on the bundled names: parameters, train/dev/test NLL and
training time. Trains each missing run with `makemore train --type T` (no other flags) into
runs/bench/T, evaluates every run, and writes benchmarks/results/models.{json,md} — the table
the README shows. Rows of types not named are kept from the previous results file. Run it
alone (timings mean nothing while something else uses the CPU):

    flock /tmp/makemore-cpu.lock .venv/bin/python benchmarks/bench_models.py [TYPE ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

import torch

from makemore import checkpoint
from makemore.models import REGISTRY
from makemore.runs import evaluate

ROOT = Path(__file__).resolve().parent
RUNS = ROOT.parent / "runs" / "bench"
OUT = ROOT / "results"


def ensure_trained(model_type: str) -> Path:
    run_dir = RUNS / model_type
    if not (run_dir / checkpoint.BEST).exists():
        cmd = [sys.executable, "-m", "makemore", "train", "--type", model_type, "-o", str(run_dir), "-q"]
        print("$", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True)
    return run_dir


def row(model_type: str) -> dict:
    run_dir = ensure_trained(model_type)
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


def markdown(rows: list[dict]) -> str:
    lines = ["| model | params | train | dev | test | steps | training time |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| `{r['type']}` | {r['params']:,} | {r['train']:.4f} | {r['dev']:.4f} | {r['test']:.4f} | "
            f"{r['steps']:,} | {r['train_seconds']:.1f} s |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("types", nargs="*", default=list(REGISTRY), help="model types (default: all)")
    args = p.parse_args()
    OUT.mkdir(exist_ok=True)
    previous = json.loads((OUT / "models.json").read_text())["rows"] if (OUT / "models.json").exists() else []
    by_type = {r["type"]: r for r in previous} | {t: row(t) for t in args.types}
    rows = [by_type[t] for t in REGISTRY if t in by_type]
    env = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    (OUT / "models.json").write_text(json.dumps({"env": env, "rows": rows}, indent=1) + "\n")
    (OUT / "models.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
