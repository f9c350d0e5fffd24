"""Sampling throughput (items/s) with incremental decoding (KV cache / carried state) and
with full recomputation of the prefix at every step, for the sequence models.

Uses a trained run when given (realistic item lengths), else a freshly initialised model of
the default size. Both paths draw the same items from the same seed (checked here too).
Run under the shared CPU lock:

    flock /tmp/makemore-cpu.lock .venv/bin/python benchmarks/bench_sampling.py [-o RUN_DIR ...]

Writes benchmarks/results/sampling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from makemore import checkpoint
from makemore.data import Vocab
from makemore.models import REGISTRY
from makemore.sample import generate
from makemore.train import set_threads

OUT = Path(__file__).parent / "results" / "sampling.json"
NAMES_VOCAB = Vocab(tuple("abcdefghijklmnopqrstuvwxyz"))


def fresh(name: str):
    torch.manual_seed(0)
    return REGISTRY[name](REGISTRY[name].Config(vocab_size=27, max_len=15)), NAMES_VOCAB, f"{name} (untrained)"


def trained(run_dir: str):
    best = checkpoint.load(Path(run_dir) / checkpoint.BEST)
    return best.model, best.vocab, f"{best.run.type} ({run_dir}, step {best.step})"


def items_per_second(model, vocab, n: int, batch: int, cache: bool) -> tuple[float, list[str]]:
    max_len = model.length_limit
    generate(model, vocab, batch, max_len, torch.Generator().manual_seed(123), cache=cache)  # warm up
    gen, items = torch.Generator().manual_seed(0), []
    t0 = time.perf_counter()
    while len(items) < n:
        items += generate(model, vocab, batch, max_len, gen, cache=cache)
    return len(items) / (time.perf_counter() - t0), items


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--run", action="append", default=[], help="trained run directory (repeatable)")
    p.add_argument(
        "--types", default="transformer,rnn,gru,lstm,bow", help="untrained models to time when no run is given"
    )
    p.add_argument("-n", type=int, default=2000, help="items per measurement")
    p.add_argument("--batches", default="1,100", help="batch sizes (items sampled in parallel)")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    set_threads(args.threads)
    subjects = [trained(r) for r in args.run] or [fresh(t) for t in args.types.split(",")]
    rows = []
    for model, vocab, label in subjects:
        for batch in map(int, args.batches.split(",")):
            n = min(args.n, 200) if batch == 1 else args.n  # one at a time is slow: fewer items
            with_cache, a = items_per_second(model, vocab, n, batch, cache=True)
            without, b = items_per_second(model, vocab, n, batch, cache=False)
            row = {
                "model": label,
                "params": model.num_params(),
                "batch": batch,
                "items": n,
                "items_per_s_cache": round(with_cache, 1),
                "items_per_s_recompute": round(without, 1),
                "speedup": round(with_cache / without, 2),
                "same_items": a == b,
                "mean_len": round(sum(map(len, a)) / len(a), 2),
            }
            print(json.dumps(row))
            rows.append(row)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    env = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    OUT.write_text(json.dumps({"environment": env, "results": rows}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
