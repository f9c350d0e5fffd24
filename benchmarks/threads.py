"""Training speed with one torch thread against all cores, on an idle machine and beside one busy
process (a single-core loop: what a laptop always has running). Each row is one `makemore train`
of a model type's default recipe for a fixed number of steps, in its own process; its training
seconds (the steps only, no evaluation) are what the run reports. The default thread count of
`makemore train` is chosen from this table (makemore.devices.default_threads).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
from pathlib import Path

from makemore.models import REGISTRY

from .common import makemore, say, tiny_names

STEPS = {"quick": 20, "full": 400}
SLOW_TYPES = {"transformer": 4, "wavenet-conv": 2, "mlp-bn-deep": 2, "lstm": 2, "gru": 2}  # fewer steps: /k


def add_arguments(p) -> None:
    p.add_argument("--types", nargs="+", default=None, help="model types (default: every one that trains)")
    p.add_argument("--steps", type=int, default=None, help=f"steps per run (default {STEPS['full']})")


def _busy() -> None:
    while True:
        pass


def _train_seconds(model_type: str, threads: int, steps: int, data: Path, work: Path) -> float:
    out = work / f"{model_type}-{threads}-{os.urandom(4).hex()}"
    argv = ["train", "--type", model_type, "-i", str(data), "-o", str(out), "-q", "--threads", str(threads)]
    makemore([*argv, "--max-steps", str(steps), "--eval-interval", str(steps)])
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    return last["train_seconds"]


def run(args) -> tuple[list[dict], dict]:
    cores = os.cpu_count() or 1
    types = args.types or [t for t in REGISTRY if REGISTRY[t].train_defaults.get("max_steps", 1)]
    if args.quick:
        types = types[:1]
    base = args.steps or STEPS["quick" if args.quick else "full"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = tiny_names(work, 1000)
        for load in ("idle", "1 busy process"):
            busy = None
            if load != "idle":
                busy = multiprocessing.Process(target=_busy, daemon=True)
                busy.start()
            try:
                for model_type in types:
                    steps = max(5, base // SLOW_TYPES.get(model_type, 1))
                    row = {"type": model_type, "load": load, "steps": steps}
                    for threads in sorted({1, cores}):
                        seconds = _train_seconds(model_type, threads, steps, data, work)
                        row[f"ms/step, {threads} thread{'s' if threads > 1 else ''}"] = 1000 * seconds / steps
                        say(f"{model_type}, {load}, {threads} threads: {seconds:.2f} s for {steps} steps")
                    rows.append(row)
            finally:
                if busy is not None:
                    busy.terminate()
                    busy.join()
    return rows, {}
