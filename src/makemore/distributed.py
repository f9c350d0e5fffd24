"""Training on several processes with torch.distributed's DistributedDataParallel (DDP).

`torchrun --nproc-per-node N -m makemore train ...`, or `makemore train --nproc N` (which runs the
same launcher), starts N processes, the ranks. Every rank reads the data, builds the same model and
draws the same global batch from one seeded stream, then trains on its own slice of that batch; DDP
averages the gradients, so every rank takes the same optimizer step as one process would on the
whole batch. Only rank 0 writes the run directory and prints; evaluation is split across the ranks
and summed. Nothing in a checkpoint depends on how many ranks wrote it.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from .errors import MakemoreError

REPORTED = "MAKEMORE_REPORTED"  # set by `train --nproc` for its ranks: where rank 0 marks a printed error
LAUNCHER = "MAKEMORE_LAUNCHER"  # set by `train --nproc` for its ranks: the launcher's process id


@dataclass(frozen=True)
class World:
    """This process's place among the ranks; World() is a single process."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, ix: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global batch (its size divides evenly)."""
        return ix.view(self.size, -1)[self.rank]

    def shard(self, n: int) -> slice:
        """This rank's rows of n rows split as evenly as they go (evaluation)."""
        per = -(-n // self.size)
        return slice(self.rank * per, min(n, (self.rank + 1) * per))

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the ranks (float64)."""
        if self.size == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def agree(self, error: Exception | None) -> None:
        """Rank 0's outcome of a step only it performs (creating the run directory, taking its lock),
        told to every rank: each raises rank 0's error, so no rank goes on alone."""
        if self.size > 1:
            box = [None if error is None else str(error)]
            dist.broadcast_object_list(box, src=0)
            if error is None and box[0] is not None:
                raise MakemoreError(box[0])
        if error is not None:
            raise error


_world = World()


def world() -> World:
    return _world


def join() -> World:
    """Join the process group that torchrun describes in the environment (RANK, WORLD_SIZE, ...):
    gloo on CPU, nccl with one GPU per rank. Without torchrun, a single process."""
    global _world
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        _die_with_launcher()
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
        _world = World(dist.get_rank(), dist.get_world_size())
    return _world


def _die_with_launcher() -> None:
    """A rank stops (as on SIGTERM: rank 0 saves the state and releases the lock) when the launcher
    that started it dies. torchrun starts each rank in a session of its own, so a launcher killed
    outright (SIGKILL, the OOM killer), which cannot stop its ranks, left them training and holding
    the run's lock. A watchdog thread looks at the rank's parent twice a second. (The kernel's
    PR_SET_PDEATHSIG fires when the launcher's *thread* that started the rank ends, which torchrun's
    threads do at shutdown: it sent SIGTERM into ranks that were already exiting.)"""
    launcher = int(os.environ.get(LAUNCHER, "0"))
    if not launcher:
        return

    def watch() -> None:
        while os.getppid() == launcher:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="makemore-launcher-watch", daemon=True).start()


def leave() -> None:
    """Leave the process group (also after an error: a group left alive at exit can abort the
    process in gloo's threads). The rank is still known, so that rank 0 alone reports the error."""
    if dist.is_initialized():
        dist.destroy_process_group()


def check_nproc(nproc: int) -> None:
    cores = os.cpu_count() or 1
    if nproc < 1:
        raise MakemoreError("--nproc must be >= 1")
    if torch.cuda.is_available():
        if nproc > torch.cuda.device_count():
            raise MakemoreError(f"--nproc {nproc}: this machine has {torch.cuda.device_count()} GPUs, one per rank")
    elif nproc > cores:
        raise MakemoreError(f"--nproc {nproc}: this machine has {cores} cores; each rank needs one")


def launch(nproc: int, train_argv: list[str]) -> int:
    """`makemore train --nproc N ...`: what `torchrun --standalone --nproc-per-node N -m makemore train
    ...` does, with a rank's failure reported in one line (its own error is printed by rank 0)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    check_nproc(nproc)
    # torchrun's notices (its OMP_NUM_THREADS default, a worker's exit code) would bury the one line
    # a failed run prints; each rank sets its threads itself (devices.set_threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    for name in [*logging.root.manager.loggerDict, "torch.distributed"]:
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    args = get_args_parser().parse_args(
        ["--standalone", f"--nproc-per-node={nproc}", "--module", "makemore", "train", *train_argv]
    )
    with tempfile.TemporaryDirectory() as tmp:
        said = Path(tmp) / "reported"
        os.environ[REPORTED] = str(said)
        os.environ[LAUNCHER] = str(os.getpid())  # the ranks' parent, which they die with (_die_with_launcher)
        try:
            run(args)
        except ChildFailedError as e:
            if said.exists():  # rank 0 has said what went wrong
                return 1
            rank, failure = e.get_first_failure()
            raise MakemoreError(
                f"rank {rank} stopped ({_how(failure.exitcode)}); the last checkpoint is kept"
            ) from None
        except SignalException as e:  # Ctrl-C or SIGTERM: the ranks saved their state and said so
            return 128 + int(e.sigval)
        finally:  # for the ranks only: the launcher's own error must not touch the removed folder
            del os.environ[REPORTED], os.environ[LAUNCHER]
    return 0


def _how(exitcode: int) -> str:
    return f"signal {signal.Signals(-exitcode).name}" if exitcode < 0 else f"exit code {exitcode}"


def reported() -> None:
    """Rank 0 has printed an error: the launcher adds nothing (a file it named in the environment)."""
    if REPORTED in os.environ:
        Path(os.environ[REPORTED]).touch()


def await_report(timeout: float = 10.0) -> None:
    """A rank other than 0 that met the run's error: wait (at most `timeout` seconds, in case rank 0
    is gone) until rank 0 has printed it. Ending first would let the launcher see this rank fail and
    stop rank 0 before its one line, leaving only the launcher's vaguer "rank 1 stopped"."""
    said = os.environ.get(REPORTED)
    end = time.monotonic() + timeout
    while said and not Path(said).exists() and time.monotonic() < end:
        time.sleep(0.05)
