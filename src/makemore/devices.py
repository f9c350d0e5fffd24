"""Where training runs and with how many threads: the device, the CPU's intra-op threads, and the
memory a new allocation can get."""

from __future__ import annotations

import os
import sys

import torch

from .errors import MakemoreError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise MakemoreError("--device cuda requested but CUDA is not available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise MakemoreError("--device mps requested but MPS is not available")
    return torch.device(name)


# Work per training step (parameters x predicted tokens per batch) above which more than one thread
# pays. Below it a step is too short to split: on a 2-core machine a second thread saves ~10% when
# the machine is idle and costs 3x or more as soon as anything else runs (`python -m benchmarks
# threads`; docs/performance.md).
MANY_THREADS_WORK = 100_000_000


def auto_threads(model, cfg) -> int:
    """The thread count `--threads 0` means: 1 for a small step, every core (0) for a large one."""
    tokens = cfg.batch_size * model.tokens_per_example
    return 0 if model.num_params() * tokens >= MANY_THREADS_WORK else 1


def set_threads(threads: int, ranks: int = 1) -> None:
    """Explicit intra-op threads: oversubscribing 2 cores slows training by 3-80x, so never more
    threads than cores, shared among the ranks of this machine. 0: all of them, or OMP_NUM_THREADS
    where the environment sets it (the usual way to say how many a process may take: the test
    suite runs two at a time with 1 each)."""
    cores = max(1, (os.cpu_count() or 1) // ranks)
    if threads > cores:
        per = " per rank" if ranks > 1 else ""
        print(f"--threads {threads}: this machine has {cores} cores{per}; using {cores}", file=sys.stderr)
    torch.set_num_threads(min(threads, cores) or min(cores, _omp_threads() or cores))


def _omp_threads() -> int:
    """OMP_NUM_THREADS as a whole number >= 1, or 0 when it is not set (or not a number)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) >= 1 else 0


def available_memory(device: torch.device) -> int:
    """Bytes a new allocation can get on the device: MemAvailable on Linux CPUs, free GPU memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
