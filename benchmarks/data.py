"""`data`: data at scale: a generated file of 10 million items (recombined names, plus one item of
1,000 characters), encoded, cached, and trained on. Measures the encoding (seconds, items/s and peak
RSS of reading the file into the flat token array in split order, Dataset.read, and the size of the
cache it writes into a run directory); training from the cache (steps/s of each --types at its
default recipe against the same model on the bundled names, in one process, in turns: medians of 5
stretches after a warm-up, and the dev split's evaluation time); and the whole command
`makemore train --type mlp --max-steps 100` on the file (wall time, peak RSS). Each in a child
process of its own (peak memory); the file is written to --file if it does not exist. --quick:
2,000 items in a temporary file, a few steps, `mlp` only, the children run in this process.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from .common import PEAK_RSS, names_file, run_python, say

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
    code = main(["train", "--type", "mlp", "-i", {path!r}, "-o", {run!r}, "--max-steps", "{steps}", "-q",
                 "--threads", "{threads}"])
print(json.dumps({{"code": code, "wall_s": time.perf_counter() - t0, "report": out.getvalue().strip(),
                  "peak_rss": {rss}}}))
"""


def generate(path: Path, n: int, seed: int = 0) -> None:
    """n names made of the start of one bundled name and the end of another, and one long item."""
    names = names_file().read_text(encoding="utf-8").split()
    rng = random.Random(seed)
    long_at = rng.randrange(n)
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, n, 1 << 20):
            batch = []
            for i in range(start, min(n, start + (1 << 20))):
                a, b = rng.choice(names), rng.choice(names)
                batch.append("x" * 1000 if i == long_at else a[: rng.randint(1, len(a))] + b[rng.randint(1, len(b)) :])
            f.write("\n".join(batch) + "\n")


def add_arguments(p) -> None:
    p.add_argument("--items", type=int, default=10_000_000, help="items in the generated file (--quick: 2,000)")
    p.add_argument(
        "--file", type=Path, help="the generated file (default: TMPDIR/makemore-10m.txt; --quick: temporary)"
    )
    p.add_argument("--steps", type=int, default=500, help="steps per timed stretch of mlp (the transformer: a fifth)")
    p.add_argument("--types", nargs="+", help="model types to train (default: mlp transformer; --quick: mlp)")


def run(args) -> tuple[list[dict], dict]:
    quick, threads = args.quick, args.threads
    items = 2000 if quick else args.items
    steps, command_steps, rounds = (5, 3, 1) if quick else (args.steps, 100, 5)
    types = args.types or (["mlp"] if quick else ["mlp", "transformer"])
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or (Path(tmp) / "items.txt" if quick else Path(tempfile.gettempdir()) / "makemore-10m.txt")
        if not path.exists():
            t0 = time.perf_counter()
            generate(path, items)
            say(f"generated {path} in {time.perf_counter() - t0:.0f} s")
        file_mb = path.stat().st_size / 2**20
        encode = run_python(ENCODE.format(path=str(path), rss=PEAK_RSS), threads, in_process=quick)
        say(f"encoded: {encode}")
        rows = [{"measure": "encode", "file_mb": file_mb, **encode, "items_per_s": encode["items"] / encode["seconds"]}]
        code = COMMAND.format(path=str(path), run=f"{tmp}/run", steps=command_steps, threads=threads, rss=PEAK_RSS)
        command = run_python(code, threads, in_process=quick)
        say(f"makemore train: {command}")
        rows.append({"measure": f"makemore train --type mlp --max-steps {command_steps}", **command})
        for model_type in types:
            code = TRAIN.format(
                names=str(names_file()),
                cache=f"{tmp}/run/data.safetensors",
                model_type=model_type,
                steps=steps if model_type == "mlp" else max(1, steps // 5),
                rounds=rounds,
                rss=PEAK_RSS,
            )
            train = run_python(code, threads, in_process=quick)
            say(f"{model_type}: {train}")
            rows.append({"measure": "train from the cache", "type": model_type, **train})
    return rows, {}
