"""The "Let's build GPT" ladder, rung by rung: trains each rung that runs/ladder/ lacks (one at a
time), reads back its losses, prints the table of docs/part6-transformer.md and draws
docs/img/transformer-ladder.png.

    .venv/bin/python docs/ladder.py              (from the repository root, after `make setup`)
    .venv/bin/python docs/ladder.py --names      (the names rungs only: about 4 minutes of training)

Every rung is one `makemore train` command: the lecture's loop (`--preset lecture`: AdamW 1e-3,
5,000 steps of 32 rows, n_embd 32, no dropout) with pieces of the block switched on one by one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAKEMORE = [sys.executable, "-m", "makemore"]
RUNS = ROOT / "runs" / "ladder"
FIGURE = ROOT / "docs" / "img" / "transformer-ladder.png"

SMALL = "--type transformer --preset lecture"
# rung: (label, names flags, Tiny Shakespeare flags (None: the names flags and TEXT), the lecture's
# validation loss on Tiny Shakespeare and the commit of ng-video-lecture whose message gives it)
RUNGS = {
    "1-bigram": ("bigram", "--type bigram-nn", "--type bigram-nn --text", None),
    "2-one-head": (
        "+ one attention head",
        f"{SMALL} --n-layer 1 --n-head 1 --no-ffn --no-residual --no-layer-norm",
        None,
        (2.5, "10024b1"),
    ),
    "3-multi-head": ("4 heads", f"{SMALL} --n-layer 1 --no-ffn --no-residual --no-layer-norm", None, (2.28, "a6e0bee")),
    "4-ffn": ("+ feed-forward", f"{SMALL} --n-layer 1 --no-residual --no-layer-norm", None, (2.24, "97dd3f9")),
    "5-residual": ("3 blocks, + residual", f"{SMALL} --n-layer 3 --no-layer-norm", None, None),
    "6-layernorm": ("+ LayerNorm", f"{SMALL} --n-layer 3", None, (2.06, "0016836")),
    "7-scaled": (
        "scaled up",
        f"{SMALL} --n-layer 4 --n-embd 64 --dropout 0.2",
        # a CPU-sized scaled model: nanoGPT's CPU recipe for Tiny Shakespeare (4 layers, 4 heads, 128 wide,
        # block 64, batch 12, 2,000 steps, lr 1e-3 decayed to 1e-4, no dropout); the lecture's own is GPU_RUNG
        "--text --type transformer --block-size 64 -b 12 --n-layer 4 --n-head 4 --n-embd 128 --dropout 0 "
        "--emb-dropout 0 --max-steps 2000 -l 1e-3 --min-lr-ratio 0.1 --warmup-steps 100 --ema 0 --eval-interval 500",
        None,
    ),
}
# the small rungs read blocks of 8 characters of Tiny Shakespeare, as the lecture's do
TEXT = "--text --block-size 8"
# the lecture's scaled model (6 layers of 384, block 256, ~10.8M parameters): too big for 2 CPU cores
GPU_RUNG = (
    "--text --type transformer --preset lecture --block-size 256 -b 64 --n-layer 6 --n-head 6 --n-embd 384 "
    "--dropout 0.2 -l 3e-4 --device cuda"
)


def command(data: str, rung: str) -> str:
    _, names, shakespeare, _ = RUNGS[rung]
    if data == "names":
        return names
    return shakespeare or f"{names} {TEXT}"


def threads(flags: str) -> str:
    """One thread for the small rungs; the scaled models take both cores."""
    return "2" if "--n-embd 128" in flags else "1"


def train(data: str, rung: str) -> Path:
    run = RUNS / f"{data}-{rung}"
    if not (run / "model.safetensors").exists():
        flags = command(data, rung)
        print(f"training {run.name}: makemore train {flags}", file=sys.stderr)
        argv = [*MAKEMORE, "train", *flags.split(), "--threads", threads(flags), "-o", str(run), "-q"]
        subprocess.run(argv, check=True, cwd=ROOT)
    return run


def measured(run: Path) -> dict:
    out = subprocess.run([*MAKEMORE, "eval", "-o", str(run), "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", action="store_true", help="the names rungs only")
    args = parser.parse_args()
    datasets = ["names"] if args.names else ["names", "shakespeare"]
    results = {(d, r): measured(train(d, r)) for d in datasets for r in RUNGS}
    print("| rung | names: `makemore train ...` | params | names test | Shakespeare dev | lecture (commit) |")
    print("|---|---|---:|---:|---:|---:|")
    for rung, (label, *_, lecture) in RUNGS.items():
        names = results["names", rung]
        shakespeare = f"{results['shakespeare', rung]['dev']:.4f}" if "shakespeare" in datasets else ""
        quoted = f"{lecture[0]} ({lecture[1]})" if lecture else "–"
        row = [
            label,
            f"`{command('names', rung)}`",
            f"{names['params']:,}",
            f"{names['test']:.4f}",
            shakespeare,
            quoted,
        ]
        print("| " + " | ".join(row) + " |")
    from makemore.plots import plot_ladder

    labels = [f"{r.split('-')[0]}. {RUNGS[r][0]}" for r in RUNGS]
    series = [("names: test (ours)", [results["names", r]["test"] for r in RUNGS])]
    if "shakespeare" in datasets:
        shakespeare = [results["shakespeare", r]["dev"] for r in RUNGS]
        series.append(("Tiny Shakespeare: dev (ours; rung 7 a CPU-sized model)", shakespeare))
    series.append(
        (
            "Tiny Shakespeare: the lecture's val (its commit messages)",
            [rung[3] and rung[3][0] for rung in RUNGS.values()],
        )
    )
    plot_ladder(labels, series, FIGURE)
    print(f"drew {FIGURE.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
