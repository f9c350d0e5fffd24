"""The training engine every model goes through.

Batches are drawn from tensors encoded once (the loop's only per-item Python is packing a
batch's items into rows, data.pack, for models that take packed rows); the dev
loss is measured on the whole dev split; the best checkpoint by dev loss is kept as
model.safetensors and the latest full state (optimizer, RNG, step) as last.safetensors.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from . import checkpoint
from .data import BOUNDARY, IGNORE, Dataset, pack
from .errors import MakemoreError
from .evaluate import split_nll
from .models import Model
from .models.base import option


@dataclass
class TrainConfig:
    max_steps: int = option(10000, "optimizer steps (0 for closed-form models)")
    batch_size: int = option(64, "examples (windows, or whole items for sequence models) per step")
    learning_rate: float = option(1e-3, "peak learning rate")
    optimizer: str = option("adamw", "adamw or sgd")
    weight_decay: float = option(0.01, "decoupled weight decay, applied to matrices only")
    beta2: float = option(0.999, "AdamW's decay of the squared-gradient average (lower adapts faster)")
    schedule: str = option("cosine", "constant | step (the lectures: /10 halfway) | cosine (to min-lr-ratio)")
    warmup_steps: int = option(100, "linear warmup steps at the start")
    min_lr_ratio: float = option(0.01, "cosine schedule ends at learning-rate x this")
    eval_interval: int = option(1000, "steps between evaluations of the whole dev split")
    seed: int = option(42, "seed for initialisation, batch order and dropout")
    device: str = option("auto", "cpu | cuda | mps | auto")
    threads: int = option(0, "torch intra-op threads (0: all cores)")
    grad_clip: float = option(0.0, "clip the global gradient norm to this (0: off)")
    skip_nonfinite: bool = option(False, "skip a step whose loss or gradients are not finite, instead of stopping")
    manual_grad: bool = option(False, "gradients from the model's hand-written backward pass, not autograd (Part 4)")
    ema: float = option(0.0, "keep an exponential moving average of the weights with this decay per step "
                              "(e.g. 0.999); evaluate and save it instead of the raw weights (0: off)")
    input_noise: float = option(0.0, "replace each context character of a training batch by a random character with "
                                     "this probability (data noising as smoothing, Xie et al. 2017; 0: off)")
    pack: bool = option(True, "models that support it (transformer): train on rows packed with several whole items "
                              "each; the same loss as padded items, with much less padding")

    def validate(self) -> None:
        checks = [
            (self.max_steps >= 0, "--max-steps must be >= 0"),
            (self.batch_size >= 1, "--batch-size must be >= 1"),
            (self.learning_rate > 0 and math.isfinite(self.learning_rate), "--learning-rate must be a positive number"),
            (self.optimizer in ("adamw", "sgd"), "--optimizer must be adamw or sgd"),
            (self.weight_decay >= 0, "--weight-decay must be >= 0"),
            (0 <= self.beta2 < 1, "--beta2 must be in [0, 1)"),
            (self.schedule in ("constant", "step", "cosine"), "--schedule must be constant, step or cosine"),
            (self.warmup_steps >= 0, "--warmup-steps must be >= 0"),
            (0 <= self.min_lr_ratio <= 1, "--min-lr-ratio must be in [0, 1]"),
            (self.eval_interval >= 1, "--eval-interval must be >= 1"),
            (self.device in ("cpu", "cuda", "mps", "auto"), "--device must be cpu, cuda, mps or auto"),
            (self.threads >= 0, "--threads must be >= 0"),
            (self.grad_clip >= 0, "--grad-clip must be >= 0"),
            (0 <= self.ema < 1, "--ema must be in [0, 1)"),
            (0 <= self.input_noise < 1, "--input-noise must be in [0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise MakemoreError(message)


def lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.learning_rate
    if cfg.schedule == "step":  # the lectures: 0.1 for the first half, then 0.01
        return cfg.learning_rate * (1.0 if step < cfg.max_steps // 2 else 0.1)
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    floor = cfg.learning_rate * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.learning_rate - floor) * (1 + math.cos(math.pi * progress))


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


def set_threads(threads: int) -> None:
    """Explicit intra-op threads: oversubscribing 2 cores slows training by 3-80x."""
    torch.set_num_threads(threads or os.cpu_count() or 1)


def make_optimizer(model: Model, cfg: TrainConfig, device: torch.device):
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    # decay matrices only; biases, gains and 1-D parameters are left alone
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, cfg.beta2), fused=device.type in ("cpu", "cuda"))


def batch_loss(model: Model, X: torch.Tensor, Y: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
    """Mean NLL per predicted character in the batch; padding targets are ignored. `pos` marks
    packed rows (see data.pack) for models that take them."""
    logits = model(X) if pos is None else model(X, pos)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), Y.reshape(-1), ignore_index=IGNORE)


@torch.no_grad()
def recompute_batchnorm(model: Model, X: torch.Tensor, chunk: int = 4096) -> None:
    """Set the running mean and variance of every BatchNorm (a module with running_mean and
    momentum: wavenet's and mlp-bn-deep's) to their average over X under the model's current
    weights. Averaged weights need this: running statistics only describe the weights they were
    collected with. (mlp-bn keeps its statistics inline; they stay averaged with the weights.)"""
    norms = [m for m in model.modules() if hasattr(m, "running_mean") and hasattr(m, "momentum")]
    if not norms:
        return
    momenta, was_training = [m.momentum for m in norms], model.training
    model.train()
    for k, start in enumerate(range(0, len(X), chunk)):
        for m in norms:
            m.momentum = 1 / (k + 1)  # the k-th chunk's statistics enter a plain mean
        model(X[start : start + chunk])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)


class _StopRequested(Exception):
    pass


class Trainer:
    """One run: model + data + optimizer + run directory, trained by `run()`."""

    def __init__(self, model: Model, data: Dataset, cfg: TrainConfig, run_dir: Path, info: dict, resume_from: dict | None = None):
        self.model, self.data, self.cfg, self.run_dir, self.info = model, data, cfg, Path(run_dir), info
        self.device = pick_device(cfg.device)
        if cfg.manual_grad and not hasattr(model, "manual_grad"):
            raise MakemoreError(f"--manual-grad: model {type(model).__name__} has no hand-written backward pass")
        self.model.to(self.device)
        block, context = model.config.block_size, model.context
        self.X, self.Y = (t.to(self.device) for t in data.tensors("train", context, block))
        self.dev = tuple(t.to(self.device) for t in data.tensors("dev", context, block))
        self.optimizer = make_optimizer(model, cfg, self.device) if model.num_params() else None
        self.ema = None
        if cfg.ema and self.optimizer is not None:
            # buffers too; BatchNorm statistics are then measured again before each evaluation
            self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
        self.gen = torch.Generator(device="cpu").manual_seed(cfg.seed)  # batch order
        self.packed = cfg.pack and model.packs
        self.step, self.best_dev, self.train_seconds, self.skipped = 0, math.inf, 0.0, 0
        if resume_from is not None:
            self._restore(resume_from)
        self._stop_signal = None

    # --- state -----------------------------------------------------------------------------
    def _restore(self, ckpt: dict) -> None:
        meta, tensors = ckpt["meta"], ckpt["tensors"]
        if self.optimizer is not None:
            self.optimizer.load_state_dict(checkpoint.optimizer_state(meta, tensors))
        self.gen.set_state(tensors["rng.batches"])
        ema = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
        if self.ema is not None and ema:  # else --ema was switched on at resume: averaging starts here
            self.ema.load_state_dict(ema)
        torch.set_rng_state(tensors["rng.torch"])
        self.step, self.best_dev = meta["step"], meta["best_dev"]
        self.train_seconds = meta.get("train_seconds", 0.0)
        self._truncate_metrics()

    def _truncate_metrics(self) -> None:
        """Drop log rows written after the checkpoint (a crash may have left some), so a
        resumed run's log is the same as an uninterrupted one's."""
        path = self.run_dir / "metrics.jsonl"
        if path.exists():
            rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            kept = [line for line in rows if json.loads(line)["step"] <= self.step]
            checkpoint.atomic_write_bytes(path, "".join(line + "\n" for line in kept).encode("utf-8"))

    def _info(self) -> dict:
        return {**self.info, "step": self.step, "best_dev": self.best_dev, "train_config": asdict(self.cfg), "train_seconds": self.train_seconds}

    def save_last(self) -> None:
        rng = {"batches": self.gen.get_state(), "torch": torch.get_rng_state()}
        ema = {f"ema.{k}": v for k, v in self.ema.state_dict().items()} if self.ema is not None else None
        checkpoint.save(self.run_dir / checkpoint.LAST, self.model, self.data.vocab, self._info(), self.optimizer, rng, ema)

    def save_best(self) -> None:
        checkpoint.save(self.run_dir / checkpoint.BEST, self.evaluated_model(), self.data.vocab, self._info())

    def evaluated_model(self) -> Model:
        """The weights that are evaluated, saved as the best checkpoint and sampled from."""
        return self.ema.module if self.ema is not None else self.model

    # --- metrics ---------------------------------------------------------------------------
    def log(self, row: dict) -> None:
        try:
            with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as e:
            raise MakemoreError(f"cannot write {self.run_dir / 'metrics.jsonl'}: {e.strerror}") from None

    def evaluate_dev(self) -> float:
        if self.ema is not None:
            recompute_batchnorm(self.ema.module, self.X)
        return split_nll(self.evaluated_model(), *self.dev)

    # --- the loop --------------------------------------------------------------------------
    def run(self, progress: bool = True) -> dict:
        if self.step == 0 and self.model.num_params() == 0:
            self.model.fit(self.X, self.Y)  # closed-form models are "trained" by counting
        self._install_signal_handlers()
        try:
            self._loop(progress)
        except _StopRequested:
            self.save_last()
            raise MakemoreError(
                f"interrupted by {self._stop_signal} at step {self.step}; state saved to {self.run_dir / checkpoint.LAST}. "
                f"Resume with: makemore train -o {self.run_dir} --resume"
            ) from None
        finally:
            self._restore_signal_handlers()
        return {"step": self.step, "best_dev": self.best_dev, "train_seconds": self.train_seconds}

    def _loop(self, progress: bool) -> None:
        cfg, model = self.cfg, self.model
        n = len(self.X)
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=None if progress else True, file=sys.stderr,
                   dynamic_ncols=True, unit="step", mininterval=0.5)
        loss_value, dev, examples, t_window = float("nan"), float("nan"), 0, time.perf_counter()
        model.train()  # evaluation restores this mode itself, so once is enough
        while self.optimizer is not None and self.step < cfg.max_steps:
            t0 = time.perf_counter()
            lr = lr_at(cfg, self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            ix = torch.randint(0, n, (cfg.batch_size,), generator=self.gen).to(self.device)
            X, Y, pos = self.X[ix], self.Y[ix], None
            if self.packed:  # packing drops the padding itself
                X, Y, pos = pack(X, Y, self.model.config.block_size)
            else:
                X, Y = self._trim(X, Y)
            if cfg.input_noise:
                X = self._noised(X)
            loss_value = self._train_step(X, Y, pos)
            self.step += 1
            self.train_seconds += time.perf_counter() - t0
            examples += int((Y != IGNORE).sum()) if Y.dim() > 1 else len(Y)
            if self.step % 100 == 0 or self.step == cfg.max_steps:
                self.log({"step": self.step, "loss": loss_value, "lr": lr})
            if self.step % cfg.eval_interval == 0 or self.step == cfg.max_steps:
                dev = self._checkpoint_on_dev(bar)
            now = time.perf_counter()
            if now - t_window > 0.5:
                bar.set_postfix(loss=f"{loss_value:.4f}", dev=f"{dev:.4f}", ex_s=f"{examples / (now - t_window):,.0f}", refresh=False)
                examples, t_window = 0, now
            bar.update(1)
            if self._stop_signal is not None:
                raise _StopRequested
        bar.close()
        if cfg.max_steps == 0 or self.step == 0:  # closed-form model or nothing to train
            self._checkpoint_on_dev(bar)

    def _noised(self, X: torch.Tensor) -> torch.Tensor:
        """Data characters of the context (never the boundary, which marks where an item starts)
        swapped for uniformly random characters; the targets stay, so the model learns not to
        lean on any one character of its context."""
        swap = (torch.rand(X.shape, device=X.device) < self.cfg.input_noise) & (X != BOUNDARY)
        random_chars = torch.randint(1, len(self.data.vocab), X.shape, device=X.device)
        return torch.where(swap, random_chars, X)

    @staticmethod
    def _trim(X: torch.Tensor, Y: torch.Tensor):
        """Drop the columns that are padding in every row of a batch of items: the rows are
        padded to the longest item of the whole data set, most batches are shorter."""
        if Y.dim() == 1:
            return X, Y
        T = int((Y != IGNORE).sum(1).max())
        return X[:, :T], Y[:, :T]

    def _train_step(self, X: torch.Tensor, Y: torch.Tensor, pos: torch.Tensor | None = None) -> float:
        """One optimizer step on a batch; a non-finite loss or gradient never reaches the weights."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.cfg.manual_grad:
            loss = self.model.manual_grad(X, Y)  # fills p.grad by hand, no autograd (Part 4)
        else:
            loss = batch_loss(self.model, X, Y, pos)
            loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = self.cfg.grad_clip or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True).item()
        loss_value = loss.item()
        if math.isfinite(loss_value) and math.isfinite(grad_norm):
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
        elif self.cfg.skip_nonfinite:
            self.skipped += 1
            self.log({"step": self.step, "skipped": f"loss {loss_value}, grad norm {grad_norm}"})
        else:
            what = "loss" if not math.isfinite(loss_value) else "gradient norm"
            value = loss_value if what == "loss" else grad_norm
            raise MakemoreError(f"{what} became {value} at step {self.step}; stopped before updating the weights, "
                                f"the last good checkpoint is kept in {self.run_dir} (--skip-nonfinite skips such steps)")
        return loss_value

    def _checkpoint_on_dev(self, bar) -> float:
        dev = self.evaluate_dev()
        self.log({"step": self.step, "dev": dev, "train_seconds": round(self.train_seconds, 3)})
        if dev < self.best_dev or (math.isnan(dev) and self.step >= self.cfg.max_steps):
            self.best_dev = dev if not math.isnan(dev) else self.best_dev  # no dev split: keep the final model
            self.save_best()
        self.save_last()
        tqdm.write(f"step {self.step}: dev {dev:.4f} (best {self.best_dev:.4f}), {self.train_seconds:.1f}s training", file=sys.stderr)
        return dev

    # --- signals: finish the current step, then save and exit --------------------------------
    def _install_signal_handlers(self) -> None:
        self._old_handlers = {}

        def handler(signum, frame):
            self._stop_signal = signal.Signals(signum).name

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old_handlers[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread: leave signals alone
                pass

    def _restore_signal_handlers(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
