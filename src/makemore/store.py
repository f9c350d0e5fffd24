"""The run store: one run directory's files, and the only code that writes them.

DIR/input.txt          the items trained on (a copy: the run is self-contained)
DIR/model.safetensors  best-dev checkpoint (weights, config, vocab)
DIR/last.safetensors   latest state for --resume (adds optimizer and RNG state)
DIR/metrics.jsonl      train loss every 100 steps, dev loss at each evaluation
DIR/loss.png           the loss curve
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from . import checkpoint
from .checkpoint import Checkpoint, RunInfo
from .data import Dataset, Vocab, read_items
from .errors import MakemoreError
from .plots import plot_loss

INPUT = "input.txt"
METRICS = "metrics.jsonl"
RUN_FILES = (checkpoint.BEST, checkpoint.LAST, METRICS, INPUT)


@dataclass
class RunStore:
    """A run directory. `vocab` and `run` describe the run; they go into every checkpoint."""

    dir: Path
    vocab: Vocab | None = None
    run: RunInfo | None = None

    @classmethod
    def create(cls, work_dir: str | None, model_type: str, items: list[str], vocab: Vocab, run: RunInfo) -> RunStore:
        """A new run directory (default runs/TYPE-DATE-TIME) holding a copy of the items; refuses a
        directory that already holds a run."""
        run_dir = Path(work_dir) if work_dir else Path("runs") / f"{model_type}-{time.strftime('%Y%m%d-%H%M%S')}"
        if run_dir.exists() and not run_dir.is_dir():
            raise MakemoreError(f"run directory {run_dir} exists and is not a directory")
        existing = [name for name in RUN_FILES if (run_dir / name).exists()]
        if existing:
            raise MakemoreError(
                f"{run_dir} already holds a run ({existing[0]}); use --resume to continue it or choose another -o"
            )
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MakemoreError(f"cannot create run directory {run_dir}: {e.strerror}") from None
        checkpoint.atomic_write_bytes(run_dir / INPUT, ("\n".join(items) + "\n").encode("utf-8"))
        return cls(run_dir, vocab, run)

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise MakemoreError(f"run directory not found: {run_dir}")
        return cls(run_dir)

    # --- reading ------------------------------------------------------------------------------
    def load_best(self) -> Checkpoint:
        return self._adopt(checkpoint.load(self.dir / checkpoint.BEST))

    def load_last(self) -> Checkpoint:
        ckpt = self._adopt(checkpoint.load(self.dir / checkpoint.LAST))
        if ckpt.optimizer is None and ckpt.model.num_params():
            raise MakemoreError("checkpoint has no optimizer state; it cannot be resumed")
        for stale in self.dir.glob(".*.tmp"):  # temp files of a save that a crash cut short
            stale.unlink()
        self.truncate_metrics(ckpt.step)
        return ckpt

    def _adopt(self, ckpt: Checkpoint) -> Checkpoint:
        self.vocab, self.run = ckpt.vocab, ckpt.run
        return ckpt

    def dataset(self) -> Dataset:
        """The run's items, split as when it trained, with its vocabulary (load a checkpoint first)."""
        items, _ = read_items(self.dir / INPUT, self.run.max_item_len)
        return Dataset(items, vocab=self.vocab)

    def metrics(self) -> list[dict]:
        path = self.dir / METRICS
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    # --- writing ------------------------------------------------------------------------------
    def log(self, row: dict) -> None:
        try:
            with open(self.dir / METRICS, "a", encoding="utf-8") as f:
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
        checkpoint.atomic_write_bytes(self.dir / METRICS, payload)

    def save_best(self, trainer, best_dev: float) -> None:
        checkpoint.save(self.dir / checkpoint.BEST, self._record(trainer, trainer.evaluated_model(), best_dev))

    def save_last(self, trainer, best_dev: float) -> None:
        ckpt = self._record(trainer, trainer.model, best_dev)
        ckpt.optimizer = trainer.optimizer.state_dict() if trainer.optimizer is not None else None
        ckpt.rng, ckpt.ema = trainer.rng_state(), trainer.ema_state()
        checkpoint.save(self.dir / checkpoint.LAST, ckpt)

    def _record(self, trainer, model, best_dev: float) -> Checkpoint:
        return Checkpoint(
            model=model,
            vocab=self.vocab,
            run=self.run,
            step=trainer.step,
            best_dev=best_dev,
            train_seconds=trainer.train_seconds,
            train_config=trainer.cfg,
        )

    def plot(self) -> None:
        plot_loss(self.dir / METRICS, self.dir / "loss.png")
