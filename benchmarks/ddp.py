"""One process against several ranks (torch.distributed, gloo) on the bundled names, same recipe:
the model type's default with the same global batch and seed. Reports the dev NLL of each, the
training seconds and the steps per second, with the CPU model. Run it alone:

    .venv/bin/python benchmarks/bench_ddp.py [--type mlp] [--nproc 2] [--max-steps N]

Writes benchmarks/results/ddp.{json,md} (ddp-TYPE.{json,md} for another type).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import cpu_model  # benchmarks/machine.py: scripts run from benchmarks/

from makemore.runs import evaluate

OUT = Path(__file__).resolve().parent / "results"


def train(model_type: str, nproc: int, run_dir: Path, max_steps: int | None) -> dict:
    cores = os.cpu_count() or 1
    argv = [sys.executable, "-m", "makemore", "train", "--type", model_type, "-o", str(run_dir), "-q"]
    argv += ["--max-steps", str(max_steps)] if max_steps else []
    argv += ["--threads", str(max(1, cores // nproc))] + (["--nproc", str(nproc)] if nproc > 1 else [])
    subprocess.run(argv, check=True, capture_output=True)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    seconds = max(r.get("train_seconds", 0) for r in rows)
    steps = max(r["step"] for r in rows)
    report = evaluate(run_dir)
    return {
        "ranks": nproc,
        "threads_per_rank": max(1, cores // nproc),
        "dev": report["dev"],
        "test": report["test"],
        "train_seconds": seconds,
        "steps_per_s": steps / seconds,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--type", default="mlp")
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--max-steps", type=int, help="instead of the type's default")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [train(args.type, n, Path(tmp) / f"r{n}", args.max_steps) for n in (1, args.nproc)]
    result = {"type": args.type, "max_steps": args.max_steps, "cpu": cpu_model(), "cores": os.cpu_count(), "rows": rows}
    OUT.mkdir(exist_ok=True)
    name = "ddp" if args.type == "mlp" else f"ddp-{args.type}"
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    recipe = f"its default recipe with --max-steps {args.max_steps}" if args.max_steps else "its default recipe"
    lines = [
        f"`{args.type}` at {recipe} on names, {result['cpu']} ({result['cores']} cores):",
        "",
        "| ranks x threads | dev NLL | test NLL | training s | steps/s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['ranks']} x {r['threads_per_rank']} | {r['dev']:.4f} | {r['test']:.4f} | "
            f"{r['train_seconds']:.1f} | {r['steps_per_s']:.0f} |"
        )
    (OUT / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
