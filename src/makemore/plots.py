"""The loss curve of a run, drawn from its metrics log."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402

from .files import atomic_write_bytes  # noqa: E402


def plot_loss(rows: list[dict], out: Path) -> None:
    """The train and dev loss of a run's metrics rows (store.RunStore.metrics)."""
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    dev = [(r["step"], r["dev"]) for r in rows if "dev" in r]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if train:
        ax.plot(*zip(*train), lw=1, alpha=0.7, label="train (one batch)")
    if dev:
        ax.plot(*zip(*dev), "o-", ms=3, label="dev (whole split)")
    ax.set_xlabel("step")
    ax.set_ylabel("NLL (nats per character)")
    ax.set_title("loss curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(Path(out), buffer.getvalue())  # an unpredictable temporary name, never a symlink
