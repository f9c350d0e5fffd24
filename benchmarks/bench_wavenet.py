"""Speed of WaveNet's two forms on names: training, whole-split evaluation and sampling.

The hierarchical form (`wavenet`) sees one 8-character window per prediction; the conv
form (`wavenet-conv`) sees whole items and shares each window's tree with its neighbours.
Both hold the same weights. Run under the shared CPU lock:

    flock /tmp/makemore-cpu.lock .venv/bin/python benchmarks/bench_wavenet.py

Writes benchmarks/results/wavenet.json. Throughput counts predicted characters (examples).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from makemore.data import IGNORE, Dataset, bundled_names, read_items
from makemore.evaluate import split_nll
from makemore.models.wavenet import WaveNet, WaveNetConv
from makemore.sample import generate
from makemore.train import batch_loss

OUT = Path(__file__).parent / "results" / "wavenet.json"


def models(max_len: int):
    torch.manual_seed(0)
    tree = WaveNet(WaveNet.Config(vocab_size=27))
    conv = WaveNetConv(WaveNetConv.Config(vocab_size=27, max_len=max_len))
    conv.load_state_dict(tree.state_dict())
    return tree, conv


def train_speed(model, X, Y, batch_size: int, steps: int = 400) -> dict:
    """Training steps as the Trainer takes them: gather a batch, loss, backward, fused AdamW."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for phase in ("warmup", "timed"):
        examples, t0 = 0, time.perf_counter()
        for _ in range(steps if phase == "timed" else 50):
            ix = torch.randint(0, len(X), (batch_size,), generator=gen)
            xb, yb = X[ix], Y[ix]
            loss = batch_loss(model, xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            examples += int((yb != IGNORE).sum())
        seconds = time.perf_counter() - t0
    return {
        "batch_size": batch_size,
        "ms_per_step": 1000 * seconds / steps,
        "examples_per_step": examples / steps,
        "examples_per_s": examples / seconds,
    }


def eval_speed(model, X, Y, repeats: int = 3) -> dict:
    split_nll(model, X, Y)
    t0 = time.perf_counter()
    for _ in range(repeats):
        nll = split_nll(model, X, Y)
    seconds = (time.perf_counter() - t0) / repeats
    n = int((Y != IGNORE).sum())
    return {"nll": nll, "seconds": seconds, "examples_per_s": n / seconds}


def sample_speed(model, vocab, n: int, max_len: int, cache: bool = True) -> dict:
    generate(model, vocab, 50, max_len, torch.Generator().manual_seed(1), cache=cache)
    t0 = time.perf_counter()
    items = generate(model, vocab, n, max_len, torch.Generator().manual_seed(0), cache=cache)
    seconds = time.perf_counter() - t0
    return {"items": n, "seconds": seconds, "items_per_s": n / seconds, "first": items[:5]}


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    data = Dataset(read_items(bundled_names())[0])
    tree, conv = models(data.max_len)
    win_train, seq_train = data.windows("train", 8), data.sequences("train")
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}",
        "train": {},
        "eval_dev": {},
        "sample": {},
    }
    for bs in (32, 128):
        results["train"][f"wavenet b{bs} windows"] = train_speed(tree, *win_train, bs)
    for bs in (8, 32):
        results["train"][f"wavenet-conv b{bs} items"] = train_speed(conv, *seq_train, bs)
    conv.load_state_dict(tree.state_dict())  # same weights again for the eval and sampling comparisons
    results["eval_dev"]["wavenet"] = eval_speed(tree, *data.windows("dev", 8))
    results["eval_dev"]["wavenet-conv"] = eval_speed(conv, *data.sequences("dev"))
    for n in (1, 1000):
        results["sample"][f"wavenet n{n}"] = sample_speed(tree, data.vocab, n, data.max_len)
        results["sample"][f"wavenet-conv cached n{n}"] = sample_speed(conv, data.vocab, n, data.max_len)
        results["sample"][f"wavenet-conv recomputed n{n}"] = sample_speed(
            conv, data.vocab, n, data.max_len, cache=False
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    for kind, rows in results.items():
        if isinstance(rows, dict):
            for name, r in rows.items():
                rate = r.get("examples_per_s") or r.get("items_per_s")
                unit = "items/s" if "items_per_s" in r else "examples/s"
                print(
                    f"{kind:9s} {name:32s} {rate:12,.0f} {unit}"
                    + (f"  ({r['ms_per_step']:.2f} ms/step)" if "ms_per_step" in r else "")
                )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
