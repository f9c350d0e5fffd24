"""One harness for makemore's benchmarks, run from the repository root:

    .venv/bin/python -m benchmarks SUBCOMMAND [--quick] [--threads N] [--out FILE] [options]

Every subcommand sets its torch threads first (--threads, default 1; child processes get the same),
writes one JSON result {date, command, machine, rows} to --out (default
benchmarks/results/SUBCOMMAND.json; with --quick, a file in the temporary directory, so that a check
never overwrites a result), prints the rows as a table, and with --quick runs at tiny sizes in
seconds: a check that it works, whose numbers mean nothing. Timings mean nothing while something
else uses the CPU: run a full benchmark alone (e.g. under `flock /tmp/makemore-cpu.lock`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

from .common import RESULTS, problems, result, set_threads, table, write

# subcommand -> (module, what it measures)
SUBCOMMANDS = {
    "speed": ("speed", "every model's training step, FLOPs, time to a dev NLL, sampling, scoring, peak memory"),
    "models": ("models", "every model's default run: parameters, train/dev/test NLL, training time (README table)"),
    "leaderboard": ("leaderboard", "every model type at its recipe over three seeds: dev/test mean ± std (docs page)"),
    "step": ("step", "the transformer's training step, padded against packed rows, and its dropout masks"),
    "sampling": ("sampling", "sampling items/s with incremental decoding against recomputing the prefix"),
    "wavenet": ("wavenet", "WaveNet's two forms: training, whole-split evaluation and sampling speed"),
    "data": ("data", "data at scale: encoding a generated file, training from its cache, the train command"),
    "ddp": ("ddp", "one process against several ranks (torch.distributed) on the same recipe"),
    "serve": ("serve", "`makemore serve` under load: requests/s, items/s, p50/p99 latency"),
    "versus": ("versus", "sampling and scoring speed of another version of the code against this one"),
    "threads": ("threads", "training steps with one thread against all cores, idle and beside a busy process"),
}


def module(name: str):
    return importlib.import_module(f".{SUBCOMMANDS[name][0]}", __package__)


def parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The command line; only the chosen subcommand's module is imported (for its own options)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quick", action="store_true", help="tiny sizes, seconds: a check that it works")
    common.add_argument("--threads", type=int, default=1, metavar="N", help="torch threads (default: 1)")
    common.add_argument("--out", type=Path, metavar="FILE", help="the JSON result (default: see above)")
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    for name, (_, what) in SUBCOMMANDS.items():
        mod = module(name) if name == chosen else None
        sp = sub.add_parser(name, parents=[common], help=what, description=mod.__doc__ if mod else what)
        sp.formatter_class = argparse.RawDescriptionHelpFormatter
        if mod:
            mod.add_arguments(sp)
    return p


def default_out(args, mod) -> Path:
    name = mod.result_name(args) if hasattr(mod, "result_name") else args.subcommand
    if args.quick:
        return Path(tempfile.gettempdir()) / "makemore-benchmarks-quick" / f"{name}.json"
    return RESULTS / f"{name}.json"


def main(argv: list[str] | None = None) -> dict:
    """Run one subcommand; returns the result it wrote."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser(next((a for a in argv if a in SUBCOMMANDS), None)).parse_args(argv)
    set_threads(args.threads)  # before any work
    mod = module(args.subcommand)
    rows, measured = mod.run(args)
    res = result(argv, rows, **measured)
    if wrong := problems(res):
        raise SystemExit(f"{args.subcommand}: the result is malformed: {'; '.join(wrong)}")
    out = args.out or default_out(args, mod)
    write(res, out)
    if hasattr(mod, "markdown"):
        report = mod.markdown(res, args)
        out.with_suffix(".md").write_text(report)
        print(report)
    else:
        print(table(rows))
    print(f"wrote {out}", file=sys.stderr)
    return res


if __name__ == "__main__":
    main()
