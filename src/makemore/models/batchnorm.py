"""The one BatchNorm every model with batch normalisation uses (Part 3; Part 5 normalises over
positions too).

Each channel (the last axis) is normalised over all other axes with the batch's mean and
unbiased (Bessel-corrected) variance while training -- as the lectures' `x.var()` -- and the
running estimates kept for eval mode are updated the lectures' way,
running = (1 - momentum) * running + momentum * batch. In eval mode one example alone gets
exactly the output it gets inside any batch.

The lectures' inline version of the same arithmetic is kept as teaching code in
docs/part3-batchnorm.md.
"""

from __future__ import annotations

import torch
from torch import nn


class BatchNorm(nn.Module):
    """`shape`: of the gain, bias and running statistics; (dim,) by default, (1, dim) for mlp-bn,
    whose (1, H) gain and bias are matrices to the optimizer and so weight-decayed.

    `positions` > 0 keeps statistics per position and channel of a (B, positions, dim) input, over
    the batch axis only: the lecture's BatchNorm1d on 3-D input before its fix (Part 5), kept so
    that its dev NLL can be measured."""

    def __init__(
        self,
        dim: int,
        momentum: float = 0.001,
        eps: float = 1e-5,
        shape: tuple[int, ...] | None = None,
        positions: int = 0,
    ):
        super().__init__()
        shape = shape or (dim,)
        stats_shape = (positions, dim) if positions else shape
        self.momentum, self.eps, self.positions = momentum, eps, positions
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("running_mean", torch.zeros(stats_shape))
        self.register_buffer("running_var", torch.ones(stats_shape))

    def batch_stats(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and unbiased variance per channel. `weight` (x's shape without the channel axis)
        counts how often each row is used downstream: the statistics are then those of the rows
        repeated that many times (wavenet-conv)."""
        axes = (0,) if self.positions else tuple(range(x.dim() - 1))
        if weight is None:
            return x.mean(axes), x.var(axes)
        w = weight.unsqueeze(-1)
        n = w.sum()
        mean = (w * x).sum(axes) / n
        return mean, (w * (x - mean) ** 2).sum(axes) / (n - 1)

    @torch.no_grad()
    def update_running(self, mean: torch.Tensor, var: torch.Tensor) -> None:
        self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
        self.running_var.mul_(1 - self.momentum).add_(self.momentum * var)

    def normalize(self, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        if not self.training:
            return self.normalize(x, self.running_mean, self.running_var)
        mean, var = self.batch_stats(x, weight)
        self.update_running(mean, var)
        return self.normalize(x, mean, var)
