"""Data at scale: a generated file of 10 million items (recombined names, plus one item of 1,000
characters), encoded, cached, and trained on. Reports, with the CPU model:

- encoding: seconds, items per second and peak RSS of reading the file into the flat token array
  in split order (Dataset.read), and the size of the cache it writes into a run directory;
- training from the cache: steps per second of `--type mlp` and `--type transformer` at their
  default recipes against the same models on the bundled names, in one process, in turns
  (medians of 5 stretches after a warm-up); the dev split's evaluation time;
- the whole command `makemore train --type mlp --max-steps 100` on the file: wall time, peak RSS.

Run it alone (it measures time): the file is written to --file if it does not exist, not committed.

    .venv/bin/python benchmarks/bench_data.py [--items 10000000] [--file /tmp/makemore-10m.txt]

Writes benchmarks/results/data.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_ddp import cpu_model

OUT = Path(__file__).resolve().parent / "results"
PEAK_RSS = "next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) * 1024"


def generate(path: Path, n: int, seed: int = 0) -> None:
    """n names made of the start of one bundled name and the end of another, and one long item."""
    from makemore.data import bundled_names, read_items

    names, _ = read_items(bundled_names())
    rng = random.Random(seed)
    long_at = rng.randrange(n)
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, n, 1 << 20):
            batch = []
            for i in range(start, min(n, start + (1 << 20))):
                a, b = rng.choice(names), rng.choice(names)
                batch.append("x" * 1000 if i == long_at else a[: rng.randint(1, len(a))] + b[rng.randint(1, len(b)) :])
            f.write("\n".join(batch) + "\n")


def child(code: str) -> dict:
    """Run code in a fresh process (its peak RSS is its own); it prints one JSON object last."""
    prelude = "import json, time, torch\ntorch.set_num_threads(os.cpu_count())\n"
    out = subprocess.run(
        [sys.executable, "-c", "import os\n" + prelude + code], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.splitlines()[-1])


ENCODE = """
from makemore.data import Dataset
t0 = time.perf_counter()
data = Dataset.read({path!r})
seconds = time.perf_counter() - t0
payload = data.to_bytes()
print(json.dumps({{"items": len(data), "skipped": data.skipped, "seconds": seconds, "tokens": len(data.tokens),
                  "cache_bytes": len(payload), "max_len": data.max_len, "peak_rss": {rss}}}))
"""

TRAIN = """
import statistics
from makemore.config import TrainConfig
from makemore.data import Dataset
from makemore.evaluate import split_nll
from makemore.models import REGISTRY
from makemore.train import Trainer
data = {{"names": Dataset.read({names!r}), "10M": Dataset.load({cache!r})[0]}}
cls = REGISTRY[{model_type!r}]
trainers = {{}}
for key, d in data.items():
    torch.manual_seed(0)
    trainers[key] = Trainer(cls(cls.config_for(d)), d, TrainConfig(**{{**cls.train_defaults, "max_steps": 0}}))
rates = {{key: [] for key in data}}
for stretch in range({rounds} + 1):  # side by side, in turns; the first round warms up
    for key, trainer in trainers.items():
        trainer.cfg.max_steps += {steps}
        t0 = time.perf_counter()
        trainer.run()
        if stretch:
            rates[key].append({steps} / (time.perf_counter() - t0))
row = {{"peak_rss": {rss}}}
for key, trainer in trainers.items():
    t0 = time.perf_counter()
    split_nll(trainer.model, trainer.dev_examples)
    row[key] = {{"steps_per_s": statistics.median(rates[key]), "rates": rates[key],
                "dev_eval_s": time.perf_counter() - t0, "dev_items": data[key].sizes[1]}}
print(json.dumps(row))
"""

COMMAND = """
import contextlib, io
from makemore.cli import main
t0 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(["train", "--type", "mlp", "-i", {path!r}, "-o", {run!r}, "--max-steps", "100", "-q"])
print(json.dumps({{"code": code, "wall_s": time.perf_counter() - t0, "report": out.getvalue().strip(),
                  "peak_rss": {rss}}}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=10_000_000)
    p.add_argument("--file", type=Path, default=Path(tempfile.gettempdir()) / "makemore-10m.txt")
    p.add_argument("--steps", type=int, default=500, help="steps per timed stretch (4 stretches per model)")
    p.add_argument("--types", nargs="+", default=["mlp", "transformer"], help="model types to train")
    args = p.parse_args()
    if not args.file.exists():
        t0 = time.perf_counter()
        generate(args.file, args.items)
        print(f"generated {args.file} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    result = {"cpu": cpu_model(), "cores": os.cpu_count(), "file_bytes": args.file.stat().st_size}
    result["encode"] = child(ENCODE.format(path=str(args.file), rss=PEAK_RSS))
    print(result["encode"], file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        result["command"] = child(COMMAND.format(path=str(args.file), run=f"{tmp}/run", rss=PEAK_RSS))
        print(result["command"], file=sys.stderr)
        cache = f"{tmp}/run/data.safetensors"
        from makemore.data import bundled_names

        result["train"] = {}
        for model_type in args.types:
            steps = args.steps if model_type == "mlp" else args.steps // 5
            code = TRAIN.format(
                names=str(bundled_names()), cache=cache, model_type=model_type, steps=steps, rounds=5, rss=PEAK_RSS
            )
            result["train"][model_type] = child(code)
            print(model_type, result["train"][model_type], file=sys.stderr)
    OUT.mkdir(exist_ok=True)
    (OUT / "data.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "data.md").write_text(table(result))
    print(table(result))


def table(r: dict) -> str:
    e, c, gib = r["encode"], r["command"], 2**30
    lines = [
        f"{e['items']:,} items ({r['file_bytes'] / 2**20:,.0f} MB, longest {e['max_len']:,} characters), "
        f"{r['cpu']} ({r['cores']} cores):",
        "",
        "| | seconds | items/s | peak RSS |",
        "|---|---|---|---|",
        f"| encode (read, split, flat array) | {e['seconds']:.1f} | {e['items'] / e['seconds']:,.0f} | "
        f"{e['peak_rss'] / gib:.2f} GiB |",
        f"| `makemore train --type mlp --max-steps 100` | {c['wall_s']:.1f} | | {c['peak_rss'] / gib:.2f} GiB |",
        "",
        f"Cache in the run directory: {e['cache_bytes'] / 2**20:,.0f} MB "
        f"({e['tokens']:,} one-byte tokens and {e['items'] + 1:,} offsets).",
        "",
        "| model | steps/s on names | steps/s on 10M | 10M / names | 10M dev evaluation | peak RSS (both) |",
        "|---|---|---|---|---|---|",
    ]
    for model_type, row in r["train"].items():
        names, big = row["names"], row["10M"]
        lines.append(
            f"| {model_type} | {names['steps_per_s']:.0f} | {big['steps_per_s']:.0f} | "
            f"{big['steps_per_s'] / names['steps_per_s']:.2f} | {big['dev_eval_s']:.0f} s for "
            f"{big['dev_items']:,} items | {row['peak_rss'] / gib:.2f} GiB |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
