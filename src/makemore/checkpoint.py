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

from .config import Checked, TrainConfig, field_type
from .data import ITEM_LEN_LIMIT, LECTURES, MAX_VOCAB, SPLIT_RULES, Vocab
from .errors import MakemoreError
from .files import atomic_write_bytes
from .models import REGISTRY, Model, ModelConfig
from .models.base import shapes_only

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
class RunInfo(Checked):
    """What a run is, written into each of its checkpoints."""

    type: str
    source: str  # the input file it was started from
    max_item_len: int  # items longer than this were skipped
    max_len: int  # longest item of the data, in characters
    params: int
    skipped_items: int
    input_sha256: str = ""  # of DIR/input.txt: a run refuses an input edited after it trained ("" before v2)
    text: bool = False  # text mode: input.txt is one stream of characters (data.Dataset.read_text), not items
    split: str = LECTURES  # how the items were split (data.SPLIT_RULES; a run without it: the lectures')

    def problems(self) -> list[str]:
        problems = []
        if self.split not in SPLIT_RULES or (self.text and self.split != LECTURES):
            problems.append(f"split {self.split!r} is not one of {', '.join(SPLIT_RULES)} (text mode: {LECTURES})")
        if not 1 <= self.max_item_len <= ITEM_LEN_LIMIT:
            problems.append(f"max_item_len {self.max_item_len} is not in [1, {ITEM_LEN_LIMIT:,}]")
        if not 1 <= self.max_len <= self.max_item_len:
            problems.append(f"max_len {self.max_len} is not in [1, max_item_len]")
        if self.params < 0 or self.skipped_items < 0:
            problems.append("params and skipped_items must be >= 0")
        return problems


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
    """(metadata as stored, tensors) of a checkpoint, checked as `_open` checks it."""
    meta, _, tensors = _open(path)
    return meta, tensors


def _open(path: Path) -> tuple[dict, dict, dict]:
    """(metadata as stored, its configs, tensors) of a checkpoint, with every kind of damage reported in
    one line. The metadata is checked against the model's config, and the tensor shapes in the
    safetensors header against the model it describes, before any tensor is read."""
    path = Path(path)
    if not path.is_file():
        raise MakemoreError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta, configs = _metadata(path, (f.metadata() or {}).get("makemore"))
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            _check_shapes(path, meta, configs["model"], shapes)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise MakemoreError(f"{path} is not a readable checkpoint (truncated or corrupted?): {e}") from None
    bad = next(
        (k for k, t in tensors.items() if k.startswith("model.") and t.is_floating_point() and t.isnan().any()), None
    )
    if bad is not None:
        raise MakemoreError(f"{path} holds NaN weights ({bad[len('model.') :]}); it cannot be used")
    return meta, configs, tensors


def _metadata(path: Path, raw: str | None) -> tuple[dict, dict]:
    """The JSON metadata, checked: format, version, type, config fields and values, vocabulary, step."""
    try:
        meta = json.loads(raw)
        assert isinstance(meta, dict) and meta["format"] == FORMAT
    except Exception:
        raise MakemoreError(f"{path} is not a makemore checkpoint") from None
    if meta.get("version") not in (1, VERSION):
        raise MakemoreError(
            f"{path} has checkpoint format version {meta.get('version')}; this makemore reads 1 to {VERSION}"
        )
    if not isinstance(meta.get("type"), str) or meta["type"] not in REGISTRY:
        raise MakemoreError(f"{path} holds an unknown model type {meta.get('type')!r}")
    vocab = meta.get("vocab")
    if not isinstance(vocab, list) or not all(isinstance(c, str) and len(c) == 1 for c in vocab):
        raise MakemoreError(f"{path}: its vocabulary is not a list of characters")
    if len(set(vocab)) != len(vocab) or len(vocab) + 1 > MAX_VOCAB:
        raise MakemoreError(f"{path}: its vocabulary has repeated characters or more than {MAX_VOCAB - 1:,}")
    if type(meta.get("step")) is not int or meta["step"] < 0:
        raise MakemoreError(f"{path}: its step is not a whole number >= 0")
    for name in ("best_dev", "train_seconds"):  # forged scalars would fail later, far from the file
        value = meta.get(name, 0.0)
        if (
            type(value) not in (int, float)
            or math.isnan(value)
            or (name == "train_seconds" and not 0 <= value < math.inf)
        ):
            raise MakemoreError(f"{path}: its {name} is not a number{' >= 0' if name == 'train_seconds' else ''}")
    config = _model_config(path, meta)
    if config.vocab_size != len(vocab) + 1:
        raise MakemoreError(f"{path}: vocab_size {config.vocab_size} does not match its {len(vocab)} characters + 1")
    train = _config(path, TrainConfig, meta["train_config"], "train_config") if "train_config" in meta else None
    return meta, {"model": config, "train": train, "run": _run_info(path, meta)}


