"""Self-describing checkpoints: safetensors for tensors, JSON for everything else.

A checkpoint never holds pickled objects, so loading one cannot run code. It carries
the model type and config, the vocabulary, the step, and (for resuming) the optimizer
and RNG states. Writes are atomic: a temporary file in the same directory, fsync, then
rename over the old file, so a crash at any moment leaves the previous one intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_tensors_bytes

from .data import Vocab
from .errors import MakemoreError
from .models import REGISTRY, Model

FORMAT = "makemore-checkpoint"
VERSION = 1
BEST = "model.safetensors"  # best dev loss so far: what eval/sample/score use
LAST = "last.safetensors"  # latest step with optimizer and RNG state: what --resume uses


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise MakemoreError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise MakemoreError(f"cannot write {path}: {e.strerror}; the previous file is left as it was") from None


def _optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
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


def save(path: Path, model: Model, vocab: Vocab, info: dict, optimizer=None, rng: dict | None = None,
         extra: dict | None = None) -> None:
    """Write model (+ optimizer, RNG state and extra named tensors when given) and metadata to one file."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({k: v.detach().cpu().contiguous() for k, v in (extra or {}).items()})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "type": info["type"],
        "config": asdict(model.config),
        "vocab": list(vocab.chars),
        **{k: v for k, v in info.items() if k != "type"},
    }
    if optimizer is not None:
        opt_tensors, meta["optimizer"] = _optimizer_to_tensors(optimizer)
        tensors.update({k: v.cpu().contiguous() for k, v in opt_tensors.items()})
    for name, state in (rng or {}).items():
        tensors[f"rng.{name}"] = state
    atomic_write_bytes(path, save_tensors_bytes(tensors, metadata={"makemore": json.dumps(meta)}))


def read(path: Path) -> tuple[dict, dict]:
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
    if meta.get("version") != VERSION:
        raise MakemoreError(f"{path} has checkpoint format version {meta.get('version')}; this makemore reads version {VERSION}")
    if meta.get("type") not in REGISTRY:
        raise MakemoreError(f"{path} holds an unknown model type {meta.get('type')!r}")
    return meta, tensors


def build_model(meta: dict, tensors: dict) -> Model:
    cls = REGISTRY[meta["type"]]
    known = {f.name for f in fields(cls.Config)}
    if set(meta["config"]) - known:
        raise MakemoreError(f"checkpoint config has fields unknown to model {meta['type']!r}: {sorted(set(meta['config']) - known)}")
    model = cls(cls.Config(**meta["config"]))
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0:2]
        raise MakemoreError(f"checkpoint weights do not fit model {meta['type']!r}: {' '.join(first)}") from None
    return model


def load(path: Path) -> tuple[Model, Vocab, dict, dict]:
    """(model in eval mode, vocab, metadata, all tensors) from a checkpoint file."""
    meta, tensors = read(path)
    model = build_model(meta, tensors)
    model.eval()
    return model, Vocab(tuple(meta["vocab"])), meta, tensors


def optimizer_state(meta: dict, tensors: dict) -> dict:
    if "optimizer" not in meta:
        raise MakemoreError("checkpoint has no optimizer state; it cannot be resumed")
    return _optimizer_from_tensors(tensors, meta["optimizer"])
