"""Plots drawn from runs: the loss curve of one run, and runs compared."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402

from .files import atomic_write_bytes  # noqa: E402


def plain(text) -> str:
    """Text drawn as it is written: a run directory, a character of the vocabulary or a model label
    holding `$...$` is a name, not matplotlib math text (which fails on `$\\bad$`, and only once the
    figure is being saved). An escaped `\\$` is drawn as `$`; the axes' own math (log ticks) is kept."""
    return str(text).replace("$", r"\$")


def png(fig) -> bytes:
    """The figure rendered as a PNG, in memory; the figure is closed."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def _save(fig, out: Path) -> None:
    """The figure rendered whole first, then written by the one writer (files.atomic_write_bytes)."""
    atomic_write_bytes(Path(out), png(fig))


def plot_loss(rows: list[dict], out: Path) -> None:
    """The train and dev loss of a run's metrics rows (store.RunStore.metrics)."""
    plot_losses([("", rows)], out)


def plot_compare(rows: list[dict], out: Path) -> None:
    """compare_png(rows), written to out."""
    atomic_write_bytes(Path(out), compare_png(rows))


# Twelve colours a reader can tell apart (tab10, then black and olive-brown): one per run up to twelve.
DISTINCT = [*plt.get_cmap("tab10").colors, (0.0, 0.0, 0.0), (0.55, 0.45, 0.1)]


def compare_png(rows: list[dict]) -> bytes:
    """Dev NLL against parameters and against training time, one point per run (compare.compare's
    rows, best dev first), each named beside its point and in the legend. Both x axes are
    logarithmic past a small linear stretch at zero: the counted bigram has no parameters and no
    training time. Where the dev losses fall in two clusters far apart (the bigrams at 2.45, the
    rest below 2.2) the y axis is broken, so each cluster gets its own readable scale."""
    devs = [r["dev"] for r in rows]
    gap = _widest_gap(devs)
    bands = [(min(devs), gap[0]), (gap[1], max(devs))] if gap else [(min(devs), max(devs))]
    high = sum(d >= gap[1] for d in devs) if gap else 0
    heights = ([1, 3] if 2 * high <= len(devs) else [3, 1]) if gap else [1]  # the smaller group, the smaller band
    fig, axes = plt.subplots(
        len(bands),
        2,
        figsize=(13, 5.6),
        dpi=110,
        sharex="col",
        squeeze=False,
        gridspec_kw={"height_ratios": heights, "hspace": 0.06},
    )
    markers = "os^Dv<>PX*ph"
    for col, (key, label, linear) in enumerate(
        (("params", "parameters", 100), ("train_seconds", "training time (s)", 1))
    ):
        for row, (low, high) in enumerate(reversed(bands)):  # the highest losses in the top row
            ax = axes[row][col]
            pad = max(0.12 * (high - low), 0.01)
            ax.set_ylim(low - pad, high + pad)
            shown = []
            for i, r in enumerate(rows):
                style = dict(color=DISTINCT[i % len(DISTINCT)], marker=markers[i % len(markers)], s=48, zorder=3)
                ax.scatter(r[key], r["dev"], label=f"{plain(r['run'])}  {r['dev']:.4f}", **style)
                if low - pad <= r["dev"] <= high + pad:
                    shown.append((r[key], r["dev"], plain(r["run"]), style["color"]))
            ax.set_xscale("symlog", linthresh=linear)
            ax.grid(alpha=0.3, which="both")
            _name_points(ax, shown)
            ax.yaxis.set_major_formatter("{x:.2f}")
            if row < len(bands) - 1:  # the break: no spine between the two bands, a mark on each side
                ax.spines["bottom"].set_visible(False)
                ax.tick_params(bottom=False, which="both")
                ax.plot([0, 1], [0, 0], transform=ax.transAxes, ls="none", **_BREAK)
            if row > 0:
                ax.spines["top"].set_visible(False)
                ax.plot([0, 1], [1, 1], transform=ax.transAxes, ls="none", **_BREAK)
        axes[-1][col].set_xlabel(label)
    fig.supylabel("dev NLL (nats per character)", fontsize=10)
    handles, labels = axes[-1][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, title="run, dev NLL", frameon=False)
    broken = " (the y axis is broken between the two groups)" if gap else ""
    fig.suptitle(f"dev NLL of each run (whole split){broken}")
    fig.subplots_adjust(left=0.08, right=0.83, bottom=0.1, top=0.91, wspace=0.12)
    return png(fig)