def _run_info(path: Path, meta: dict) -> RunInfo:
    missing = [f.name for f in fields(RunInfo) if f.name not in meta and f.default is MISSING]
    if missing:
        raise MakemoreError(f"{path} lacks the run's {', '.join(missing)}; it was not written by makemore train")
    return _config(path, RunInfo, {f.name: meta[f.name] for f in fields(RunInfo) if f.name in meta}, "run information")


def _config(path: Path, cls, values, what: str):
    """A config dataclass from JSON values: known fields, each of its type, valid together."""
    if not isinstance(values, dict):
        raise MakemoreError(f"{path}: its {what} is not an object")
    known = {f.name: field_type(f) for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise MakemoreError(f"{path}: its {what} has fields unknown to this makemore: {', '.join(unknown)}")
    for name, value in values.items():
        kind = known[name]
        ok = type(value) is kind or (kind is float and type(value) is int)  # JSON writes 1.0 as 1.0, but be lenient
        if not ok:
            raise MakemoreError(f"{path}: its {what} field {name} should be {kind.__name__}, not {value!r}")
    config = cls(**values)
    problems = config.problems()
    if problems:
        raise MakemoreError(f"{path}: its {what} is invalid: {'; '.join(problems)}")
    return config


def _model_config(path: Path, meta: dict) -> ModelConfig:
    cls = REGISTRY[meta["type"]]
    values = dict(meta.get("config") or {}) if isinstance(meta.get("config"), dict) else meta.get("config")
    if meta["version"] == 1 and isinstance(values, dict):
        cls.upgrade(values, {})
    return _config(path, cls.Config, values, f"{meta['type']} config")


def _check_shapes(path: Path, meta: dict, config: ModelConfig, shapes: dict) -> None:
    """The weights the header declares are exactly those of the model the metadata describes. The
    model is built on the meta device: shapes only, nothing allocated."""
    cls = REGISTRY[meta["type"]]
    declared = {k: v for k, v in shapes.items() if k.startswith("model.")}
    # Building on the meta device allocates nothing, whatever the sizes; only a count of repeated
    # blocks costs time (Python objects per block). Each block has at least one tensor, which bounds
    # that count by the file's own. Other sizes (max_len, widths) are checked by the shapes below.
    for f in fields(config):
        value = getattr(config, f.name)
        if f.metadata.get("repeats") and value > max(len(declared), 1):
            raise MakemoreError(
                f"{path}: its {f.name} {value} is more blocks than its {len(declared)} weight tensors can hold"
            )
    if meta["version"] == 1:
        cls.upgrade(dict(meta["config"]), declared)
    try:
        with shapes_only():
            expected = {f"model.{k}": tuple(v.shape) for k, v in cls(config).state_dict().items()}
    except (RuntimeError, OverflowError, TypeError, ValueError):  # sizes whose byte count overflows
        raise MakemoreError(f"{path}: its metadata describes a {meta['type']} too large to build") from None
    if declared != expected:
        wrong = sorted(set(declared) ^ set(expected)) or [k for k in expected if declared[k] != expected[k]]
        raise MakemoreError(
            f"checkpoint weights do not fit model {meta['type']!r} as its metadata describes it (first: {wrong[0]})"
        )


def _build_model(meta: dict, config: ModelConfig, tensors: dict) -> Model:
    cls = REGISTRY[meta["type"]]
    if meta["version"] == 1:
        cls.upgrade(dict(meta["config"]), tensors)
    model = cls(config)
    model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    return model


def load(path: Path) -> Checkpoint:
    """A checkpoint file's contents, the model in eval mode."""
    meta, configs, tensors = _open(path)
    model = _build_model(meta, configs["model"], tensors)
    bad = next((name for name, p in model.named_parameters() if not torch.isfinite(p).all()), None)
    if bad is not None:  # (buffers may hold -inf: the log of a count of 0)
        raise MakemoreError(f"{path} holds infinite weights ({bad}); it cannot be used")
    model.eval()
    return Checkpoint(
        model=model,
        vocab=Vocab(tuple(meta["vocab"])),
        run=configs["run"],
        step=meta["step"],
        best_dev=meta.get("best_dev", math.inf),
        train_seconds=meta.get("train_seconds", 0.0),
        train_config=configs["train"],
        optimizer=_optimizer_from_tensors(tensors, meta["optimizer"]) if "optimizer" in meta else None,
        rng={k[len("rng.") :]: v for k, v in tensors.items() if k.startswith("rng.")},
        ema={k[len("ema.") :]: v for k, v in tensors.items() if k.startswith("ema.")},
    )
