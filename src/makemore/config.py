"""Config dataclasses: every field is a type-checked CLI flag with its help text.

`TrainConfig` is the training recipe the engine runs; each model's own config derives from
`models.base.ModelConfig`. Both validate the same way: `problems()` lists what is wrong,
`validate()` raises them as one line.
"""

from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields

from .errors import MakemoreError


def option(default, help: str, from_data: bool = False, repeats: bool = False):
    """A config field with its --help text. `from_data`: the default is measured on the input file.
    `repeats`: the model repeats a block this many times (so it has at least this many tensors)."""
    return field(default=default, metadata={"help": help, "from_data": from_data, "repeats": repeats})


class Checked:
    """Validation shared by the configs: subclasses extend `problems()`."""

    def problems(self) -> list[str]:
        return []

    def validate(self) -> None:
        problems = self.problems()
        if problems:
            raise MakemoreError("; ".join(problems))


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# The one table of the types a config field may have: each is a command-line flag and a JSON value
# in every checkpoint, and these four are what both carry without a convention of our own.
FIELD_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def field_type(f: Field) -> type:
    """A config field's type (annotations may be strings, under `from __future__ import annotations`)."""
    kind = FIELD_TYPES.get(f.type) if isinstance(f.type, str) else f.type
    if kind not in FIELD_TYPES.values():
        raise MakemoreError(
            f"config field {f.name}: type {f.type!r} is not one of {', '.join(FIELD_TYPES)} "
            "(each field is a flag and a JSON value; a tuple or an optional value needs its own convention)"
        )
    return kind


def check_fields(cls):
    """Every field of a config class has a type of FIELD_TYPES: checked when the class is registered."""
    for f in fields(cls):
        field_type(f)
    return cls


SCHEDULES = ("constant", "step", "cosine", "wsd", "sweep")


@dataclass
class TrainConfig(Checked):
    max_steps: int = option(10000, "optimizer steps (0 for closed-form models)")
    batch_size: int = option(64, "examples (windows, or whole items for sequence models) per step")
    learning_rate: float = option(1e-3, "peak learning rate")
    optimizer: str = option(
        "adamw",
        "adamw | sgd | muon (Muon on the model's hidden weight matrices, AdamW on the rest, one learning rate)",
    )
    muon_polynomial: str = option(
        "quintic",
        "Muon's orthogonalisation: 'quintic' (one polynomial five times, Jordan et al. 2024) or 'polar' "
        "(Polar Express, a tuned polynomial per iteration, Amsel et al. 2025)",
    )
    weight_decay: float = option(
        0.01, "weight decay of the matrices only (not biases or gains): decoupled in adamw and muon, an L2 term in sgd"
    )
    beta2: float = option(0.999, "AdamW's decay of the squared-gradient average (lower adapts faster)")
    schedule: str = option(
        "cosine",
        "constant | step (/10 after --step-at of the steps) | cosine (to min-lr-ratio) | wsd (warmup, stable, then "
        "a straight decay to min-lr-ratio over the last --cooldown of the steps) | sweep (the learning-rate "
        "finder: rises exponentially from learning-rate x min-lr-ratio to learning-rate, no warmup)",
    )
    cooldown: float = option(0.3, "with --schedule wsd: the share of max-steps over which lr decays to the floor")
    step_at: float = option(
        0.5,
        "with --schedule step: the share of max-steps after which lr is /10 (Parts 2, 3: 0.5; Part 5: 0.75)",
    )
    warmup_steps: int = option(100, "linear warmup steps at the start")
    min_lr_ratio: float = option(0.01, "cosine schedule ends at learning-rate x this")
    eval_interval: int = option(1000, "steps between evaluations of the whole dev split")
    log_interval: int = option(100, "steps between train losses written to the run's metrics")
    seed: int = option(42, "seed for initialisation, batch order and dropout")
    device: str = option("auto", "cpu | cuda | mps | auto")
    threads: int = option(
        0,
        "torch intra-op threads (0: chosen per model: 1 for a small step, which a second thread slows on a busy "
        "machine; all cores for a large one)",
    )
    grad_clip: float = option(0.0, "clip the global gradient norm to this (0: off)")
    skip_nonfinite: bool = option(False, "skip a step whose loss or gradients are not finite, instead of stopping")
    manual_grad: bool = option(False, "gradients from the model's hand-written backward pass, not autograd (Part 4)")
    ema: float = option(
        0.0,
        "keep an exponential moving average of the weights with this decay per step "
        "(e.g. 0.999; warmed up as min(decay, (1+n)/(10+n)) after n steps, so a short run averages only "
        "its recent steps); evaluate and save it instead of the raw weights where it is better (0: off)",
    )
    input_noise: float = option(
        0.0,
        "replace each context character of a training batch by a random character with "
        "this probability (data noising as smoothing, Xie et al. 2017; 0: off)",
    )
    pack: bool = option(
        True,
        "models that support it (transformer): train on rows packed with several whole items "
        "each; the same loss as padded items, with much less padding",
    )

    def problems(self) -> list[str]:
        checks = [
            (self.max_steps >= 0, "--max-steps must be >= 0"),
            (self.batch_size >= 1, "--batch-size must be >= 1"),
            (self.learning_rate > 0 and math.isfinite(self.learning_rate), "--learning-rate must be a positive number"),
            (self.optimizer in ("adamw", "sgd", "muon"), "--optimizer must be adamw, sgd or muon"),
            (self.muon_polynomial in ("quintic", "polar"), "--muon-polynomial must be quintic or polar"),
            (self.weight_decay >= 0, "--weight-decay must be >= 0"),
            (0 <= self.beta2 < 1, "--beta2 must be in [0, 1)"),
            (self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}"),
            (0 < self.step_at <= 1, "--step-at must be in (0, 1]"),
            (0 < self.cooldown <= 1, "--cooldown must be in (0, 1]"),
            (self.warmup_steps >= 0, "--warmup-steps must be >= 0"),
            (0 <= self.min_lr_ratio <= 1, "--min-lr-ratio must be in [0, 1]"),
            (self.eval_interval >= 1, "--eval-interval must be >= 1"),
            (self.log_interval >= 1, "--log-interval must be >= 1"),
            (self.device in ("cpu", "cuda", "mps", "auto"), "--device must be cpu, cuda, mps or auto"),
            (self.threads >= 0, "--threads must be >= 0"),
            (0 <= self.seed < 2**63, "--seed must be in [0, 2**63)"),
            (self.grad_clip >= 0, "--grad-clip must be >= 0"),
            (0 <= self.ema < 1, "--ema must be in [0, 1)"),
            (0 <= self.input_noise < 1, "--input-noise must be in [0, 1)"),
        ]
        return [message for ok, message in checks if not ok]


check_fields(TrainConfig)