_BREAK = dict(marker=[(-1, -0.5), (1, 0.5)], markersize=10, mew=1, color="k", clip_on=False)  # the axis-break marks


def _widest_gap(values: list[float]) -> tuple[float, float] | None:
    """The widest empty stretch between sorted values, when it is most of their range (a cluster far
    from the rest), else None."""
    ordered = sorted(set(values))
    if len(ordered) < 3:
        return None
    low, high = max(zip(ordered, ordered[1:]), key=lambda pair: pair[1] - pair[0])
    return (low, high) if high - low > 0.5 * (ordered[-1] - ordered[0]) else None


def _name_points(ax, points: list[tuple[float, float, str, tuple]]) -> None:
    """Each point's name to its right, nudged up or down (with a thin line to its point) where two
    names would overlap."""
    fig = ax.figure
    fig.canvas.draw()  # the axes' final size and limits, to place labels in pixels
    to_pixels = ax.transData.transform
    placed: list[tuple[float, float]] = []  # (x, y) in pixels of names already placed
    markers = [tuple(to_pixels((x, y))) for x, y, _, _ in points]
    room = 11  # pixels between two names' baselines

    def crowded(px: float, py: float, ly: float) -> bool:  # another name, or another point, in the way
        names = any(abs(ly - qy) < room and abs(px - qx) < 80 for qx, qy in placed)
        return names or any(abs(ly - my) < room and 0 < mx - px < 80 and (mx, my) != (px, py) for mx, my in markers)

    for x, y, name, colour in sorted(points, key=lambda p: p[1]):
        px, py = to_pixels((x, y))
        ly = py
        while crowded(px, py, ly):
            ly += room
        placed.append((px, ly))
        ax.annotate(
            name,
            (x, y),
            xytext=(7, ly - py),
            textcoords="offset points",
            fontsize=7.5,
            color=colour,
            va="center",
            arrowprops=dict(arrowstyle="-", lw=0.5, color=colour) if ly != py else None,
        )


