"""A run directory: what `train` writes and what eval / sample / score read.

    DIR/input.txt          the items trained on (a copy: the run is self-contained)
    DIR/model.safetensors  best-dev checkpoint (weights, config, vocab)
    DIR/last.safetensors   latest state for --resume (adds optimizer and RNG state)
    DIR/metrics.jsonl      train loss every 100 steps, dev loss at each evaluation
    DIR/loss.png           the loss curve
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from . import checkpoint
from .data import DEFAULT_MAX_ITEM_LEN, Dataset, Vocab, bundled_names, read_items
from .errors import MakemoreError
from .evaluate import score_items, split_nll
from .models import REGISTRY
from .plots import plot_loss
from .sample import generate
from .train import TrainConfig, Trainer, set_threads

INPUT = "input.txt"
RUN_FILES = (checkpoint.BEST, checkpoint.LAST, "metrics.jsonl", INPUT)


def _prepare_dir(work_dir: str | None, model_type: str) -> Path:
    run_dir = Path(work_dir) if work_dir else Path("runs") / f"{model_type}-{time.strftime('%Y%m%d-%H%M%S')}"
    if run_dir.exists() and not run_dir.is_dir():
        raise MakemoreError(f"run directory {run_dir} exists and is not a directory")
    existing = [name for name in RUN_FILES if (run_dir / name).exists()]
    if existing:
        raise MakemoreError(f"{run_dir} already holds a run ({existing[0]}); use --resume to continue it or choose another -o")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MakemoreError(f"cannot create run directory {run_dir}: {e.strerror}") from None
    return run_dir


def start(model_type: str, model_flags: dict, cfg: TrainConfig, input_file: str | None, work_dir: str | None,
          max_item_len: int | None, progress: bool = True) -> str:
    cls = REGISTRY[model_type]
    cfg.validate()
    max_item_len = DEFAULT_MAX_ITEM_LEN if max_item_len is None else max_item_len
    if max_item_len < 1:
        raise MakemoreError("--max-item-len must be >= 1")
    source = Path(input_file) if input_file else bundled_names()
    items, skipped = read_items(source, max_item_len)
    data = Dataset(items)
    config = cls.Config(**{**model_flags, "vocab_size": len(data.vocab)})
    if cls.context == "sequence" and "block_size" not in model_flags:
        config.block_size = data.max_len + 1  # the whole item fits: <b> c1 .. cn
    problems = config.validate()
    if problems:
        raise MakemoreError("; ".join(problems))
    run_dir = _prepare_dir(work_dir, model_type)
    print(f"run directory: {run_dir}", file=sys.stderr)
    if skipped:
        print(f"skipped {skipped} items longer than {max_item_len} characters", file=sys.stderr)
    checkpoint.atomic_write_bytes(run_dir / INPUT, ("\n".join(items) + "\n").encode("utf-8"))
    set_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = cls(config)
    info = {"type": model_type, "max_item_len": max_item_len, "max_len": data.max_len, "source": str(source),
            "params": model.num_params(), "skipped_items": skipped}
    print(f"{model_type}: {model.num_params():,} parameters; {len(data.vocab)} tokens; "
          f"{len(data.splits['train'])}/{len(data.splits['dev'])}/{len(data.splits['test'])} items train/dev/test", file=sys.stderr)
    return _train(Trainer(model, data, cfg, run_dir, info), progress)


def resume(run_dir: Path, train_flags: dict, progress: bool = True) -> str:
    meta, tensors = checkpoint.read(run_dir / checkpoint.LAST)
    model = checkpoint.build_model(meta, tensors)
    cfg = replace(TrainConfig(**meta["train_config"]), **train_flags)
    cfg.validate()
    data = _dataset(run_dir, meta)
    set_threads(cfg.threads)
    info = {k: meta[k] for k in ("type", "max_item_len", "max_len", "source", "params", "skipped_items")}
    for stale in run_dir.glob(".*.tmp"):  # temp files of a save that a crash cut short
        stale.unlink()
    trainer = Trainer(model, data, cfg, run_dir, info, resume_from={"meta": meta, "tensors": tensors})
    print(f"resuming {run_dir} at step {trainer.step} of {cfg.max_steps}", file=sys.stderr)
    return _train(trainer, progress)


def _train(trainer: Trainer, progress: bool) -> str:
    trainer.run(progress)
    plot_loss(trainer.run_dir / "metrics.jsonl", trainer.run_dir / "loss.png")
    report = evaluate(trainer.run_dir)
    return (f"{report['type']}: train {report['train']:.4f}  dev {report['dev']:.4f}  test {report['test']:.4f} "
            f"(best step {report['step']}, {trainer.train_seconds:.1f}s training) -> {trainer.run_dir}")


def _dataset(run_dir: Path, meta: dict) -> Dataset:
    items, _ = read_items(run_dir / INPUT, meta["max_item_len"])
    return Dataset(items, vocab=Vocab(tuple(meta["vocab"])))


def load(run_dir: Path):
    if not run_dir.is_dir():
        raise MakemoreError(f"run directory not found: {run_dir}")
    return checkpoint.load(run_dir / checkpoint.BEST)


def evaluate(run_dir: Path) -> dict:
    model, vocab, meta, _ = load(run_dir)
    data = _dataset(run_dir, meta)
    report = {}
    for split in ("train", "dev", "test"):
        X, Y = data.tensors(split, model.context, model.config.block_size)
        report[split] = split_nll(model, X, Y)
    return {**report, "type": meta["type"], "step": meta["step"], "params": model.num_params()}


def sample(run_dir: Path, n: int, seed: int, temperature: float, top_k, top_p, prefix: str, new_only: bool) -> list[tuple[str, str]]:
    model, vocab, meta, _ = load(run_dir)
    data = _dataset(run_dir, meta)
    vocab.encode(prefix)  # unknown characters in the prefix: one clear error
    limit = 2 * meta["max_len"] if model.context == "window" else model.config.block_size - 1
    if len(prefix) > limit:
        raise MakemoreError(f"--prefix is longer than this model can extend ({limit} characters)")
    gen = torch.Generator().manual_seed(seed)
    out: list[tuple[str, str]] = []
    for _ in range(100 if new_only else 1):  # --new-only: draw until enough new items, within reason
        for item in generate(model, vocab, n, limit, gen, temperature, top_k, top_p, prefix):
            where = data.membership(item)
            if not new_only or where == "new":
                out.append((item, where))
        if len(out) >= n:
            break
    if len(out) < n:
        print(f"only {len(out)} new items after 100 rounds of sampling", file=sys.stderr)
    return out[:n]


def score(run_dir: Path, items: list[str]) -> list[dict]:
    model, vocab, meta, _ = load(run_dir)
    items = [s.strip() for s in items]
    if any(not s for s in items):
        raise MakemoreError("cannot score an empty item")
    for item in items:
        vocab.encode(item)
    return score_items(model, vocab, items)
