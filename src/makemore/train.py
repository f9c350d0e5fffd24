"""The training loop every model goes through, and the hooks that plug into it.

The loop knows steps, batches, the optimizer and its guards (the learning-rate schedule,
gradient clipping, non-finite losses, the weight average). Everything else is a hook, called
after every step with the loop itself: writing the metrics log, evaluating the dev split and
keeping checkpoints (in a run store, store.py), the progress bar, stopping on a signal. `diagnose`,
the tests and other front ends plug in their own hooks; a hook may end training early with
`trainer.request_stop(reason)`.

Batches are drawn from tensors encoded once (the loop's only per-item Python is packing a
batch's items into rows, data.pack, for models that take packed rows).
"""

from __future__ import annotations

import math
import signal
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from . import distributed
from .config import TrainConfig
from .data import BOUNDARY, IGNORE, Dataset
from .devices import available_memory, pick_device
from .errors import MakemoreError
from .evaluate import INDEX_BYTES, chunk_plan, forward_bytes, split_nll, split_totals
from .models import Model
from .optim import make_optimizer


def lr_at(cfg: TrainConfig, step: int) -> float:
    if cfg.schedule == "sweep":  # Part 2's learning-rate finder: one step at each of a geometric series of rates
        return cfg.learning_rate * cfg.min_lr_ratio ** (1 - step / max(1, cfg.max_steps - 1))
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.learning_rate
    if cfg.schedule == "step":  # the lectures: 0.1, then 0.01 (Parts 2, 3 from 100k of 200k steps, Part 5 from 150k)
        return cfg.learning_rate * (1.0 if step < int(cfg.max_steps * cfg.step_at) else 0.1)
    floor = cfg.learning_rate * cfg.min_lr_ratio
    if cfg.schedule == "wsd":  # hold the peak, then fall in a straight line to the floor at the last step
        decay_from = max(cfg.warmup_steps, cfg.max_steps - round(cfg.max_steps * cfg.cooldown))
        progress = max(0, step - decay_from) / max(1, cfg.max_steps - 1 - decay_from)
        return cfg.learning_rate + (floor - cfg.learning_rate) * min(1.0, progress)
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return floor + 0.5 * (cfg.learning_rate - floor) * (1 + math.cos(math.pi * progress))


def batch_loss(
    model: Model, X: torch.Tensor, Y: torch.Tensor, pos: torch.Tensor | None = None, reduction: str = "mean"
) -> torch.Tensor:
    """Mean (or summed) NLL of the predicted characters in the batch; padding targets are ignored.
    `pos` marks packed rows (see data.pack) for models that take them."""
    logits = model(X) if pos is None else model(X, pos)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), Y.reshape(-1), ignore_index=IGNORE, reduction=reduction)


