"""Sampling and scoring speed of two versions of the code, in alternating processes on the same runs.

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/bench_versus.py /tmp/before/src [--runs runs/figures] [--rounds 5]

Each round runs one process with the other version's `src` first on PYTHONPATH, then one with this
checkout's; every process measures the default transformer's sampling at batch 1, 100 and 1,000
and the dev names' scoring (`makemore score`'s code) of the transformer, mlp and bigram runs. Prints
medians and ratios; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ONE_ROUND = """
import json, sys, time, torch
from pathlib import Path
from makemore.runs import score_checked
from makemore.sample import generate
from makemore.store import RunStore
torch.set_num_threads(2)
out = {}
for run in ("transformer", "mlp", "bigram"):
    store = RunStore.open(Path(sys.argv[1]) / run)
    best = store.load_best()
    limit = best.model.max_sample_len(best.run.max_len)
    if run == "transformer":
        for batch, calls in ((1, 60), (100, 5), (1000, 2)):
            generate(best.model, best.vocab, batch, limit, torch.Generator().manual_seed(0))
            gen = torch.Generator().manual_seed(1)
            t0 = time.perf_counter()
            for _ in range(calls):
                generate(best.model, best.vocab, batch, limit, gen)
            out[f"transformer: sampling items/s at batch {batch}"] = batch * calls / (time.perf_counter() - t0)
    dev = store.dataset(write_cache=False).items("dev")
    score_checked(best, dev[:1000])
    t0 = time.perf_counter()
    for a in range(0, len(dev), 1000):
        score_checked(best, dev[a : a + 1000])
    out[f"{run}: scoring items/s"] = len(dev) / (time.perf_counter() - t0)
print(json.dumps(out))
"""


def one_round(src: Path, runs: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", ONE_ROUND, str(runs)], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{src}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path, help="the other version's src/ folder")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs/figures", help="trained runs, by type name")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    before, now = [], []
    for _ in range(args.rounds):
        before.append(one_round(args.before.resolve(), args.runs))
        now.append(one_round(ROOT / "src", args.runs))
    print(f"| {args.rounds} processes each, medians | before | now | |\n|---|---:|---:|---:|")
    for key in before[0]:
        a, b = statistics.median(r[key] for r in before), statistics.median(r[key] for r in now)
        print(f"| {key} | {a:,.0f} | {b:,.0f} | {b / a:.2f}x |")


if __name__ == "__main__":
    main()
