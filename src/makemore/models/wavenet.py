"""Part 5: WaveNet (van den Oord et al., 2016) as built in the lecture, in two forms.

`wavenet` is the lecture's hierarchical model. The context_size characters of context are
embedded, then fused two at a time, level after level, like a binary tree:

    (B, 8, 24) -flatten 2-> (B, 4, 48) -linear-> (B, 4, 128) -batchnorm, tanh->
    (B, 2, 256) -> (B, 2, 128) -> (B, 1, 256) -> (B, 1, 128) -> logits (B, 27)

Linear layers have no bias (the BatchNorm after them has one); BatchNorm normalises
over the batch and position axes; the output layer starts scaled x0.1. With the
lecture's sizes that is 76,579 parameters on names.

`wavenet-conv` is the same network (same parameter names, so the weights of one load
into the other) read as a causal dilated convolution: level l fuses position t with
position t - 2**(l-1). One pass over a whole item gives the prediction at every position,
and the tree of each window is computed once and shared with its neighbours instead of
once per window. In training, each BatchNorm weighs every position by the number of
windows that use it, so a batch of items gives exactly the statistics -- and the loss and
gradients -- of the hierarchical model on all windows of those items (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import option
from ..data import BOUNDARY
from .base import ModelConfig, SequenceConfig, SequenceModel, WindowConfig, WindowModel, lecture_recipe
from .batchnorm import BatchNorm


@dataclass
class LevelsConfig(ModelConfig):
    """The tree's options, shared by both forms."""

    n_embd: int = option(24, "embedding dimension per character")
    n_hidden: int = option(128, "width of each level")
    dropout: float = option(0.0, "dropout on the last level's output while training")
    bn_momentum: float = option(
        0.001, "BatchNorm running-statistics momentum (0.001 as in Part 3; Part 5's BatchNorm1d layer used 0.1)"
    )
    level: str = option(
        "tanh",
        "tanh: Linear -> BatchNorm -> tanh (the lecture) | gated: the WaveNet paper's "
        "tanh x sigmoid gate, a 1x1 output and a residual connection",
    )

    def span(self) -> int:
        """Characters each prediction sees."""
        raise NotImplementedError

    def problems(self) -> list[str]:
        problems = super().problems()
        R = self.span()
        if R < 2 or R & (R - 1):
            problems.append(f"--{self._span_flag()} must be a power of 2 >= 2 (got {R})")
        if not self.dropout < 1:
            problems.append("--dropout must be < 1")
        if not 0 < self.bn_momentum <= 1:
            problems.append("--bn-momentum must be in (0, 1]")
        if self.level not in ("tanh", "gated"):
            problems.append(f"--level must be tanh or gated, not {self.level!r}")
        return problems


@dataclass
class WaveNetConfig(LevelsConfig, WindowConfig):
    context_size: int = option(8, "characters of context: a power of 2, one level of the tree per doubling")
    bn_per_position: bool = option(
        False,
        "BatchNorm statistics per position, over the batch only: the lecture's bug before its fix (Part 5)",
    )

    def span(self) -> int:
        return self.context_size

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.bn_per_position and self.level != "tanh":
            problems.append("--bn-per-position is the lecture's tanh level only (--level tanh)")
        return problems

    def _span_flag(self) -> str:
        return "context-size"


@dataclass
class WaveNetConvConfig(LevelsConfig, SequenceConfig):
    receptive_field: int = option(
        8, "characters each prediction sees: a power of 2 (the hierarchical form's context_size)"
    )

    def span(self) -> int:
        return self.receptive_field

    def _span_flag(self) -> str:
        return "receptive-field"


class Level(nn.Module):
    """One level of the tree: Linear (no bias) -> BatchNorm -> tanh."""

    def __init__(self, fan_in: int, fan_out: int, momentum: float = 0.001, positions: int = 0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_in, fan_out) / fan_in**0.5)  # unit-variance outputs
        self.bn = BatchNorm(fan_out, momentum, positions=positions)

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None, probe=None) -> torch.Tensor:
        pre = self.bn(x @ self.weight, weight)
        out = torch.tanh(pre)
        return probe(out, pre) if probe is not None else out


