"""Part 3's second half as a tool: is the network healthy while it trains?

For a run of a model with tanh layers, `makemore diagnose -o DIR` measures:
  - the loss at initialisation against the ln(V) of a uniform guess;
  - per tanh layer: activation histogram, mean, std, % saturated (|t| > 0.97), and the
    histogram and std of the gradient flowing into it;
  - per weight matrix: the gradient histogram and the grad:data std ratio;
  - per weight matrix and step: the update:data ratio log10(std(update) / std(data)).
These are taken during a short replay from initialisation with the lecture's diagnostic
recipe (SGD, lr 0.1, batch 32, 1000 steps, no weight decay, so the update is exactly
lr * grad), driven by the shared Trainer with hooks; plus the activations at the run's
trained weights. For the deep net the replay is repeated with and without BatchNorm and
with bad init gains, so saturation and vanishing gradients can be seen to appear.
Writes PNGs and diagnostics.json (the numbers behind every plot) to DIR/diagnostics/, once every
figure has been drawn, each through the one atomic, no-follow writer (files.py); DIR/diagnostics
itself must be a real folder, not a symbolic link.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import export
from .config import TrainConfig
from .devices import set_threads
from .errors import MakemoreError
from .files import atomic_write_bytes, make_folder
from .plots import plt, png
from .runs import Loaded, open_model
from .store import RunStore
from .train import Hook, NonFiniteLoss, Trainer
from .views import SATURATED  # the one threshold, shared with `makemore plot tanh`

REFERENCE_UPDATE = -3.0  # the lecture's rule of thumb for log10(update / data)


class Probe:
    """Hooks on a model and its optimizer that keep what the diagnostics need.

    Tanh outputs (and their gradients) of the latest training forward pass, as the model offers
    them (its probe points, while `model.probing(probe.keep)`); gradients of every weight matrix
    just before each optimizer step; the update:data ratio after it.
    """

    def __init__(self, model: nn.Module):
        self.model, self.layers, self.offered = model, len(model.probe_points()), 0
        self.weights = {name: p for name, p in model.named_parameters() if p.dim() == 2}
        self.acts: dict[str, torch.Tensor] = {}
        self.grads: dict[str, torch.Tensor] = {}
        self.weight_grads: dict[str, torch.Tensor] = {}
        self.update_ratios: dict[str, list[float]] = {name: [] for name in self.weights}
        self._before: dict[str, torch.Tensor] = {}

    def keep(self, out: torch.Tensor, pre: torch.Tensor) -> None:
        """A probe point's output in a training forward pass (a dev evaluation's are not kept)."""
        if not self.model.training:
            return
        name = f"tanh {self.offered % self.layers + 1}"  # the points come in the model's order, pass after pass
        self.offered += 1
        self.acts[name] = out.detach()
        if out.requires_grad:
            out.register_hook(lambda g: self.grads.__setitem__(name, g.detach()))

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.register_step_pre_hook(self._pre_step)
        optimizer.register_step_post_hook(self._post_step)

    def _pre_step(self, optimizer, args, kwargs):
        self.weight_grads = {n: p.grad.detach().clone() for n, p in self.weights.items() if p.grad is not None}
        self._before = {n: p.detach().clone() for n, p in self.weights.items()}

    def _post_step(self, optimizer, args, kwargs):
        for name, p in self.weights.items():
            before = self._before[name]
            ratio = ((p.detach() - before).std() / before.std()).item()
            self.update_ratios[name].append(math.log10(ratio) if ratio > 0 else float("-inf"))

    def layer_stats(self) -> list[dict]:
        rows = []
        for name, t in self.acts.items():
            g = self.grads.get(name)
            rows.append(
                {
                    "layer": name,
                    "mean": t.mean().item(),
                    "std": t.std().item(),
                    "saturated_pct": 100 * (t.abs() > SATURATED).float().mean().item(),
                    "grad_mean": g.mean().item() if g is not None else None,
                    "grad_std": g.std().item() if g is not None else None,
                }
            )
        return rows

    def weight_stats(self) -> list[dict]:
        rows = []
        for name, g in self.weight_grads.items():
            data = self._before[name]
            rows.append(
                {
                    "weight": name,
                    "shape": list(g.shape),
                    "grad_mean": g.mean().item(),
                    "grad_std": g.std().item(),
                    "grad_to_data": (g.std() / data.std()).item(),
                }
            )
        return rows


def _batch(model, data, size: int, seed: int):
    """A seeded random batch of the training split's examples."""
    examples = model.examples(data.split("train"))
    return examples[torch.randint(0, len(examples), (size,), generator=torch.Generator().manual_seed(seed))]