def plot_bigram(view: dict, out: Path) -> None:
    """Part 1's figure: the bigram matrix, each cell holding its character pair and count (or, for
    the neural bigram, its probability); row = this character, column = the next one."""
    chars, counted = view["chars"], view["counts"] is not None
    values = view["counts"] if counted else view["probs"]
    V = len(chars)
    fig, ax = plt.subplots(figsize=(0.6 * V + 1.5, 0.6 * V), dpi=80)
    image = ax.imshow(values, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.6, label="count" if counted else "probability")
    top = max(max(row) for row in values)
    for i in range(V):
        for j in range(V):
            ink = "white" if values[i][j] > 0.5 * top else "gray"  # readable on the darkest cells
            ax.text(j, i, plain(chars[i] + chars[j]), ha="center", va="bottom", color=ink, fontsize=9)
            shown = str(values[i][j]) if counted else f"{values[i][j]:.2f}"
            ax.text(j, i, shown, ha="center", va="top", color=ink, fontsize=8)
    ax.set_xticks(range(V), [plain(c) for c in chars])
    ax.set_yticks(range(V), [plain(c) for c in chars])
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
        ax.text(x, y, plain(ch), ha="center", va="center", color="white", fontsize=11)
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
            ax.set_xticks(range(len(tokens)), [plain(t) for t in tokens])
            ax.set_yticks(range(len(tokens)), [plain(t) for t in tokens])
            ax.tick_params(length=0, labelsize=8)
            ax.set_title(f"layer {layer + 1}, head {h + 1}", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("key: the position attended to", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("query: the position reading", fontsize=8)
    fig.suptitle(plain(f"attention over {''.join(tokens)!r}: row i is how position i shares its attention"))
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    bar = fig.colorbar(axes[0][0].images[0], ax=axes, shrink=0.5, pad=0.02)
    bar.set_label("attention weight (each row sums to 1)")
    _save(fig, out)


def plot_dlogits(view: dict, out: Path) -> None:
    """Part 4's image of dlogits for one batch: one row per target (named on the left), one column
    per character; dark where the loss pulls a logit down (the right character), light where it
    pushes one up."""
    grads, chars, targets = view["dlogits"], view["chars"], view["targets"]
    fig, ax = plt.subplots(figsize=(0.32 * len(chars) + 3, 0.24 * len(targets) + 1.2), dpi=100)
    image = ax.imshow(grads, cmap="gray")
    fig.colorbar(image, ax=ax, shrink=0.5, label="d loss / d logit")
    ax.set_xticks(range(len(chars)), [plain(c) for c in chars], fontsize=8)
    ax.set_yticks(range(len(targets)), [plain(t) for t in targets], fontsize=7)
    ax.set_xlabel("logit of this character")
    ax.set_ylabel("target character of each example")
    ax.set_title(f"dlogits = (softmax - one-hot) / {len(targets)}: each row sums to 0")
    fig.tight_layout()
    _save(fig, out)


def plot_tanh(view: dict, out: Path) -> None:
    """Part 3's three pictures of a tanh layer at initialisation, one row per initialisation: the
    pre-activation histogram, the output histogram, and the saturation map (white: |h| above the
    view's threshold, views.SATURATED, the one `makemore diagnose` counts)."""
    variants = view["variants"]
    fig, axes = plt.subplots(len(variants), 3, figsize=(13, 2.6 * len(variants)), dpi=90, squeeze=False)
    for row, v in zip(axes, variants):
        row[0].hist(v["preact"], bins=50)
        row[0].set_ylabel(plain(v["label"]), fontsize=10)
        row[1].hist(v["h"], bins=50, range=(-1, 1))
        share = sum(map(sum, v["saturated"])) / (len(v["saturated"]) * len(v["saturated"][0]))
        row[2].imshow(v["saturated"], cmap="gray", interpolation="nearest", vmin=0, vmax=1, aspect="auto")
        row[2].set_title(f"|h| > {view['threshold']}: {100 * share:.1f}% white", fontsize=9)
        row[2].set_yticks([])
    axes[0][0].set_title("pre-activations (hpreact)", fontsize=10)
    axes[0][1].set_title("tanh outputs h", fontsize=10)
    axes[-1][2].set_xlabel(f"neuron; one row per example ({view['examples']})")
    fig.suptitle("the tanh layer at initialisation, on one batch")
    fig.tight_layout()
    _save(fig, out)


def _smoothed(points: list[tuple[int, float]], every: int) -> list[tuple[float, float]]:
    """The mean of the logged losses in each stretch of `every` steps (the lecture's view(-1, 1000).mean(1))."""
    bins: dict[int, list[float]] = {}
    for step, loss in points:
        bins.setdefault((step - 1) // every, []).append(loss)
    return [((b + 0.5) * every, sum(v) / len(v)) for b, v in sorted(bins.items())]


def plot_losses(runs: list[tuple[str, list[dict]]], out: Path, smooth: int = 0, log_steps: bool = False) -> None:
    """The train and dev loss of one or more runs (name, metrics rows); `smooth` > 0 draws each train
    curve as the mean over stretches of that many steps; `log_steps` gives the first hundred steps as
    much room as the last hundred thousand (where a bad initialisation's hockey stick happens)."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    colours = plt.get_cmap("tab10")
    for i, (name, rows) in enumerate(runs):
        train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
        dev = [(r["step"], r["dev"]) for r in rows if "dev" in r]
        prefix = f"{plain(name)}: " if len(runs) > 1 else ""
        if train:
            shown = _smoothed(train, smooth) if smooth else train
            what = f"train (mean per {smooth:,} steps)" if smooth else "train (one batch)"
            ax.plot(*zip(*shown), lw=1 + bool(smooth), alpha=0.8, color=colours(2 * i), label=prefix + what)
        if dev:
            ax.plot(*zip(*dev), "o-", ms=3, color=colours(2 * i + 1), label=prefix + "dev (whole split)")
    if log_steps:
        ax.set_xscale("log")
    ax.set_xlabel("step (log scale)" if log_steps else "step")
    ax.set_ylabel("NLL (nats per character)")
    ax.set_title("loss curve" if len(runs) == 1 else "loss curves")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, out)


def plot_lr(rows: list[dict], out: Path) -> None:
    """Part 2's learning-rate finder: each step's train loss against the learning rate it was taken
    at (a run trained with --schedule sweep), and the running mean that shows the valley."""
    points = sorted((r["lr"], r["loss"]) for r in rows if "loss" in r and "lr" in r)
    lrs, losses = [p[0] for p in points], [p[1] for p in points]
    k = max(1, len(points) // 40)
    mean = [sum(losses[max(0, i - k) : i + k + 1]) / len(losses[max(0, i - k) : i + k + 1]) for i in range(len(losses))]
    best = min(range(len(mean)), key=mean.__getitem__)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(lrs, losses, lw=0.6, alpha=0.5, label="train loss of each step (one batch)")
    ax.plot(lrs, mean, lw=2, label="running mean")
    ax.axvline(lrs[best], color="gray", ls="--", lw=1, label=f"lowest running mean: lr {lrs[best]:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("NLL (nats per character)")
    ax.set_title("learning-rate sweep")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, out)


def plot_bigrams(named: list[tuple[str, dict]], out: Path) -> None:
    """Bigram models side by side: each one's P(next | this) as an image, and every cell of the second
    against the first (the counts' probabilities and the neural net's softmax(W) land on the diagonal)."""
    fig, axes = plt.subplots(1, len(named) + 1, figsize=(5.6 * (len(named) + 1), 5.2), dpi=90)
    top = max(p for _, view in named for row in view["probs"] for p in row)
    for ax, (name, view) in zip(axes, named):
        image = ax.imshow(view["probs"], cmap="Blues", vmin=0, vmax=top)  # one scale for both
        fig.colorbar(image, ax=ax, shrink=0.7, label="P(next | this)")
        chars = view["chars"]
        ax.set_xticks(range(len(chars)), [plain(c) for c in chars], fontsize=7)
        ax.set_yticks(range(len(chars)), [plain(c) for c in chars], fontsize=7)
        ax.set_title(f"{plain(name)}: P(next | this)", fontsize=10)
    first, second = (v["probs"] for _, v in named[:2])
    xs = [p for row in first for p in row]
    ys = [p for row in second for p in row]
    axes[-1].plot([0, top], [0, top], color="gray", lw=1)
    axes[-1].scatter(xs, ys, s=8)
    gap = max(abs(x - y) for x, y in zip(xs, ys))
    axes[-1].set_title(f"each of the {len(xs)} cells (largest difference {gap:.4f})", fontsize=10)
    axes[-1].set_xlabel(plain(named[0][0]))
    axes[-1].set_ylabel(plain(named[1][0]))
    axes[-1].set_aspect("equal")
    fig.tight_layout()
    _save(fig, out)


def plot_sweep(panels: list[dict], out: Path) -> None:
    """Train and dev NLL against the one option a model type's runs differ in, a panel per type; the
    dashed line is a uniform guess, ln V, where every strength of smoothing ends."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), dpi=100, sharey=True, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        xs = panel["values"]
        for split, style in (("train", "o-"), ("dev", "s--")):
            ax.plot(xs, panel[split], style, ms=4, label=split)
        ax.axhline(panel["uniform"], color="gray", ls=":", lw=1, label="uniform guess, ln V")
        if min(xs) > 0:
            ax.set_xscale("log")
        else:  # a strength of 0 too: linear up to the smallest other value
            ax.set_xscale("symlog", linthresh=min((x for x in xs if x > 0), default=1))
            ax.set_xlim(left=0)
        ax.set_xlabel(plain(f"--{panel['option'].replace('_', '-')}"))
        ax.set_title(plain(panel["type"]))
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("NLL (nats per character)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, out)


def plot_ladder(rungs: list[str], series: list[tuple[str, list[float | None]]], out: Path) -> None:
    """The "Let's build GPT" ladder: one NLL per rung (x, in order) for each of up to three series (a
    label and a value or None per rung; None leaves a gap), each point labelled with its value on its
    own side (left, right, right below), so that close values of different series stay readable."""
    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=110)
    xs = range(len(rungs))
    sides = [((-8, 0), "right", "center"), ((8, 0), "left", "center"), ((7, -5), "left", "top")]
    for (label, values), colour, (offset, ha, va) in zip(series, DISTINCT, sides):
        ys = [float("nan") if v is None else v for v in values]
        ax.plot(xs, ys, "o-", color=colour, lw=1.5, ms=5, label=plain(label))
        for x, y in zip(xs, values):
            if y is not None:
                ax.annotate(
                    f"{y:.2f}",
                    (x, y),
                    xytext=offset,
                    textcoords="offset points",
                    ha=ha,
                    va=va,
                    fontsize=8,
                    color=colour,
                )
    ax.set_xticks(list(xs), [plain(r) for r in rungs], fontsize=8)
    ax.set_xlim(-0.6, len(rungs) - 0.4)
    ax.set_ylabel("NLL (nats per character)")
    ax.set_title('the "Let\'s build GPT" ladder: one piece of the Transformer per rung')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, out)