class GatedLevel(nn.Module):
    """One level as in the WaveNet paper: z = BatchNorm([older, newer] W), out = tanh(z_f) * sigmoid(z_g),
    then a 1x1 projection added to the newer input (a residual connection, when the widths match)."""

    def __init__(self, fan_in: int, fan_out: int, momentum: float = 0.001):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_in, 2 * fan_out) / fan_in**0.5)
        self.bn = BatchNorm(2 * fan_out, momentum)
        self.proj = nn.Parameter(torch.randn(fan_out, fan_out) / fan_out**0.5)
        self.residual = fan_in == 2 * fan_out  # the input is the pair [older, newer] of width fan_out each

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None, probe=None) -> torch.Tensor:
        filt, gate = self.bn(x @ self.weight, weight).chunk(2, dim=-1)
        h = torch.tanh(filt)
        if probe is not None:  # the filter's tanh, before the gate scales it: Part 3's saturation
            h = probe(h, filt)
        out = (h * torch.sigmoid(gate)) @ self.proj
        return out + x[..., x.size(-1) // 2 :] if self.residual else out


class _Layers:
    """Parameters shared by both forms (and named alike, so the weights of one load into the
    other): embedding, log2(span) levels, output layer."""

    def __init__(self, config: LevelsConfig):
        super().__init__(config)
        V, E, H = config.vocab_size, config.n_embd, config.n_hidden
        self.n_levels = config.span().bit_length() - 1
        self.wte = nn.Embedding(V, E)  # N(0, 1) init, as the lecture's torch.randn
        # Momentum 0.001 averages the last ~1000 steps: for wider or deeper trees trained with weight
        # decay, the running statistics then lag the batch statistics and eval-mode loss suffers.
        M = config.bn_momentum
        if config.level == "gated":
            self.levels = nn.ModuleList(GatedLevel(2 * (E if i == 0 else H), H, M) for i in range(self.n_levels))
        else:  # level i has span / 2**(i+1) positions, each with its own statistics under the lecture's bug
            per_position = getattr(config, "bn_per_position", False)
            self.levels = nn.ModuleList(
                Level(2 * (E if i == 0 else H), H, M, config.span() >> (i + 1) if per_position else 0)
                for i in range(self.n_levels)
            )
        # Dropout only where no BatchNorm follows: dropped-and-rescaled inputs to a level would
        # give its BatchNorm a larger variance in training than it meets in eval mode.
        self.drop = nn.Dropout(config.dropout)
        self.lm_head = nn.Linear(H, V)
        with torch.no_grad():  # the lecture's Linear init, then x0.1: a near-uniform first guess
            self.lm_head.weight.copy_(torch.randn(V, H) / H**0.5 * 0.1)
            self.lm_head.bias.zero_()

    def char_embedding(self):
        return self.wte.weight

    def probe_points(self) -> list[str]:
        return [f"tanh {i + 1}" for i in range(self.n_levels)]  # each level's tanh, from the characters up


class WaveNet(_Layers, WindowModel):
    """The hierarchical form: forward(idx (B, context_size)) -> logits (B, V)."""

    Config = WaveNetConfig
    abilities = frozenset({"embedding", "probes"})
    train_defaults = dict(
        max_steps=30000, batch_size=128, learning_rate=3e-3, weight_decay=0.01, warmup_steps=500, eval_interval=5000
    )
    presets = {
        # measured: dev 1.9761 in 175 s (docs/part5-wavenet.md, run 11); the conv form trains the same
        # network better (wavenet-conv --preset best)
        "best": dict(
            context_size=16,
            level="gated",
            n_embd=128,
            n_hidden=128,
            dropout=0.2,
            bn_momentum=0.01,
            weight_decay=0.1,
            max_steps=10000,
            ema=0.999,
        ),
        # Part 5's loop (lr /10 after 150,000 of 200,000 steps) and its BatchNorm1d layer's momentum 0.1
        "lecture": lecture_recipe(0.75, bn_momentum=0.1),
    }

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx)  # (B, S, E)
        for level in self.levels:
            B, T, C = x.shape
            x = level(
                x.view(B, T // 2, 2 * C), probe=self.probe
            )  # FlattenConsecutive(2): fuse neighbours, halve the positions
        return self.lm_head(self.drop(x.squeeze(1)))


class WaveNetConv(_Layers, SequenceModel):
    """The dilated causal convolution: forward(idx (B, T)) -> logits (B, T, V), every position at once."""

    Config = WaveNetConvConfig
    abilities = frozenset({"decode", "embedding", "probes"})
    train_defaults = dict(
        max_steps=10000, batch_size=32, learning_rate=3e-3, weight_decay=0.01, warmup_steps=300, eval_interval=2000
    )
    presets = {
        # measured: dev 1.9579 at step 9,000 of 10,000, test 1.9537, 252 s (docs/part5-wavenet.md, run 18)
        "best": dict(
            receptive_field=16,
            level="gated",
            n_embd=160,
            n_hidden=160,
            dropout=0.3,
            bn_momentum=0.01,
            weight_decay=0.1,
            max_steps=10000,
            ema=0.9995,
            eval_interval=1000,
        ),
    }

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.decode(idx)[0]

    def decode(self, fresh: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        """Logits for the positions of `fresh`, given the cached activations of those before.

        Level i only looks back d = 2**i steps, so the state is the last d inputs of each level:
        sampling one more character costs one new position per level instead of a whole window.
        """
        R = self.config.span()
        if state is None:  # before an item starts, the context is boundary tokens: the windows' [0] * context_size
            fresh = F.pad(fresh, (R - 1, 0), value=BOUNDARY)
        x = self.wte(fresh)  # (B, T + R - 1, E) on the first call
        uses = self._uses(fresh[:, R - 1 :]) if self.training and state is None else [None] * self.n_levels
        new_state = []
        for i, level in enumerate(self.levels):
            d = 2**i  # dilation: level i fuses time t with time t - d
            if state is not None:
                x = torch.cat([state[i], x], dim=1)
            new_state.append(x[:, -d:])
            x = level(torch.cat([x[:, :-d], x[:, d:]], dim=-1), uses[i], self.probe)  # d positions shorter
        return self.lm_head(self.drop(x)), new_state

    def _uses(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """For each level, how many real windows use the activation at each time.

        A time t is a real window if it is a prediction of the item (t = 0, or a data character;
        the boundary tokens after the end are padding). Level i's output at time s feeds
        level i+1 at times s (as the newer half) and s + d (as the older half).
        """
        t = torch.arange(idx.size(1), device=idx.device)
        uses = ((idx != BOUNDARY) | (t == 0)).to(self.wte.weight.dtype)  # (B, T)
        per_level = [uses]
        for i in reversed(range(1, self.n_levels)):
            d = 2**i
            uses = F.pad(uses, (d, 0)) + F.pad(uses, (0, d))  # used at s by the next level, or at s + d
            per_level.append(uses)
        return per_level[::-1]