def init_loss(model: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> float:
    """Loss of an untrained model in training mode (batch statistics), as its first step sees it."""
    probe_model = copy.deepcopy(model).train()  # a copy: this forward must not move the running stats
    with torch.no_grad():
        return F.cross_entropy(probe_model(X), Y).item()


class LossLog(Hook):
    """The training loss of every step."""

    def __init__(self):
        self.losses: list[float] = []

    def on_step(self, trainer: Trainer) -> None:
        self.losses.append(trainer.loss)


def replay(model_cls, config, data, recipe: TrainConfig) -> tuple[dict, Probe]:
    """Train a fresh model for recipe.max_steps through the shared Trainer, watching it."""
    torch.manual_seed(recipe.seed)
    model = model_cls(config)
    X, Y = _batch(model, data, 4096, recipe.seed)
    first = init_loss(model, X, Y)
    probe, log = Probe(model), LossLog()
    trainer = Trainer(model, data, recipe, hooks=[log])
    probe.attach(trainer.optimizer)
    try:
        with model.probing(probe.keep):
            trainer.run()
    except NonFiniteLoss as e:
        raise MakemoreError(f"the replay's {e} (try a lower --learning-rate)") from None
    final = measure(model, X, Y)  # histograms from 4096 examples, not one noisy batch of 32
    return {
        "init_loss": first,
        "final_batch_loss": log.losses[-1] if log.losses else None,
        "layers": final.layer_stats(),
        "weights": final.weight_stats(),
        "update_ratio": probe.update_ratios,
    }, final


def measure(model: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> Probe:
    """Activations and gradients of the current weights on one batch (a copy, in training mode)."""
    model = copy.deepcopy(model).train()
    probe = Probe(model)
    with model.probing(probe.keep):
        F.cross_entropy(model(X), Y).backward()
    probe.weight_grads = {n: p.grad.detach() for n, p in probe.weights.items()}
    probe._before = {n: p.detach() for n, p in probe.weights.items()}
    return probe


# --- plots: one idea each, each returned as PNG bytes (written only once all are drawn) -------------
def _png(fig) -> bytes:
    fig.tight_layout()
    return png(fig)


def _hist(ax, t: torch.Tensor, label: str, bins: int = 60) -> None:
    hy, hx = torch.histogram(t.float().cpu().flatten(), bins=bins, density=True)
    ax.plot(((hx[:-1] + hx[1:]) / 2).numpy(), hy.numpy(), label=label)


def plot_init_loss(results: dict, expected: float) -> bytes:
    """Each variant's first loss as a bar with its value. Bars near the uniform guess differ in the
    second decimal, which a scale up to a naive init's ~30 flattens, so they get a zoomed panel too."""
    names = list(results)
    losses = [results[n]["init_loss"] for n in names]
    near = [i for i, v in enumerate(losses) if abs(v - expected) < 0.25 * expected]
    zoom = 0 < len(near) < len(names)  # some bars far off: the near ones get their own scale
    fig, axes = plt.subplots(1, 1 + zoom, figsize=(7 + 4 * zoom, 4.2), dpi=110, squeeze=False)
    panels = [(axes[0][0], list(range(len(names))), "every initialisation")]
    if zoom:
        panels.append((axes[0][1], near, "zoomed in on the bars near the uniform guess"))
    for ax, shown, title in panels:
        values = [losses[i] for i in shown]
        bars = ax.bar(range(len(shown)), values, color="tab:blue", width=0.6)
        ax.bar_label(bars, [f"{v:.4f}" for v in values], fontsize=8, padding=2)
        ax.axhline(expected, color="k", ls="--", lw=1)
        ax.set_xticks(range(len(shown)), [names[i] for i in shown], rotation=20, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        if ax is not axes[0][0]:
            spread = max(abs(v - expected) for v in values) or 0.01
            ax.set_ylim(expected - 3 * spread, expected + 3 * spread)
        else:
            ax.set_ylim(0, max(values) * 1.12)  # room for the labels above the bars
    axes[0][0].set_ylabel("loss at step 0 (nats per character)")
    handle = plt.Line2D([], [], color="k", ls="--", lw=1)
    fig.legend([handle], [f"-ln(1/V) = {expected:.4f} (uniform guess)"], loc="lower center", frameon=False)
    fig.suptitle("loss at initialisation vs a uniform guess")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return png(fig)


def plot_tanh(acts: dict, stats: list[dict], title: str) -> bytes:
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    for row in stats:
        _hist(
            ax,
            acts[row["layer"]],
            f"{row['layer']}: mean {row['mean']:+.2f}, std {row['std']:.2f}, saturated {row['saturated_pct']:.1f}%",
        )
    ax.set_xlabel("tanh output")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _png(fig)


def plot_tanh_grads(grads: dict, stats: list[dict]) -> bytes:
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    for row in stats:
        if row["layer"] in grads:
            _hist(ax, grads[row["layer"]], f"{row['layer']}: mean {row['grad_mean']:+.1e}, std {row['grad_std']:.2e}")
    ax.set_xlabel("gradient of the loss w.r.t. the tanh output")
    ax.set_ylabel("density")
    ax.set_title("gradient reaching each tanh layer after the replay")
    ax.legend(fontsize=8)
    return _png(fig)


def plot_weight_grads(weight_grads: dict, stats: list[dict], labels: dict[str, str]) -> bytes:
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    for row in stats:
        _hist(
            ax,
            weight_grads[row["weight"]],
            f"{labels.get(row['weight'], row['weight'])} {tuple(row['shape'])}: grad std {row['grad_std']:.1e}, "
            f"grad:data {row['grad_to_data']:.1e}",
        )
    ax.set_xlabel("gradient of the loss w.r.t. the weight")
    ax.set_ylabel("density")
    ax.set_title("weight gradients and their grad:data std ratio after the replay")
    ax.legend(fontsize=8)
    return _png(fig)


def weight_labels(result: dict, vocab_size: int, named: bool = True) -> dict[str, str]:
    """Legend names for a replay's weight matrices (named: the parameter's name in brackets): the embedding
    (the first matrix with a row per token), the output layer (any later matrix with a token
    dimension), BatchNorm gains and biases, a position table, and the hidden layers numbered from
    the input."""
    labels, hidden = {}, 0
    for i, row in enumerate(result["weights"]):
        name, shape = row["weight"], tuple(row["shape"])
        leaf = name.rsplit(".", 1)[-1]
        if i == 0 and shape[0] == vocab_size:
            what = "embedding"
        elif leaf in ("gamma", "beta"):
            what = "BatchNorm gain" if leaf == "gamma" else "BatchNorm bias"
        elif name.startswith("wpe"):
            what = "position embedding"
        elif vocab_size in shape:
            what = "output layer"
        else:
            hidden += 1
            what = f"hidden layer {hidden}"
        labels[name] = f"{what} ({name})" if named else what
    return labels


def _update_lines(ax, ratios: dict, labels: dict[str, str]) -> None:
    for name, series in ratios.items():
        ax.plot(series, lw=0.8, label=labels.get(name, name))
    ax.axhline(REFERENCE_UPDATE, color="k", ls="--", lw=1, label="-3 (rule of thumb)")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)


def plot_update_ratio(ratios: dict, labels: dict[str, str]) -> bytes:
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    _update_lines(ax, ratios, labels)
    ax.set_ylabel("log10( std(update) / std(weight) )")
    ax.set_title("update:data ratio per weight matrix during the replay")
    ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def plot_variant_layers(results: dict, key: str, ylabel: str, title: str, log: bool = False) -> bytes:
    """One line per variant across the layers. Variants often land on the same values (BatchNorm
    makes the gain irrelevant), so each line gets its own marker and dash and a small sideways
    shift, and the run's own line is drawn on top: every legend entry stays visible."""
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    n = len(results)
    styles = zip("osD^vP*X", ["-", "--", "-.", ":"] * 2)
    for k, ((name, r), (marker, dash)) in enumerate(zip(results.items(), styles)):
        values = [row[key] for row in r["layers"]]
        shift = 0.16 * (k - (n - 1) / 2) / max(1, n - 1)
        xs = [i + 1 + shift for i in range(len(values))]
        own = k == 0  # the run's own network: first in results, drawn last and thicker
        ax.plot(
            xs,
            values,
            marker=marker,
            ls=dash,
            lw=2.2 if own else 1.4,
            ms=7 if own else 5,
            zorder=3 + (n if own else k),
            label=name,
        )
        ax.set_xticks(range(1, len(values) + 1))
    ax.set_xlabel("tanh layer (1 = nearest the input; the lines are shifted sideways a little to stay apart)")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def plot_variant_updates(results: dict, vocab_size: int) -> bytes:
    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6), dpi=110, sharey=True, squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items()):  # one legend for all: the names differ by variant
        _update_lines(ax, r["update_ratio"], weight_labels(r, vocab_size, named=False))
        ax.set_title(name, fontsize=9)
    axes[0][0].set_ylabel("log10( std(update) / std(weight) )")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.suptitle("update:data ratio per weight matrix, by network variant")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return png(fig)