def memory_needed(model: Model, cfg: TrainConfig, ranks: int = 1) -> int:
    """The bytes one rank needs to train and evaluate: float32 weights, gradients, optimizer moments
    and average, held throughout; beside them the larger of a training step (its share of the batch:
    the inputs gathered, the activations autograd keeps and their gradients, the logits) and a chunk
    of evaluation (evaluate.chunk_plan), or with --ema the BatchNorm statistics measured again. A
    sequence model's batch counts as items of one character each, so it stays a lower bound."""
    copies = 2 + {"adamw": 2, "muon": 1}.get(cfg.optimizer, 0) + bool(cfg.ema)
    held = 4 * copies * model.num_params()
    rows = max(1, cfg.batch_size // ranks)
    width = model.input_width if model.tokens_per_example == 1 else 2  # a window; a row counts as 2 tokens
    step = rows * (width + 1) * INDEX_BYTES + 2 * forward_bytes(model, rows, width, grad=True)
    step += rows * (3 * 8 + 2 * 4 * model.config.vocab_size)
    work = max(step, chunk_plan(model)[1])
    if cfg.ema and model.batchnorms():
        chunk = 4096  # Model.recompute_batchnorm's windows per pass
        work = max(work, chunk * (width + 1) * INDEX_BYTES + forward_bytes(model, chunk, width))
    return held + work


def check_recipe(model: Model, cfg: TrainConfig) -> None:
    """What a recipe asks of a model and the machine, checked before anything is written. The model
    may live on the meta device (shapes only), so that the check allocates nothing."""
    device = pick_device(cfg.device)
    ranks = distributed.world().size
    if ranks > 1 and cfg.batch_size % ranks:
        raise MakemoreError(f"--batch-size {cfg.batch_size} does not split evenly over {ranks} ranks")
    if ranks > 1 and cfg.manual_grad:
        raise MakemoreError("--manual-grad fills the gradients by hand, outside DDP: train it in one process")
    # the ranks of a CPU run share the machine's memory; each GPU rank has its own
    need = memory_needed(model, cfg, ranks) * (ranks if device.type == "cpu" else 1)
    have = available_memory(device)
    if need > have:
        each = f" ({ranks} ranks)" if ranks > 1 and device.type == "cpu" else ""
        raise MakemoreError(
            f"{type(model).__name__} with {model.num_params():,} parameters and --batch-size {cfg.batch_size:,} "
            f"needs at least {need / 2**30:,.1f} GiB to train and evaluate{each}; "
            f"{have / 2**30:,.1f} GiB are available on {device}"
        )
    if cfg.optimizer == "muon" and not model.hidden_matrices():
        raise MakemoreError(f"--optimizer muon: {type(model).__name__} names no hidden matrices for Muon; use adamw")
    if cfg.optimizer == "muon" and any(p.dim() != 2 for p in model.hidden_matrices()):
        shape = next(tuple(p.shape) for p in model.hidden_matrices() if p.dim() != 2)
        raise MakemoreError(
            f"--optimizer muon orthogonalises matrices; {type(model).__name__} names a weight of shape {shape} "
            "among its hidden matrices (reshape it to 2-D in hidden_matrices(), or use adamw)"
        )
    if cfg.manual_grad and not model.can("manual_grad"):
        raise MakemoreError(f"--manual-grad: model {type(model).__name__} has no hand-written backward pass")
    if cfg.batch_size < model.min_batch_size:
        raise MakemoreError(
            f"--batch-size {cfg.batch_size}: {type(model).__name__} normalises over the batch (BatchNorm), "
            f"which needs at least {model.min_batch_size} examples"
        )


def warmed_ema(decay: float):
    """The weight average's update with its decay warmed up: min(decay, (1 + n) / (10 + n)) after n
    updates. A fixed 0.999 from the first step would keep the first weights' share at 0.999**n (55%
    after 600 steps), so a short run's average was worse than its raw weights; warmed up, the
    average spans about the last tenth of the steps until it reaches the decay asked for."""

    def update(averaged: list, current: list, n_averaged: torch.Tensor) -> None:
        n = int(n_averaged)
        get_ema_multi_avg_fn(min(decay, (1 + n) / (10 + n)))(averaged, current, n_averaged)

    return update


@dataclass
class TrainState:
    """Where a training run stands: everything --resume needs besides the model's weights."""

    step: int
    train_seconds: float
    config: TrainConfig
    optimizer: dict | None  # the optimizer's state_dict (None: a model fitted in closed form)
    rng: dict[str, torch.Tensor]  # the batch order's generator, torch's (CPU) and, on a GPU, CUDA's
    ema: dict[str, torch.Tensor]  # the weight average's state_dict ({} without one)


class NonFiniteLoss(MakemoreError):
    """A step's loss or gradient norm was not finite; the weights were not updated."""


class Hook:
    """Called by the Trainer: on_start before the first step, on_step after each, on_end when the
    loop ends (also after a stop request, not after an error), close always, last."""

    def on_start(self, trainer: Trainer) -> None: ...

    def on_step(self, trainer: Trainer) -> None: ...

    def on_end(self, trainer: Trainer) -> None: ...

    def close(self) -> None: ...


class Trainer:
    """The loop: model + data + recipe, trained by `run()`.

    After each step the hooks can read `step`, `loss` (this step's), `lr`, `examples` (predicted
    characters in this step's batch), `skipped` (why this step was skipped, or None), `dev` (the
    latest dev evaluation) and call `evaluate_dev()`, `state()` or `request_stop(reason)`.
    """

    def __init__(self, model: Model, data: Dataset, cfg: TrainConfig, hooks: list[Hook] = ()):
        check_recipe(model, cfg)
        self.model, self.data, self.cfg, self.hooks = model, data, cfg, list(hooks)
        self.device = pick_device(cfg.device)
        self.model.to(self.device)
        self.world = distributed.world()
        # DDP averages the ranks' gradients in backward; a closed-form model has none to average
        self.net = DistributedDataParallel(model) if self.world.size > 1 and not model.can("fit") else model
        self.train_examples = model.examples(data.split("train").to(self.device))
        self.batches = self.train_examples.draws()  # text mode: windows at every start, not only the tiling blocks
        self.dev_examples = model.examples(data.split("dev").to(self.device))
        self.optimizer = make_optimizer(model, cfg, self.device) if not model.can("fit") else None
        self.ema = None
        if cfg.ema and self.optimizer is not None:
            # buffers too; BatchNorm statistics are then measured again before each evaluation
            self.ema = AveragedModel(model, multi_avg_fn=warmed_ema(cfg.ema), use_buffers=True)
        self._evaluated = self.ema.module if self.ema is not None else self.model
        self.gen = torch.Generator(device="cpu").manual_seed(cfg.seed)  # batch order
        self.step, self.train_seconds = 0, 0.0
        self.loss, self.lr, self.examples, self.skipped = math.nan, math.nan, 0, None
        self.dev = math.nan  # the latest dev evaluation
        self.stop_reason: str | None = None
        self.pending_stop: str | None = None  # requested on this rank, not yet agreed by all

    # --- state --------------------------------------------------------------------------------
    def state(self) -> TrainState:
        """Where training stands, as data: what a checkpoint holds besides the weights."""
        rng = {"batches": self.gen.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":  # dropout draws on the GPU: its generator too, so resuming is exact there
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return TrainState(
            step=self.step,
            train_seconds=self.train_seconds,
            config=self.cfg,
            optimizer=self.optimizer.state_dict() if self.optimizer is not None else None,
            rng=rng,
            ema=self.ema.state_dict() if self.ema is not None else {},
        )

    def restore(self, state: TrainState) -> None:
        """Continue from a saved state (store.RunStore.load_last)."""
        if self.optimizer is not None and state.optimizer is not None:
            self.optimizer.load_state_dict(state.optimizer)
        self.gen.set_state(state.rng["batches"])
        if self.ema is not None and state.ema:  # else --ema was switched on at resume: averaging starts here
            self.ema.load_state_dict(state.ema)
        torch.set_rng_state(state.rng["torch"])
        if "cuda" in state.rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(state.rng["cuda"], self.device)
        self.step, self.train_seconds = state.step, state.train_seconds

    def evaluated_model(self) -> Model:
        """The weights that are evaluated, saved as the best checkpoint and sampled from: with --ema,
        the average or the raw weights, whichever had the lower dev NLL at the latest evaluation."""
        return self._evaluated

    def evaluate_dev(self) -> float:
        """The dev NLL of the weights to keep (also kept as `dev`). With --ema both the average and
        the raw weights are evaluated and the better kept, so that no --max-steps gives an average
        worse than the weights it averages (early on, it still remembers weights long left behind)."""
        if self.ema is None:
            self.dev = self._dev_nll(self.model)
            return self.dev
        self.ema.module.recompute_batchnorm(self.train_examples)
        average, raw = self._dev_nll(self.ema.module), self._dev_nll(self.model)
        use_raw = raw < average  # (nan compares false: the average, unless the raw weights are better)
        self._evaluated, self.dev = (self.model, raw) if use_raw else (self.ema.module, average)
        return self.dev

    def _dev_nll(self, model: Model) -> float:
        if self.world.size == 1:
            return split_nll(model, self.dev_examples)
        rows = self.world.shard(len(self.dev_examples))  # each rank its share of the split, then the sums
        total, count = self.world.sum(*split_totals(model, self.dev_examples, rows))
        return total / count if count else math.nan

    def request_stop(self, reason: str) -> None:
        """End training after the current step (its hooks still run). With several ranks, after the
        step at which every rank has heard of it (_agree), so that all stop at the same one."""
        if self.world.size > 1:
            self.pending_stop = self.pending_stop or reason
        else:
            self.stop_reason = reason

    # --- the loop -----------------------------------------------------------------------------
    def run(self) -> None:
        if self.step == 0 and self.model.can("fit"):
            self.model.fit(self.train_examples)  # closed-form models are "trained" by counting
        try:
            for hook in self.hooks:
                hook.on_start(self)
            self._loop()
            for hook in self.hooks:
                hook.on_end(self)
            self.world.barrier()  # no rank ends (and has its launcher stop the others) before rank 0 has saved
        finally:
            for hook in self.hooks:
                hook.close()

    def _loop(self) -> None:
        self.model.train()  # evaluation restores this mode itself, so once is enough
        while self.optimizer is not None and self.step < self.cfg.max_steps and self.stop_reason is None:
            t0 = time.perf_counter()
            self.lr = lr_at(self.cfg, self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr
            ix = torch.randint(0, len(self.batches), (self.cfg.batch_size,), generator=self.gen).to(self.device)
            targets = None
            if self.world.size > 1:  # every rank drew the same global batch; each trains on its slice
                targets = self.batches.targets(ix)
                ix = self.world.share(ix)
            X, Y, pos = self.model.shape_batch(*self.batches[ix], self.cfg.pack)
            if self.cfg.input_noise:
                X = self._noised(X)
            self.loss = self._train_step(X, Y, pos, targets)
            self.step += 1
            self.train_seconds += time.perf_counter() - t0
            self.examples = targets if targets is not None else int((Y != IGNORE).sum())  # the global batch
            for hook in self.hooks:
                hook.on_step(self)

    def _agree(self, loss: float) -> float:
        """The global batch's loss, and a stop requested on any rank, known to every rank: all of
        them then take the same decisions (skip, stop) at the same step."""
        total, stops = self.world.sum(loss, float(self.pending_stop is not None))
        if stops:
            self.stop_reason = self.pending_stop or "a signal on another rank"
        return total / self.world.size

    def _noised(self, X: torch.Tensor) -> torch.Tensor:
        """Data characters of the context (never the boundary, which marks where an item starts)
        swapped for uniformly random characters; the targets stay, so the model learns not to
        lean on any one character of its context."""
        swap = (torch.rand(X.shape, device=X.device) < self.cfg.input_noise) & (X != BOUNDARY)
        random_chars = torch.randint(1, len(self.data.vocab), X.shape, device=X.device)
        return torch.where(swap, random_chars, X)

    def _objective(self, nll: torch.Tensor) -> torch.Tensor:
        """What the gradient is taken of: the NLL, plus the model's penalty when it has one (the NLL
        alone is what the run logs, so that every loss in the metrics is the one metric)."""
        return nll + self.model.penalty() if self.model.can("penalty") else nll

    def _train_step(self, X: torch.Tensor, Y: torch.Tensor, pos: torch.Tensor | None, targets: int | None) -> float:
        """One optimizer step on a batch; a non-finite loss or gradient never reaches the weights.
        `targets`: the predicted characters of the global batch, when this rank has a slice of it."""
        self.optimizer.zero_grad(set_to_none=True)
        self.skipped = None
        if self.cfg.manual_grad:
            loss = self.model.manual_grad(X, Y)  # fills p.grad by hand, no autograd (Part 4)
        elif targets is None:
            loss = batch_loss(self.model, X, Y, pos)
            self._objective(loss).backward()
        else:  # scaled so that DDP's average over the ranks is the global batch's mean gradient
            loss = batch_loss(self.net, X, Y, pos, reduction="sum") * (self.world.size / targets)
            self._objective(loss).backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = self.cfg.grad_clip or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True).item()
        loss_value = loss.item()
        if targets is not None:
            loss_value = self._agree(loss_value)
        if math.isfinite(loss_value) and math.isfinite(grad_norm):
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
        elif self.cfg.skip_nonfinite:
            self.skipped = f"loss {loss_value}, grad norm {grad_norm}"
        else:
            what = "loss" if not math.isfinite(loss_value) else "gradient norm"
            value = loss_value if what == "loss" else grad_norm
            raise NonFiniteLoss(f"{what} became {value} at step {self.step}; stopped before updating the weights")
        return loss_value


# --- the hooks of a training run -----------------------------------------------------------------
class MetricsLog(Hook):
    """Train loss and learning rate every `log_interval` steps (and at the first and last), and skipped
    steps, to the run store."""

    def __init__(self, store):
        self.store = store

    def on_step(self, t: Trainer) -> None:
        if t.skipped is not None:
            self.store.log({"step": t.step - 1, "skipped": t.skipped})
        if t.step % t.cfg.log_interval == 0 or t.step in (1, t.cfg.max_steps):  # step 1: the loss at initialisation
            self.store.log({"step": t.step, "loss": t.loss, "lr": t.lr})


class Checkpoints(Hook):
    """Evaluate the whole dev split every eval_interval steps and at the end; keep the best weights
    as the best checkpoint and the full state as the last one; save the state when stopped early.
    Without a store (the ranks other than 0) it takes its part in the evaluations and writes nothing."""

    def __init__(self, store, best_dev: float = math.inf):
        self.store, self.best_dev = store, best_dev
        self.best_dev_here: float | None = None

    def on_step(self, t: Trainer) -> None:
        if t.step % t.cfg.eval_interval == 0 or t.step == t.cfg.max_steps:
            self.evaluate(t)

    def on_end(self, t: Trainer) -> None:
        if t.stop_reason is not None and self.store is not None:
            self.store.save_last(t.model, t.state(), self.best_dev)
        elif t.cfg.max_steps == 0 or t.step == 0:  # closed-form model or nothing to train
            self.evaluate(t)

    def evaluate(self, t: Trainer) -> None:
        if not all(torch.isfinite(p).all() for p in t.model.parameters()):
            # a finite gradient times the learning rate can overflow float32: every later step is then
            # non-finite too, so no checkpoint of these weights is written and the run ends here
            kept = "the last good checkpoint is kept" if self.store and self.store.has_checkpoint() else "nothing saved"
            raise MakemoreError(
                f"the weights became infinite by step {t.step} (an update overflowed float32: lower "
                f"--learning-rate); {kept}"
            )
        dev = t.evaluate_dev()
        if self.store is None:
            return
        self.store.log({"step": t.step, "dev": dev, "train_seconds": round(t.train_seconds, 3)})
        final = t.step >= t.cfg.max_steps
        # no dev split (nan), or no finite dev loss yet (a model that gives some dev character probability 0):
        # keep the final model rather than none
        if dev < self.best_dev or (final and (math.isnan(dev) or not self.store.has_checkpoint(best=True))):
            self.best_dev = dev if not math.isnan(dev) else self.best_dev
            self.store.save_best(t.evaluated_model(), t.state(), self.best_dev)
            self.best_dev_here = dev  # the best checkpoint's dev NLL, measured by this process
        self.store.save_last(t.model, t.state(), self.best_dev)
        tqdm.write(
            f"step {t.step}: dev {dev:.4f} (best {self.best_dev:.4f}), {t.train_seconds:.1f}s training", file=sys.stderr
        )


class ProgressBar(Hook):
    """A tqdm bar with the latest train and dev loss and the examples per second."""

    def __init__(self):
        self.bar = None

    def on_start(self, t: Trainer) -> None:
        self.bar = tqdm(
            total=t.cfg.max_steps,
            initial=t.step,
            disable=None,  # no bar when stderr is not a terminal
            file=sys.stderr,
            dynamic_ncols=True,
            unit="step",
            mininterval=0.5,
        )
        self.examples, self.window = 0, time.perf_counter()

    def on_step(self, t: Trainer) -> None:
        self.examples += t.examples
        now = time.perf_counter()
        if now - self.window > 0.5:
            self.bar.set_postfix(
                loss=f"{t.loss:.4f}",
                dev=f"{t.dev:.4f}",
                ex_s=f"{self.examples / (now - self.window):,.0f}",
                refresh=False,
            )
            self.examples, self.window = 0, now
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class StopOnSignal(Hook):
    """SIGINT / SIGTERM finish the current step, then stop the run (its state is saved)."""

    def __init__(self):
        self.old = {}

    def on_start(self, t: Trainer) -> None:
        def handler(signum, frame):
            t.request_stop(signal.Signals(signum).name)

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.old[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread: leave signals alone
                pass

    def close(self) -> None:
        for sig, old in self.old.items():
            signal.signal(sig, old)
        self.old = {}
