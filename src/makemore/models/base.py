"""What every model shares: a config dataclass, a context kind and a recommended recipe."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields

import torch
from torch import nn


def option(default, help: str):
    """A config field with its --help text; the CLI turns each into a type-checked flag."""
    return field(default=default, metadata={"help": help})


@dataclass
class ModelConfig:
    vocab_size: int = option(27, "tokens in the vocabulary (set from the data)")
    block_size: int = option(3, "characters of context the model sees")

    def validate(self) -> list[str]:
        """Problems with the values, one message each (empty when the config is sound)."""
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", int) and value < 1:
                problems.append(f"--{f.name.replace('_', '-')} must be >= 1")
            if f.type in ("float", float) and not 0 <= value < float("inf"):
                problems.append(f"--{f.name.replace('_', '-')} must be a finite number >= 0")
        return problems


class Model(nn.Module):
    """Base class. A new model is one subclass plus one line in the registry.

    context = "window":   forward(idx (B, block_size)) -> logits (B, V) for the next token.
    context = "sequence": forward(idx (B, T)) -> logits (B, T, V), one prediction per position.
    packs = True: forward(idx, pos) also takes rows packed with several items (data.pack), pos
    (B, T) being each token's position inside its item; items must not see each other.
    """

    Config = ModelConfig
    context = "window"
    packs = False
    train_defaults: dict = {}  # this model's recommended recipe (overrides TrainConfig)

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    @property
    def device(self) -> torch.device:
        return next(itertools.chain(self.parameters(), self.buffers())).device

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        """Closed-form training; models trained by gradient descent leave this unimplemented."""
        raise NotImplementedError
