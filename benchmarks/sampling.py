"""`sampling`: sampling throughput (items/s) with incremental decoding (KV cache / carried state) and
with full recomputation of the prefix at every step, for the sequence models. Uses trained runs when
given (-o, realistic item lengths), else freshly initialised models of the default size. Both paths
draw the same items from the same seed (checked: same_items).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from makemore import checkpoint
from makemore.data import Vocab
from makemore.models import REGISTRY
from makemore.sample import generate

NAMES_VOCAB = Vocab(tuple("abcdefghijklmnopqrstuvwxyz"))
QUICK_ITEMS, QUICK_TYPES = 4, "transformer,gru"


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


def add_arguments(p) -> None:
    p.add_argument("-o", "--run", action="append", default=[], help="trained run directory (repeatable)")
    p.add_argument(
        "--types",
        help="untrained models to time when no run is given (default: transformer,rnn,gru,lstm,bow; "
        f"--quick: {QUICK_TYPES})",
    )
    p.add_argument("-n", type=int, default=2000, help="items per measurement (default: 2000; --quick: 4)")
    p.add_argument("--batches", default="1,100", help="batch sizes (items sampled in parallel)")


def run(args) -> tuple[list[dict], dict]:
    types = args.types or (QUICK_TYPES if args.quick else "transformer,rnn,gru,lstm,bow")
    n_items = QUICK_ITEMS if args.quick else args.n
    subjects = [trained(r) for r in args.run] or [fresh(t) for t in types.split(",")]
    rows = []
    for model, vocab, label in subjects:
        for batch in map(int, args.batches.split(",")):
            n = min(n_items, 200) if batch == 1 else n_items  # one at a time is slow: fewer items
            with_cache, a = items_per_second(model, vocab, n, batch, cache=True)
            without, b = items_per_second(model, vocab, n, batch, cache=False)
            rows.append(
                {
                    "model": label,
                    "params": model.num_params(),
                    "batch": batch,
                    "items": len(a),
                    "items_per_s_cache": round(with_cache, 1),
                    "items_per_s_recompute": round(without, 1),
                    "speedup": round(with_cache / without, 2),
                    "same_items": a == b,
                    "mean_len": round(sum(map(len, a)) / len(a), 2),
                }
            )
    return rows, {}
