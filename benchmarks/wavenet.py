"""`wavenet`: speed of WaveNet's two forms on names: training, whole-split evaluation and sampling.
The hierarchical form (`wavenet`) sees one 8-character window per prediction; the conv form
(`wavenet-conv`) sees whole items and shares each window's tree with its neighbours. Both hold the
same weights. Throughput counts predicted characters (examples).
"""

from __future__ import annotations

import time

import torch

from makemore.data import IGNORE, Dataset, bundled_names
from makemore.evaluate import split_nll
from makemore.models.wavenet import WaveNet, WaveNetConv
from makemore.sample import generate
from makemore.train import batch_loss

# (warm-up steps, timed steps, evaluation repeats, items sampled, windows' batches, items' batches)
FULL = (50, 400, 3, (1, 1000), (32, 128), (8, 32))
QUICK = (1, 3, 1, (1, 20), (32,), (8,))


def models(data: Dataset):
    torch.manual_seed(0)
    tree = WaveNet(WaveNet.config_for(data))
    conv = WaveNetConv(WaveNetConv.config_for(data))
    conv.load_state_dict(tree.state_dict())
    return tree, conv


def train_speed(model, examples, batch_size: int, warmup: int, steps: int) -> dict:
    """Training steps as the Trainer takes them: draw a batch, loss, backward, fused AdamW."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for phase in ("warmup", "timed"):
        n, total, t0 = 0, 0, time.perf_counter()
        for _ in range(steps if phase == "timed" else warmup):
            ix = torch.randint(0, len(examples), (batch_size,), generator=gen)
            xb, yb = examples[ix]
            loss = batch_loss(model, xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n, total = n + 1, total + int((yb != IGNORE).sum())
        elapsed = time.perf_counter() - t0
    return {
        "batch_size": batch_size,
        "ms_per_step": 1000 * elapsed / steps,
        "examples_per_step": total / steps,
        "examples_per_s": total / elapsed,
    }


def eval_speed(model, examples, repeats: int) -> dict:
    split_nll(model, examples)
    t0 = time.perf_counter()
    for _ in range(repeats):
        nll = split_nll(model, examples)
    elapsed = (time.perf_counter() - t0) / repeats
    return {"nll": nll, "seconds": elapsed, "examples_per_s": examples.split.targets / elapsed}


def sample_speed(model, vocab, n: int, max_len: int, cache: bool = True) -> dict:
    generate(model, vocab, min(n, 50), max_len, torch.Generator().manual_seed(1), cache=cache)
    t0 = time.perf_counter()
    items = generate(model, vocab, n, max_len, torch.Generator().manual_seed(0), cache=cache)
    elapsed = time.perf_counter() - t0
    return {"items": n, "seconds": elapsed, "items_per_s": n / elapsed, "first": items[:5]}


def add_arguments(p) -> None:
    pass


def run(args) -> tuple[list[dict], dict]:
    warmup, steps, repeats, samples, window_batches, item_batches = QUICK if args.quick else FULL
    data = Dataset.read(bundled_names())
    tree, conv = models(data)
    rows = []
    for bs in window_batches:
        speed = train_speed(tree, tree.examples(data.split("train")), bs, warmup, steps)
        rows.append({"measure": "train", "model": f"wavenet b{bs} windows", **speed})
    for bs in item_batches:
        speed = train_speed(conv, conv.examples(data.split("train")), bs, warmup, steps)
        rows.append({"measure": "train", "model": f"wavenet-conv b{bs} items", **speed})
    conv.load_state_dict(tree.state_dict())  # the same weights again for the evaluation and sampling
    for name, model in (("wavenet", tree), ("wavenet-conv", conv)):
        rows.append(
            {"measure": "eval_dev", "model": name, **eval_speed(model, model.examples(data.split("dev")), repeats)}
        )
    for n in samples:
        rows.append({"measure": "sample", "model": f"wavenet n{n}", **sample_speed(tree, data.vocab, n, data.max_len)})
        rows.append(
            {
                "measure": "sample",
                "model": f"wavenet-conv cached n{n}",
                **sample_speed(conv, data.vocab, n, data.max_len),
            }
        )
        rows.append(
            {
                "measure": "sample",
                "model": f"wavenet-conv recomputed n{n}",
                **sample_speed(conv, data.vocab, n, data.max_len, cache=False),
            }
        )
    return rows, {}
