"""`step`: the cost of one transformer training step (forward, backward, AdamW) on the bundled names,
with the batch's items padded to its longest item or packed into rows (data.pack), and the cost of
the dropout masks (torch's nn.Dropout against the transformer's). Median milliseconds over timed
steps after warm-up, every setting timed in the same run, interleaved, so the ratios hold even when
the machine's speed drifts.
"""

from __future__ import annotations

import torch

from makemore.data import Dataset, bundled_names
from makemore.models.transformer import Transformer
from makemore.train import batch_loss

from .common import median, seconds

try:  # the transformer's cheaper dropout mask
    from makemore.models.kernels import Dropout
except ImportError:
    from makemore.models.transformer import Dropout

# (rounds, steps per round, warm-up steps, batch sizes, dropout rounds, dropout repeats)
FULL = (4, 60, 10, (64, 128), 200, 3)
QUICK = (1, 3, 1, (16,), 5, 1)


def step_times(model, optimizer, examples, batch_size: int, packed: bool, steps: int, gen) -> list[float]:
    times = []
    for _ in range(steps):

        def step():
            ix = torch.randint(0, len(examples), (batch_size,), generator=gen)
            xb, yb, pos = model.shape_batch(*examples[ix], packed)  # as the Trainer shapes a batch
            optimizer.zero_grad(set_to_none=True)
            batch_loss(model, xb, yb, pos).backward()
            optimizer.step()

        times += seconds(step, 1, warmup=0)
    return times


def dropout_times(drop, rounds: int) -> list[float]:
    x = torch.randn(768, 64, requires_grad=True)  # one residual branch of a padded batch of 64
    grad = torch.randn_like(x)
    return seconds(lambda: drop(x).backward(grad), rounds, warmup=0)


def result_name(args) -> str:
    return "step_time"  # benchmarks/results/step_time.json, which the docs cite


def add_arguments(p) -> None:
    pass


def run(args) -> tuple[list[dict], dict]:
    rounds, steps, warmup, batches, drop_rounds, drop_repeats = QUICK if args.quick else FULL
    data = Dataset.read(bundled_names())
    gen = torch.Generator().manual_seed(0)
    settings = [(b, packed) for b in batches for packed in (False, True)]
    times = {s: [] for s in settings}
    models = {}
    for s in settings:
        torch.manual_seed(0)
        model = Transformer(Transformer.config_for(data)).train()
        models[s] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True))
    for round_ in range(rounds):  # interleaved rounds: drift in machine speed hits every setting alike
        for s in settings:
            model = models[s][0]
            t = step_times(
                *models[s], model.examples(data.split("train")), s[0], s[1], steps + warmup * (not round_), gen
            )
            times[s] += t[warmup:] if round_ == 0 else t
    rows = [
        {
            "measure": "step",
            "batch_size": b,
            "rows": "packed" if p else "padded",
            "ms_per_step": 1000 * median(times[(b, p)]),
        }
        for b, p in settings
    ]
    for r in rows:
        padded = next(x for x in rows if x["batch_size"] == r["batch_size"] and x["rows"] == "padded")
        r["speedup_vs_padded"] = padded["ms_per_step"] / r["ms_per_step"]
    drop_times = {"nn.Dropout": [], "transformer Dropout": []}
    for _ in range(drop_repeats):
        drop_times["nn.Dropout"] += dropout_times(torch.nn.Dropout(0.2), drop_rounds)
        drop_times["transformer Dropout"] += dropout_times(Dropout(0.2), drop_rounds)
    rows += [
        {"measure": "dropout p 0.2, 768 x 64, forward + backward", "dropout": k, "us": 1e6 * median(v)}
        for k, v in drop_times.items()
    ]
    return rows, {}
