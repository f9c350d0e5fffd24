"""Cost of one transformer training step (forward, backward, AdamW) on the bundled names, with
the batch's items padded to its longest item or packed into rows (data.pack), and the cost of
the dropout masks (torch's nn.Dropout against the transformer's). Median milliseconds over
timed steps after warm-up, every setting timed in the same run, interleaved, so the ratios
hold even when the machine's speed drifts. Writes benchmarks/results/step_time.{json,md}.
Run it alone (timings mean nothing while something else uses the CPU):

    flock /tmp/makemore-cpu.lock .venv/bin/python benchmarks/bench_step.py
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import torch

from makemore.data import Dataset, bundled_names
from makemore.models.transformer import Dropout, Transformer
from makemore.train import batch_loss

OUT = Path(__file__).resolve().parent / "results"


def step_times(model, optimizer, examples, batch_size: int, packed: bool, steps: int, gen) -> list[float]:
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        ix = torch.randint(0, len(examples), (batch_size,), generator=gen)
        xb, yb, pos = model.shape_batch(*examples[ix], packed)  # as the Trainer shapes a batch
        optimizer.zero_grad(set_to_none=True)
        batch_loss(model, xb, yb, pos).backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    return times


def dropout_times(drop, rounds: int = 200) -> list[float]:
    x = torch.randn(768, 64, requires_grad=True)  # one residual branch of a padded batch of 64
    grad = torch.randn_like(x)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        drop(x).backward(grad)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    torch.set_num_threads(2)
    data = Dataset.read(bundled_names())
    gen = torch.Generator().manual_seed(0)
    settings = [(b, packed) for b in (64, 128) for packed in (False, True)]
    times = {s: [] for s in settings}
    models = {}
    for s in settings:
        torch.manual_seed(0)
        model = Transformer(Transformer.config_for(data)).train()
        models[s] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True))
    for round_ in range(4):  # interleaved rounds: drift in machine speed hits every setting alike
        for s in settings:
            model = models[s][0]
            t = step_times(*models[s], model.examples(data.split("train")), s[0], s[1], 60, gen)
            times[s] += t[10:] if round_ == 0 else t
    drop_times = {"nn.Dropout": [], "transformer Dropout": []}
    for _ in range(3):
        drop_times["nn.Dropout"] += dropout_times(torch.nn.Dropout(0.2))
        drop_times["transformer Dropout"] += dropout_times(Dropout(0.2))
    rows = [
        {"batch_size": b, "rows": "packed" if p else "padded", "ms_per_step": 1000 * statistics.median(times[(b, p)])}
        for b, p in settings
    ]
    for r in rows:
        padded = next(x for x in rows if x["batch_size"] == r["batch_size"] and x["rows"] == "padded")
        r["speedup_vs_padded"] = padded["ms_per_step"] / r["ms_per_step"]
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "steps": rows,
        "dropout_us_fwd_bwd_768x64": {k: 1e6 * statistics.median(v) for k, v in drop_times.items()},
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "step_time.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| batch | rows | ms/step (median) | speed-up |", "|---:|---|---:|---:|"]
    lines += [
        f"| {r['batch_size']} | {r['rows']} | {r['ms_per_step']:.2f} | {r['speedup_vs_padded']:.2f}x |" for r in rows
    ]
    lines += ["", "| dropout (p 0.2, 768 x 64, forward + backward) | µs (median) |", "|---|---:|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in result["dropout_us_fwd_bwd_768x64"].items()]
    (OUT / "step_time.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
