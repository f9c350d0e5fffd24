"""The run store: one run directory's files, and the only code that writes them.

DIR/input.txt          the input file trained on (a copy: the run is self-contained)
DIR/data.safetensors   its items encoded, in split order, or in text mode its characters in file order
                       (a cache, rebuilt from input.txt if needed)
DIR/model.safetensors  best-dev checkpoint (weights, config, vocab)
DIR/last.safetensors   latest state for --resume (adds optimizer and RNG state)
DIR/metrics.jsonl      train loss every 100 steps, dev loss at each evaluation
DIR/loss.png           the loss curve
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import checkpoint
from .checkpoint import Checkpoint, RunInfo
from .data import CacheError, Dataset, Vocab, open_regular, shown
from .errors import MakemoreError
from .files import atomic_copy, atomic_write_bytes, check_owner, open_append

if TYPE_CHECKING:  # (the trainer imports the models; the store needs only their names here)
    from .models import Model
    from .train import TrainState


def _checked_name(run_dir: Path) -> Path:
    """Checkpoint files are opened by name through safetensors, which needs the name in UTF-8."""
    try:
        str(run_dir).encode("utf-8")
    except UnicodeEncodeError:
        raise MakemoreError(f"run directory {str(run_dir)!r} is not a valid UTF-8 name; choose another -o") from None
    return run_dir


def file_sha256(path: Path) -> str:
    """Of a file of a run directory: a regular file only, never a link followed or a FIFO waited on."""
    digest = hashlib.sha256()
    with open_regular(path, run_file=True) as f:
        while block := f.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


INPUT = "input.txt"
DATA = "data.safetensors"
METRICS = "metrics.jsonl"
PLOT = "loss.png"
LOCK = ".lock"  # holds the writer's PID
# every name a run writes: a new run goes only into a folder that holds none of them, so that
# nothing of the user's is ever replaced
RUN_FILES = (checkpoint.BEST, checkpoint.LAST, METRICS, INPUT, DATA, PLOT)


@dataclass
class RunStore:
    """A run directory. `vocab` and `run` describe the run; they go into every checkpoint.

    Whoever writes to it holds its lock (`store.lock()`, released by `store.unlock()` or when the
    process ends): one writer at a time."""

    dir: Path
    vocab: Vocab | None = None
    run: RunInfo | None = None
    created: bool = False  # this process made the directory (a failed start removes it again)
    written: set[str] = field(default_factory=set)  # the files this process wrote: all a failed start removes
    _lock: int | None = None

    @classmethod
    def create(cls, work_dir: str | None, model_type: str, vocab: Vocab, run: RunInfo) -> RunStore:
        """A new run directory (default runs/TYPE-DATE-TIME); an existing one must be the user's."""
        run_dir = _checked_name(
            Path(work_dir) if work_dir else Path("runs") / f"{model_type}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        if run_dir.exists() and not run_dir.is_dir():
            raise MakemoreError(f"run directory {run_dir} exists and is not a directory")
        created = not run_dir.exists()
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MakemoreError(f"cannot create run directory {run_dir}: {e.strerror}") from None
        return cls(run_dir, vocab, run, created=created)

    def start(self, source: Path, data: Dataset) -> None:
        """Take the lock, check that the directory holds no run yet, and write the input (a copy
        of the file the data was read from) and the data cache into it."""
        self.lock()
        existing = [name for name in RUN_FILES if os.path.lexists(self.dir / name)]
        if (self.dir / checkpoint.LAST).exists():
            raise MakemoreError(
                f"{self.dir} already holds a run ({checkpoint.LAST}); use --resume to continue it or choose another -o"
            )
        if (self.dir / checkpoint.BEST).exists():
            raise MakemoreError(f"{self.dir} already holds a run; {self.no_last_state()}")
        if existing:
            raise MakemoreError(
                f"{self.dir} holds files a run would write ({', '.join(existing)}); makemore replaces nothing it did "
                "not write: choose another -o (a new or empty folder)"
            )
        need = os.stat(source).st_size + data.tokens.nbytes + data.offsets.nbytes
        free = shutil.disk_usage(self.dir).free
        if need > free:
            raise MakemoreError(
                f"not enough disk space in {self.dir}: the copy of the input and its encoded items need "
                f"{need / 2**20:,.0f} MB, {free / 2**20:,.0f} MB are free"
            )
        self.written.add(INPUT)
        self.run.input_sha256 = atomic_copy(source, self.dir / INPUT)
        if self.run.input_sha256 != data.sha256:
            raise MakemoreError(f"input file {source} changed while it was read; run the command again")
        self._save_data(data)

    def has_checkpoint(self, best: bool = False) -> bool:
        """Whether the best checkpoint (best=True), or any checkpoint, has been written."""
        names = (checkpoint.BEST,) if best else (checkpoint.BEST, checkpoint.LAST)
        return any((self.dir / name).exists() for name in names)

    def discard(self) -> None:
        """Undo a start that failed before its first checkpoint: the files this process wrote (never
        one it found there), and the directory if this process made it, so the same command can
        simply be run again."""
        if self.has_checkpoint():
            return
        for name in self.written - {checkpoint.BEST, checkpoint.LAST}:
            (self.dir / name).unlink(missing_ok=True)
        self.written.clear()
        if self.created:
            (self.dir / LOCK).unlink(missing_ok=True)  # the lock file too: the folder is ours
            try:
                self.dir.rmdir()
            except OSError:  # not empty: something else is in it, leave it
                pass

    def no_last_state(self) -> str:
        """What to do with a run whose best checkpoint was written but whose resumable state was not
        (its first save of last.safetensors failed: a full disk, say)."""
        return (
            f"it has its best checkpoint ({checkpoint.BEST}) but no {checkpoint.LAST} to resume from "
            f"(its save failed). eval, sample and score use the best checkpoint; to train further, "
            f"start a new run with another -o"
        )

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        run_dir = _checked_name(Path(run_dir))
        if not run_dir.is_dir():
            raise MakemoreError(f"run directory not found: {run_dir}")
        return cls(run_dir)

    # --- one writer at a time -------------------------------------------------------------------
    def lock(self) -> None:
        """Hold DIR/.lock (flock: the kernel releases it when the process ends, however it ends)."""
        check_owner(self.dir)
        fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise MakemoreError(
                f"{self.dir} is in use by process {holder} (one writer at a time); wait for it or choose another -o"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock = fd

    @property
    def holds_lock(self) -> bool:
        return self._lock is not None

    def unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None

    # --- reading ------------------------------------------------------------------------------
    def load_best(self) -> Checkpoint:
        return self._adopt(checkpoint.load(self.dir / checkpoint.BEST))

    def load_last(self) -> Checkpoint:
        if not (self.dir / checkpoint.LAST).exists():
            raise MakemoreError(f"{self.dir} cannot be resumed: {self._why_no_last()}")
        ckpt = self._adopt(checkpoint.load(self.dir / checkpoint.LAST))
        if ckpt.optimizer is None and not ckpt.model.can("fit"):
            raise MakemoreError("checkpoint has no optimizer state; it cannot be resumed")
        for stale in self.dir.glob(".*.tmp"):  # temp files of a save that a crash cut short
            stale.unlink()
        self.truncate_metrics(ckpt.step)
        return ckpt

    def _why_no_last(self) -> str:
        if (self.dir / checkpoint.BEST).exists():
            return self.no_last_state()
        started = [name for name in (INPUT, DATA, METRICS) if (self.dir / name).exists()]
        if started:
            return (
                f"it holds the start of a run ({', '.join(started)}) that ended before its first checkpoint; "
                f"train it again with another -o, or delete {self.dir} and run the same command"
            )
        return f"it holds no run ({checkpoint.LAST} is missing); start one with makemore train -o {self.dir}"

    def _adopt(self, ckpt: Checkpoint) -> Checkpoint:
        self.vocab, self.run = ckpt.vocab, ckpt.run
        return ckpt

    def dataset(self, write_cache: bool = True) -> Dataset:
        """The run's items, split as when it trained, with its vocabulary (load a checkpoint first):
        from the data cache while it matches input.txt, else encoded again from input.txt (and
        cached again, with write_cache)."""
        path = self.dir / INPUT
        try:
            size_and_time = _size_and_time(path)
        except FileNotFoundError:
            raise MakemoreError(f"{path} is missing; the run's data cannot be read without it (restore it)") from None
        try:
            data, facts = Dataset.load(self.dir / DATA)
            stale = self._stale(data, facts, size_and_time)
        except CacheError as e:
            stale = None if not (self.dir / DATA).exists() else str(e)  # none yet: a run of an older makemore
            data = None
        if data is not None and stale is None:
            return data
        if stale:
            print(shown(f"{self.dir / DATA} {stale}; encoding {path} again"), file=sys.stderr)
        if self.run.text:
            data = Dataset.read_text(path, vocab=self.vocab, run_file=True)
        else:
            data = Dataset.read(path, self.run.max_item_len, vocab=self.vocab, run_file=True, rule=self.run.split)
        if self.run.input_sha256 and data.sha256 != self.run.input_sha256:
            raise self._changed()
        if write_cache:
            try:
                self._save_data(data)
            except MakemoreError as e:  # a read-only or full disk: the run goes on without the cache
                print(f"note: {e}", file=sys.stderr)
        return data

    def _stale(self, data: Dataset, facts: dict[str, str], size_and_time: str) -> str | None:
        """Why a cache that loaded does not hold this run's data, or None if it does."""
        if self.run.input_sha256 and data.sha256 != self.run.input_sha256:
            return "was built from other data"
        if data.vocab != self.vocab or facts.get("max_item_len") != str(self.run.max_item_len):
            return "was built with another vocabulary or --max-item-len"
        if data.text != self.run.text:
            return "was built in another mode (items or text)"
        if data.rule != self.run.split:
            return f"was split by another rule ({data.rule}, the run's is {self.run.split})"
        if facts.get("input") != size_and_time and self.run.input_sha256:  # input.txt touched: is it the same?
            if file_sha256(self.dir / INPUT) != self.run.input_sha256:
                raise self._changed()
        return None

    def _changed(self) -> MakemoreError:
        return MakemoreError(
            f"{self.dir / INPUT} has changed since the run trained on it; its split would differ, so the run "
            "cannot go on with it (restore the file, or train a new run on the new data)"
        )

    def _save_data(self, data: Dataset) -> None:
        """Write the data cache, stamped with input.txt's size and time (so a later change shows)."""
        facts = {"max_item_len": str(self.run.max_item_len), "input": _size_and_time(self.dir / INPUT)}
        self.written.add(DATA)
        atomic_write_bytes(self.dir / DATA, data.to_bytes(**facts))

    def metrics(self) -> list[dict]:
        """The log's rows. A torn last line (a crash during an append) is dropped; other damage is one line."""
        path = self.dir / METRICS
        try:
            with open_regular(path, run_file=True) as f:
                text = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        lines = [line for line in text.splitlines() if line.strip()]
        rows = []
        for n, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                if n == len(lines):
                    break  # torn by a crash mid-append: the checkpoint predates it anyway
                raise MakemoreError(f"{path} line {n} is not JSON; the log is damaged") from None
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                raise MakemoreError(f"{path} line {n} has no step; the log is damaged")
            rows.append(row)
        return rows

    # --- writing ------------------------------------------------------------------------------
    def log(self, row: dict) -> None:
        self.written.add(METRICS)
        with open_append(self.dir / METRICS) as f:
            try:
                f.write(json.dumps(row) + "\n")
            except OSError as e:
                raise MakemoreError(f"cannot write {self.dir / METRICS}: {e.strerror}") from None

    def truncate_metrics(self, step: int) -> None:
        """Drop log rows written after the checkpoint (a crash may have left some), so a
        resumed run's log is the same as an uninterrupted one's."""
        if not (self.dir / METRICS).exists():
            return
        kept = [row for row in self.metrics() if row["step"] <= step]
        payload = "".join(json.dumps(row) + "\n" for row in kept).encode("utf-8")
        atomic_write_bytes(self.dir / METRICS, payload)

    def save_best(self, model: Model, state: TrainState, best_dev: float) -> None:
        """The weights that are evaluated and sampled, with where training stood (no resumable state)."""
        checkpoint.save(self.dir / checkpoint.BEST, self._record(model, state, best_dev))

    def save_last(self, model: Model, state: TrainState, best_dev: float) -> None:
        """The raw weights and the whole training state: what --resume continues from."""
        ckpt = self._record(model, state, best_dev)
        ckpt.optimizer, ckpt.rng, ckpt.ema = state.optimizer, state.rng, state.ema
        checkpoint.save(self.dir / checkpoint.LAST, ckpt)

    def _record(self, model: Model, state: TrainState, best_dev: float) -> Checkpoint:
        return Checkpoint(
            model=model,
            vocab=self.vocab,
            run=self.run,
            step=state.step,
            best_dev=best_dev,
            train_seconds=state.train_seconds,
            train_config=state.config,
        )

    def plot(self) -> None:
        from .plots import plot_loss  # matplotlib takes ~0.8 s to import: only for the commands that draw

        self.written.add(PLOT)
        plot_loss(self.metrics(), self.dir / PLOT)


def _size_and_time(path: Path) -> str:
    st = os.stat(path)
    return f"{st.st_size} {st.st_mtime_ns}"
