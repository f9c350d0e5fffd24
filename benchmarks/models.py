"""`models`: every model at its default recipe on the bundled names: parameters, train/dev/test NLL
and training time, the table the README shows. Trains each missing run with `makemore train --type T`
(no other flags but --threads) into --runs DIR/T, evaluates every run. Rows of types not named are
kept from the previous result file. --quick: `mlp` (unless types are named) trained for a few steps
on a tiny file into a temporary directory (unless --runs), their rows not merged with earlier ones.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import shlex
import tempfile
from pathlib import Path

from makemore import checkpoint
from makemore.models import REGISTRY
from makemore.runs import evaluate

from .common import RESULTS, ROOT, say, tiny_names
from .common import makemore as run_makemore

RUNS = ROOT / "runs" / "bench"
QUICK_TYPES = ("mlp",)
QUICK_STEPS = 5


def finished(run_dir: Path) -> bool:
    """Whether the run's last checkpoint has trained all the steps of its recipe."""
    last = run_dir / checkpoint.LAST
    if not last.exists():
        return False
    ckpt = checkpoint.load(last)
    return ckpt.train_config is None or ckpt.step >= ckpt.train_config.max_steps


@contextlib.contextmanager
def cpu_lock(path: Path | None):
    """Hold an exclusive flock(2) on `path` (the one `flock FILE COMMAND` takes), so that CPU-heavy
    work of other processes sharing the file never runs beside this; None: no lock."""
    if path is None:
        yield
        return
    with open(path, "a") as f:
        say(f"waiting for the CPU lock {path}")
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_trained(run_dir: Path, train_args: list[str], lock: Path | None = None, in_process: bool = False) -> Path:
    """`makemore train ARGS -o RUN_DIR`, unless the run has finished (then it is reused); a run stopped
    part-way goes on with --resume. in_process (for --quick): in this process, which saves starting
    Python and torch again."""
    if finished(run_dir):
        return run_dir
    args = ["train", *train_args, "-o", str(run_dir), "-q"]
    if (run_dir / checkpoint.LAST).exists():
        args.append("--resume")
    say("makemore " + shlex.join(args))
    with cpu_lock(lock):
        if in_process:
            makemore_in_process(args)
        else:
            run_makemore(args)
    return run_dir


def makemore_in_process(args: list[str]) -> None:
    from makemore.cli import main as makemore_main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        if code := makemore_main(args):
            raise SystemExit(f"makemore {shlex.join(args)} failed ({code}): {err.getvalue()[-1000:]}")


def default_run(model_type: str, runs: Path, threads: int, quick: bool) -> Path:
    args = ["--type", model_type, "--threads", str(threads)]
    if quick:
        args += ["-i", str(tiny_names(runs)), "--max-steps", str(QUICK_STEPS)]
    return ensure_trained(runs / model_type, args)


def row(model_type: str, runs: Path, threads: int, quick: bool) -> dict:
    run_dir = default_run(model_type, runs, threads, quick)
    report = evaluate(run_dir)
    last = checkpoint.load(run_dir / checkpoint.LAST)
    return {
        "type": model_type,
        "params": report["params"],
        "train": report["train"],
        "dev": report["dev"],
        "test": report["test"],
        "best_step": report["step"],
        "steps": last.step,
        "train_seconds": round(last.train_seconds, 1),
    }


def markdown(res: dict, args) -> str:
    lines = ["| model | params | train | dev | test | steps | training time |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        lines.append(
            f"| `{r['type']}` | {r['params']:,} | {r['train']:.4f} | {r['dev']:.4f} | {r['test']:.4f} | "
            f"{r['steps']:,} | {r['train_seconds']:.1f} s |"
        )
    return "\n".join(lines) + "\n"


def add_arguments(p) -> None:
    p.add_argument("--types", nargs="+", choices=list(REGISTRY), metavar="T", help="model types (default: all)")
    p.add_argument("--runs", type=Path, metavar="DIR", help=f"runs, DIR/TYPE (default: {RUNS.relative_to(ROOT)})")


def run(args) -> tuple[list[dict], dict]:
    types = args.types or (QUICK_TYPES if args.quick else list(REGISTRY))
    previous = RESULTS / "models.json"
    by_type = {}
    if not args.quick and previous.exists():
        by_type = {r["type"]: r for r in json.loads(previous.read_text())["rows"]}
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or (Path(tmp) if args.quick else RUNS)
        by_type |= {t: row(t, runs, args.threads, args.quick) for t in types}
    return [by_type[t] for t in REGISTRY if t in by_type], {}
