"""What every benchmark shares: the machine it ran on, the thread policy, median timing, small
data for --quick, child processes, and the one result layout {date, command, machine, rows}."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
LAYOUT = ("date", "command", "machine", "rows")
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
# A child's own high-water mark of resident memory, in bytes (Linux): appended to code run in a child.
PEAK_RSS = "next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) * 1024"


# --- the machine ---------------------------------------------------------------------------------
def cpu_model() -> str:
    """lscpu's "Model name" (e.g. "AMD EPYC"), or the platform's word for the processor."""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or platform.machine() or "unknown"


def vector_extensions() -> list[str]:
    """The vector and matrix units among VECTOR_FLAGS that /proc/cpuinfo lists (none known off Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line.split(":", 1)[1].split() for line in f if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    return [name for name in VECTOR_FLAGS if name in flags]


def machine() -> dict:
    """The machine and software the numbers were measured with."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "extensions": vector_extensions(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


# --- the thread policy ------------------------------------------------------------------------------
def set_threads(threads: int) -> int:
    """The one thread policy: exactly `threads` intra-op threads (never more than the cores), set
    before any work. Returns the number set; child processes are given the same."""
    cores = os.cpu_count() or 1
    if threads < 1:
        raise SystemExit(f"--threads {threads}: give at least 1")
    if threads > cores:
        print(f"--threads {threads}: this machine has {cores} cores; using {cores}", file=sys.stderr)
    torch.set_num_threads(min(threads, cores))
    return torch.get_num_threads()


# --- timing -------------------------------------------------------------------------------------------
def median(values) -> float:
    return statistics.median(list(values))


def seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of each of `repeats` calls of fn, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    return median(seconds(fn, repeats, warmup))


def median_rate(work: float, times: list[float]) -> float:
    """Work per second over the median time."""
    return work / median(times)


def say(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


# --- data and child processes -----------------------------------------------------------------------
def names_file() -> Path:
    from makemore.data import bundled_names

    return Path(bundled_names())


def tiny_names(directory: Path, n: int = 300) -> Path:
    """The first n bundled names in a file: --quick trains and evaluates on it in a blink."""
    path = Path(directory) / "tiny-names.txt"
    if not path.exists():
        lines = names_file().read_text(encoding="utf-8").splitlines()[:n]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def child_env(pythonpath: list[Path] = ()) -> dict:
    """The environment of a child process: the repository root (so it finds `benchmarks`) after
    `pythonpath`, before what PYTHONPATH already held."""
    parts = [str(p) for p in pythonpath] + [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(parts)}


def run_python(code: str, threads: int, pythonpath: list[Path] = (), in_process: bool = False) -> dict:
    """Run code in a fresh Python with `threads` torch threads (its peak memory is its own); the code
    prints one JSON object on its last line, which is returned. in_process (for --quick): run it
    here instead, which saves starting Python and torch again."""
    prelude = f"import json, os, sys, time\nimport torch\ntorch.set_num_threads({threads})\n"
    if in_process:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            exec(prelude + code, {"__name__": "__benchmark__"})
        return json.loads(out.getvalue().splitlines()[-1])
    done = subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, env=child_env(pythonpath), cwd=ROOT
    )
    if done.returncode:
        raise SystemExit(f"a benchmark's child process failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def python(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    """`python ARGS` in a child process, its output captured."""
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=child_env(), cwd=ROOT)
    if check and done.returncode:
        raise SystemExit(f"python {shlex.join(args)[:300]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def makemore(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    """`python -m makemore ARGS` in a child process, its output captured."""
    return python(["-m", "makemore", *args], check)


# --- the result -------------------------------------------------------------------------------------
def command_line(argv: list[str]) -> str:
    """The benchmark's command as typed from the repository root."""
    exe = Path(sys.executable)
    try:
        exe = exe.relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.join([str(exe), "-m", "benchmarks", *argv])


def result(argv: list[str], rows: list[dict], **measured_machine) -> dict:
    """The one layout every subcommand writes: when, what command, on what machine, and its rows."""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command_line(argv),
        "machine": {**machine(), **measured_machine},
        "rows": rows,
    }


def problems(res: dict) -> list[str]:
    """What is wrong with a result's layout (nothing: an empty list)."""
    if not isinstance(res, dict) or tuple(res) != LAYOUT:
        return [f"keys {list(res) if isinstance(res, dict) else type(res).__name__}, expected {list(LAYOUT)}"]
    found = []
    if not isinstance(res["machine"], dict) or not {"cpu", "cores", "torch"} <= set(res["machine"]):
        found.append("machine must name cpu, cores and torch")
    if not isinstance(res["rows"], list) or not res["rows"] or not all(isinstance(r, dict) for r in res["rows"]):
        found.append("rows must be a non-empty list of objects")
    return found


def write(res: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, allow_nan=False, default=_plain) + "\n")


def _plain(value):
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


# --- a table of the rows ------------------------------------------------------------------------------
def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table, one column per key (in the order the keys first appear)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def train_tiny_runs(directory: Path, types: list[str], threads: int, steps: int = 3) -> Path:
    """Runs of `types` trained for a few steps on a tiny file, in this process (for --quick: a
    benchmark that needs trained runs gets them in a second). Returns the directory, DIR/TYPE."""
    from makemore.cli import main as makemore_main

    directory = Path(directory)
    data = tiny_names(directory)
    for model_type in types:
        args = ["train", "--type", model_type, "-o", str(directory / model_type), "-i", str(data), "-q"]
        args += ["--max-steps", str(steps), "--threads", str(threads)]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = makemore_main(args)
        if code:
            raise SystemExit(f"makemore {shlex.join(args)} failed ({code})")
    return directory
