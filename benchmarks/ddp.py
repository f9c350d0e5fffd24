"""`ddp`: one process against several ranks (torch.distributed, gloo) on the bundled names, same
recipe: the model type's default with the same global batch and seed. Measures the dev and test NLL
of each, the training seconds and the steps per second. The one process has --threads threads, each
rank --threads / --nproc (at least 1): `--threads 2` compares 1 x 2 with 2 x 1 on two cores. --quick:
a few steps on a tiny file.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

from makemore.cli import main as makemore_main
from makemore.runs import evaluate

from .common import makemore, tiny_names

QUICK_STEPS = 4


def train(model_type: str, nproc: int, threads: int, run_dir: Path, max_steps: int | None, data: Path | None) -> dict:
    per_rank = max(1, threads // nproc)
    args = ["train", "--type", model_type, "-o", str(run_dir), "-q", "--threads", str(per_rank)]
    args += (["--max-steps", str(max_steps)] if max_steps else []) + (["-i", str(data)] if data else [])
    args += ["--nproc", str(nproc)] if nproc > 1 else []
    if nproc == 1 and data:  # --quick: in this process, which saves starting Python and torch again
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            if makemore_main(args):
                raise SystemExit(f"makemore {' '.join(args)} failed")
    else:
        makemore(args)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    seconds = max(r.get("train_seconds", 0) for r in rows)
    steps = max(r["step"] for r in rows)
    report = evaluate(run_dir)
    return {
        "type": model_type,
        "max_steps": max_steps,
        "ranks": nproc,
        "threads_per_rank": per_rank,
        "dev": report["dev"],
        "test": report["test"],
        "train_seconds": seconds,
        "steps_per_s": steps / seconds if seconds else None,
    }


def result_name(args) -> str:
    return "ddp" if args.type == "mlp" else f"ddp-{args.type}"


def add_arguments(p) -> None:
    p.add_argument("--type", default="mlp", help="model type (default: mlp)")
    p.add_argument("--nproc", type=int, default=2, help="ranks to compare with one process (default: 2)")
    p.add_argument("--max-steps", type=int, help="instead of the type's default")


def run(args) -> tuple[list[dict], dict]:
    with tempfile.TemporaryDirectory() as tmp:
        data = tiny_names(Path(tmp)) if args.quick else None
        steps = QUICK_STEPS if args.quick else args.max_steps
        rows = [train(args.type, n, args.threads, Path(tmp) / f"r{n}", steps, data) for n in (1, args.nproc)]
    return rows, {}