# --- the command -----------------------------------------------------------------------------------
REPLAY_MAX_BATCH = 100_000  # ~1.3 GB for mlp-bn's variants side by side


def diagnose(
    run_dir: Path,
    out_dir: Path | None = None,
    steps: int = 1000,
    batch_size: int = 32,
    learning_rate: float = 0.1,
    seed: int = 42,
) -> dict:
    """run_dir: a run, or a folder `makemore export --with-data` wrote (the replay trains on the data).
    An exported folder is left as it was shared: its default out_dir is NAME-diagnostics here."""
    loaded = open_model(run_dir)
    if export.is_export(loaded.path):
        return _diagnose(
            loaded, out_dir or Path(f"{loaded.path.name}-diagnostics"), steps, batch_size, learning_rate, seed
        )
    store = RunStore.open(run_dir)
    store.lock()  # it writes DIR/diagnostics: one writer at a time
    try:
        return _diagnose(loaded, out_dir, steps, batch_size, learning_rate, seed)
    finally:
        store.unlock()


def _diagnose(
    loaded: Loaded, out_dir: Path | None, steps: int, batch_size: int, learning_rate: float, seed: int
) -> dict:
    run_dir = loaded.path
    if steps < 1 or batch_size < 1 or not learning_rate > 0:
        raise MakemoreError("--steps, --batch-size and --learning-rate must be positive")
    if batch_size > REPLAY_MAX_BATCH:
        raise MakemoreError(
            f"--batch-size {batch_size:,}: the replay keeps every activation; at most {REPLAY_MAX_BATCH:,}"
        )
    t0 = time.perf_counter()
    best = loaded.best
    model, cls = best.model, type(best.model)
    if not model.can("probes"):
        raise MakemoreError(
            f"model type {best.run.type!r} offers no tanh layers to diagnose (try mlp, mlp-bn, mlp-bn-deep or bow)"
        )
    if not loaded.has_data:
        raise MakemoreError(
            f"{run_dir} was exported without its data, and diagnose replays training on it: export the run "
            "with --with-data"
        )
    own_folder = not out_dir  # DIR/diagnostics: makemore's folder, never a symbolic link
    out_dir = Path(out_dir) if out_dir else Path(run_dir) / "diagnostics"
    _check_out_dir(out_dir, own_folder)  # before the replay: a refusal costs nothing
    set_threads(0)
    data = loaded.dataset()
    recipe = TrainConfig(
        max_steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        optimizer="sgd",
        weight_decay=0.0,
        schedule="constant",
        warmup_steps=0,
        eval_interval=steps,
        seed=seed,
        device="cpu",
    )

    results, probes = {}, {}
    for name, config in model.diagnostic_variants():
        results[name], probes[name] = replay(cls, config, data, recipe)
    main_name = next(iter(results))
    main, probe = results[main_name], probes[main_name]
    X, Y = _batch(model, data, 4096, seed)
    trained_probe = measure(model, X, Y)
    trained = trained_probe.layer_stats()

    expected = math.log(len(best.vocab))
    labels = weight_labels(main, len(best.vocab))
    plots = {  # every figure drawn before anything is written
        "init_loss.png": plot_init_loss(results, expected),
        "activations.png": plot_tanh(probe.acts, main["layers"], f"tanh activations after {steps} replay steps"),
        "gradients.png": plot_tanh_grads(probe.grads, main["layers"]),
        "weight_gradients.png": plot_weight_grads(probe.weight_grads, main["weights"], labels),
        "update_ratio.png": plot_update_ratio(main["update_ratio"], labels),
        "trained_activations.png": plot_tanh(
            trained_probe.acts, trained, f"tanh activations at the run's trained weights (step {best.step})"
        ),
    }
    if len(results) > 1:
        plots["variants_saturation.png"] = plot_variant_layers(
            results,
            "saturated_pct",
            f"% of tanh outputs with |t| > {SATURATED}",
            f"saturation per layer after {steps} steps",
        )
        plots["variants_activation_std.png"] = plot_variant_layers(
            results, "std", "std of tanh outputs", f"activation spread per layer after {steps} steps"
        )
        plots["variants_grad_std.png"] = plot_variant_layers(
            results,
            "grad_std",
            "std of the gradient at the tanh output",
            f"gradient per layer after {steps} steps (log scale)",
            log=True,
        )
        plots["variants_update_ratio.png"] = plot_variant_updates(results, len(best.vocab))

    report = {
        "run": str(run_dir),
        "type": best.run.type,
        "config": asdict(model.config),
        "expected_init_loss": expected,
        "recipe": {
            "optimizer": "sgd",
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "steps": steps,
            "seed": seed,
        },
        "saturation_threshold": SATURATED,
        "variants": results,
        "trained": {"step": best.step, "layers": trained},
        "plots": list(plots),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    payload = json.dumps(report, indent=1).encode("utf-8")
    _make_out_dir(out_dir, own_folder)
    for filename, figure in plots.items():
        atomic_write_bytes(out_dir / filename, figure)
    atomic_write_bytes(out_dir / "diagnostics.json", payload)
    report["out_dir"] = str(out_dir)
    return report


def _check_out_dir(out_dir: Path, own_folder: bool) -> None:
    """Refuse early what _make_out_dir would refuse: DIR/diagnostics as a link, --out as a file."""
    if own_folder and os.path.lexists(out_dir):
        make_folder(out_dir)  # exists: only checked (a symbolic link or a file is refused)
    elif out_dir.exists() and not out_dir.is_dir():
        raise MakemoreError(f"--out {out_dir} is not a directory")


def _make_out_dir(out_dir: Path, own_folder: bool) -> None:
    if own_folder:
        make_folder(out_dir)
        return
    try:  # a folder the user named: made as asked, through any link in its path
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MakemoreError(f"cannot create --out {out_dir}: {e.strerror}") from None
