"""Plots drawn from runs: the loss curve of one run, and runs compared."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402

from .files import atomic_write_bytes  # noqa: E402


def _save(fig, out: Path) -> None:
    """The figure as a PNG, written atomically (an unpredictable temporary name, never a symlink)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(Path(out), buffer.getvalue())


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
    _save(fig, out)


def plot_compare(rows: list[dict], out: Path) -> None:
    """Dev NLL against parameters and against training time, one point per run (compare.compare's
    rows, best dev first), named in the legend: labels beside points collide where runs are close.
    Both axes are logarithmic past a small linear stretch at zero: the counted bigram has no
    parameters and no training time."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), dpi=110, sharey=True)
    colours, markers = plt.get_cmap("tab10"), "os^Dv<>PX*ph"
    for ax, key, label, linear in (
        (axes[0], "params", "parameters", 100),
        (axes[1], "train_seconds", "training time (s)", 1),
    ):
        for i, r in enumerate(rows):
            style = dict(color=colours(i % 10), marker=markers[i % len(markers)], s=48, zorder=3)
            ax.scatter(r[key], r["dev"], label=f"{r['run']}  {r['dev']:.4f}", **style)
        ax.set_xscale("symlog", linthresh=linear)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("dev NLL (nats per character)")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, title="run, dev NLL", frameon=False)
    fig.suptitle("dev NLL of each run (whole split)")
    fig.tight_layout()
    _save(fig, out)


def plot_bigram(view: dict, out: Path) -> None:
    """Part 1's figure: the bigram matrix, each cell holding its character pair and count (or, for
    the neural bigram, its probability); row = this character, column = the next one."""
    chars, counted = view["chars"], view["counts"] is not None
    values = view["counts"] if counted else view["probs"]
    V = len(chars)
    fig, ax = plt.subplots(figsize=(0.6 * V, 0.6 * V), dpi=80)
    ax.imshow(values, cmap="Blues")
    for i in range(V):
        for j in range(V):
            ax.text(j, i, chars[i] + chars[j], ha="center", va="bottom", color="gray", fontsize=9)
            shown = str(values[i][j]) if counted else f"{values[i][j]:.2f}"
            ax.text(j, i, shown, ha="center", va="top", color="gray", fontsize=8)
    ax.set_xticks(range(V), chars)
    ax.set_yticks(range(V), chars)
    ax.set_xlabel("next character")
    ax.set_ylabel("this character")
    ax.set_title("bigram counts" if counted else "bigram probabilities P(next | this)")
    fig.tight_layout()
    _save(fig, out)


def plot_embedding(view: dict, out: Path) -> None:
    """Part 2's figure: each character at its embedding (its two principal directions when the
    embedding has more than two dimensions)."""
    points = view["points"]
    fig, ax = plt.subplots(figsize=(7, 7), dpi=100)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    ax.scatter(xs, ys, s=260)
    for x, y, ch in zip(xs, ys, view["chars"]):
        ax.text(x, y, ch, ha="center", va="center", color="white", fontsize=11)
    share = " and ".join(f"{100 * v:.0f}%" for v in view["explained"])
    how = "" if view["dims"] <= 2 else f"\nits first two principal directions of {view['dims']} ({share} of the spread)"
    ax.set_title(f"character embedding{how}", fontsize=11)
    ax.grid(alpha=0.4)
    fig.tight_layout()
    _save(fig, out)


def plot_attention(view: dict, out: Path) -> None:
    """Part 6's figure: one map per layer (rows) and head (columns); row i of a map is how much
    position i takes from each earlier position."""
    layers, tokens = view["layers"], view["tokens"]
    L, H = len(layers), len(layers[0])
    fig, axes = plt.subplots(L, H, figsize=(2.4 * H, 2.4 * L + 0.4), dpi=100, squeeze=False)
    for layer, heads in enumerate(layers):
        for h, weights in enumerate(heads):
            ax = axes[layer][h]
            ax.imshow(weights, cmap="Blues", vmin=0, vmax=1)
            ax.set_xticks(range(len(tokens)), tokens)
            ax.set_yticks(range(len(tokens)), tokens)
            ax.tick_params(length=0, labelsize=8)
            ax.set_title(f"layer {layer + 1}, head {h + 1}", fontsize=9)
    fig.suptitle(f"attention over {''.join(tokens)!r}")
    fig.tight_layout()
    _save(fig, out)


def plot_dlogits(view: dict, out: Path) -> None:
    """Part 4's image of dlogits for one batch: one row per target (named on the left), one column
    per character; dark where the loss pulls a logit down (the right character), light where it
    pushes one up."""
    grads, chars, targets = view["dlogits"], view["chars"], view["targets"]
    fig, ax = plt.subplots(figsize=(0.32 * len(chars) + 1.5, 0.24 * len(targets) + 1.2), dpi=100)
    ax.imshow(grads, cmap="gray")
    ax.set_xticks(range(len(chars)), chars, fontsize=8)
    ax.set_yticks(range(len(targets)), targets, fontsize=7)
    ax.set_xlabel("logit of this character")
    ax.set_ylabel("target character of each example")
    ax.set_title(f"dlogits = (softmax - one-hot) / {len(targets)}: each row sums to 0")
    fig.tight_layout()
    _save(fig, out)
