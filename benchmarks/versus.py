"""`versus`: sampling and scoring speed of two versions of the code, in alternating processes on the
same runs:

    git worktree add /tmp/before <commit>
    .venv/bin/python -m benchmarks versus /tmp/before/src [--runs runs/figures] [--rounds 5]

Each round runs one process with the other version's `src` first on PYTHONPATH, then one with this
checkout's; every process measures the default transformer's sampling at batch 1, 100 and 1,000 and
the dev names' scoring (`makemore score`'s code) of the transformer, mlp and bigram runs (--runs
DIR/TYPE). Rows: each measure's medians and their ratio. --quick: one round, a few calls, this
checkout against itself unless BEFORE is given, on runs trained for a few steps unless --runs.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .common import ROOT, median, run_python, train_tiny_runs

RUN_TYPES = ("transformer", "mlp", "bigram")
# (batch, generate() calls) of the transformer's sampling
FULL = ((1, 60), (100, 5), (1000, 2))
QUICK = ((1, 2), (100, 1))

# The code under test is the other version's: only what `makemore sample` and `score` have long used.
ONE_ROUND = """
from pathlib import Path
from makemore.runs import score_checked
from makemore.sample import generate
from makemore.store import RunStore
out = {{}}
for run in {types!r}:
    store = RunStore.open(Path({runs!r}) / run)
    best = store.load_best()
    limit = best.model.max_sample_len(best.run.max_len)
    if run == "transformer":
        for batch, calls in {sampling!r}:
            generate(best.model, best.vocab, batch, limit, torch.Generator().manual_seed(0))
            gen = torch.Generator().manual_seed(1)
            t0 = time.perf_counter()
            for _ in range(calls):
                generate(best.model, best.vocab, batch, limit, gen)
            out[f"transformer: sampling items/s at batch {{batch}}"] = batch * calls / (time.perf_counter() - t0)
    dev = store.dataset(write_cache=False).items("dev")
    score_checked(best, dev[:1000])
    t0 = time.perf_counter()
    for a in range(0, len(dev), 1000):
        score_checked(best, dev[a : a + 1000])
    out[f"{{run}}: scoring items/s"] = len(dev) / (time.perf_counter() - t0)
print(json.dumps(out))
"""


def add_arguments(p) -> None:
    p.add_argument("before", type=Path, nargs="?", help="the other version's src/ folder (--quick: this one's)")
    p.add_argument("--runs", type=Path, help="trained runs, DIR/TYPE (default: runs/figures)")
    p.add_argument("--rounds", type=int, default=5, help="processes of each version (default: 5; --quick: 1)")


def run(args) -> tuple[list[dict], dict]:
    if args.before is None and not args.quick:
        raise SystemExit("versus: name the other version's src/ folder (see --help)")
    before, now = (args.before or ROOT / "src").resolve(), ROOT / "src"
    rounds = 1 if args.quick else args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or (train_tiny_runs(Path(tmp), list(RUN_TYPES), args.threads) if args.quick else None)
        runs = (runs or ROOT / "runs" / "figures").resolve()
        code = ONE_ROUND.format(types=RUN_TYPES, runs=str(runs), sampling=QUICK if args.quick else FULL)
        measured = {"before": [], "now": []}
        for _ in range(rounds):  # one after the other: each has the machine to itself
            pair = [lambda src=src: run_python(code, args.threads, pythonpath=[src]) for src in (before, now)]
            if args.quick:  # side by side: only a check that both run
                with ThreadPoolExecutor(2) as pool:
                    pair = [pool.submit(f).result for f in pair]
            for key, measure in zip(measured, pair):
                measured[key].append(measure())
    rows = []
    for key in measured["before"][0]:
        a, b = median(r[key] for r in measured["before"]), median(r[key] for r in measured["now"])
        rows.append(
            {"measure": key, "processes": rounds, "before": a, "now": b, "ratio": b / a, "before_src": str(before)}
        )
    return rows, {}
