"""Self-describing checkpoints: safetensors for tensors, JSON for everything else.

A checkpoint never holds pickled objects, so loading one cannot run code. It carries
the model type and config, the vocabulary, the step, and (for resuming) the optimizer
and RNG states. Writes are atomic: a temporary file in the same directory, fsync, then
rename over the old file, so a crash at any moment leaves the previous one intact.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_tensors_bytes

from .config import TrainConfig
from .data import Vocab
from .errors import MakemoreError
from .files import atomic_write_bytes
from .models import REGISTRY, Model

FORMAT = "makemore-checkpoint"
VERSION = 2  # 2: context_size / max_len for block_size, mlp-bn's BatchNorm a module (1 still loads)
BEST = "model.safetensors"  # best dev loss so far: what eval/sample/score use
LAST = "last.safetensors"  # latest step with optimizer and RNG state: what --resume uses


def _optimizer_to_tensors(sd: dict) -> tuple[dict, dict]:
    tensors, state_meta = {}, {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{name}"] = value
            else:
                state_meta.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "state": state_meta}


def _optimizer_from_tensors(tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    for idx, values in meta["state"].items():
        state.setdefault(int(idx), {}).update(values)
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


@dataclass
class RunInfo:
    """What a run is, written into each of its checkpoints."""

    type: str
    source: str  # the input file it was started from
    max_item_len: int  # items longer than this were skipped
    max_len: int  # longest item of the data, in characters
    params: int
    skipped_items: int
    input_sha256: str = ""  # of DIR/input.txt: a run refuses an input edited after it trained ("" before v2)


@dataclass
class Checkpoint:
    """One checkpoint file's contents. The best checkpoint has no optimizer or RNG state."""

    model: Model
    vocab: Vocab
    run: RunInfo
    step: int = 0
    best_dev: float = math.inf
    train_seconds: float = 0.0
    train_config: TrainConfig | None = None
    optimizer: dict | None = None  # an optimizer's state_dict
    rng: dict[str, torch.Tensor] = field(default_factory=dict)
    ema: dict[str, torch.Tensor] = field(default_factory=dict)  # the weight average's state_dict


def save(path: Path, ckpt: Checkpoint) -> None:
    """Write a checkpoint atomically: tensors to safetensors, everything else to its JSON metadata."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in ckpt.model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ckpt.ema.items()})
    tensors.update({f"rng.{k}": v for k, v in ckpt.rng.items()})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        **asdict(ckpt.run),
        "config": asdict(ckpt.model.config),
        "vocab": list(ckpt.vocab.chars),
        "step": ckpt.step,
        "best_dev": ckpt.best_dev,
        "train_seconds": ckpt.train_seconds,
    }
    if ckpt.train_config is not None:
        meta["train_config"] = asdict(ckpt.train_config)
    if ckpt.optimizer is not None:
        opt_tensors, meta["optimizer"] = _optimizer_to_tensors(ckpt.optimizer)
        tensors.update({k: v.cpu().contiguous() for k, v in opt_tensors.items()})
    atomic_write_bytes(path, save_tensors_bytes(tensors, metadata={"makemore": json.dumps(meta)}))


def _read(path: Path) -> tuple[dict, dict]:
    """(metadata, tensors) of a checkpoint, with every kind of damage reported in one line."""
    path = Path(path)
    if not path.is_file():
        raise MakemoreError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw_meta = (f.metadata() or {}).get("makemore")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise MakemoreError(f"{path} is not a readable checkpoint (truncated or corrupted?): {e}") from None
    try:
        meta = json.loads(raw_meta)
        assert meta["format"] == FORMAT
    except Exception:
        raise MakemoreError(f"{path} is not a makemore checkpoint") from None
    if meta.get("version") not in (1, VERSION):
        raise MakemoreError(
            f"{path} has checkpoint format version {meta.get('version')}; this makemore reads 1 to {VERSION}"
        )
    if meta.get("type") not in REGISTRY:
        raise MakemoreError(f"{path} holds an unknown model type {meta.get('type')!r}")
    return meta, tensors


def _build_model(meta: dict, tensors: dict) -> Model:
    cls = REGISTRY[meta["type"]]
    config = dict(meta["config"])
    if meta["version"] == 1:
        cls.upgrade(config, tensors)
    known = {f.name for f in fields(cls.Config)}
    if set(config) - known:
        raise MakemoreError(
            f"checkpoint config has fields unknown to model {meta['type']!r}: {sorted(set(config) - known)}"
        )
    model = cls(cls.Config(**config))
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0:2]
        raise MakemoreError(f"checkpoint weights do not fit model {meta['type']!r}: {' '.join(first)}") from None
    return model


def load(path: Path) -> Checkpoint:
    """A checkpoint file's contents, the model in eval mode."""
    meta, tensors = _read(path)
    model = _build_model(meta, tensors)
    model.eval()
    missing = [f.name for f in fields(RunInfo) if f.name not in meta and f.default is MISSING]
    if missing:
        raise MakemoreError(f"{path} lacks the run's {', '.join(missing)}; it was not written by makemore train")
    run = RunInfo(**{f.name: meta[f.name] for f in fields(RunInfo) if f.name in meta})
    return Checkpoint(
        model=model,
        vocab=Vocab(tuple(meta["vocab"])),
        run=run,
        step=meta["step"],
        best_dev=meta.get("best_dev", math.inf),
        train_seconds=meta.get("train_seconds", 0.0),
        train_config=TrainConfig(**meta["train_config"]) if "train_config" in meta else None,
        optimizer=_optimizer_from_tensors(tensors, meta["optimizer"]) if "optimizer" in meta else None,
        rng={k[len("rng.") :]: v for k, v in tensors.items() if k.startswith("rng.")},
        ema={k[len("ema.") :]: v for k, v in tensors.items() if k.startswith("ema.")},
    )
