"""Part 3: the MLP with BatchNorm, and the deeper "PyTorch-ified" network of the lecture.

mlp-bn:      C -> W1 (no bias) -> BatchNorm -> tanh -> W2, b2.   12,097 parameters on names.
mlp-bn-deep: C -> n_layer x (Linear no bias -> BatchNorm -> tanh) -> Linear -> BatchNorm.

BatchNorm normalises each hidden unit over the batch while training and keeps running
estimates of the mean and variance; eval mode (evaluation, sampling) uses those running
estimates, so one example alone gets exactly the logits it gets inside any batch.
The variance is the unbiased (Bessel-corrected) one, as in the lecture.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import Model, ModelConfig, option
from .mlp import MLP, MLPConfig


@dataclass
class MLPBNConfig(ModelConfig):
    block_size: int = option(3, "previous characters the model sees")
    n_embd: int = option(10, "embedding dimension per character")
    n_hidden: int = option(200, "width of the BatchNorm + tanh hidden layer")
    bn_momentum: float = option(0.001, "weight of each batch in the running mean/var (the lecture: 0.001)")
    bn_eps: float = option(1e-5, "added to the variance before the square root")

    def validate(self) -> list[str]:
        problems = super().validate()
        if not 0 < self.bn_momentum <= 1:
            problems.append("--bn-momentum must be in (0, 1]")
        return problems


class MLPBN(Model):
    Config = MLPBNConfig
    # lr 0.003, not the plain MLP's 0.01: BatchNorm makes W1's scale free, and at 0.01 Adam's
    # steps stay too large for it (dev 2.156 after 30k steps; 2.104 at 0.003; 2.095 at 60k steps)
    train_defaults = dict(max_steps=60000, batch_size=128, learning_rate=0.003, weight_decay=0.01, warmup_steps=200)

    def __init__(self, config: MLPBNConfig):
        super().__init__(config)
        V, S, E, H = config.vocab_size, config.block_size, config.n_embd, config.n_hidden
        self.C = nn.Parameter(torch.randn(V, E))
        # Kaiming: tanh's gain 5/3 over sqrt(fan_in); no bias, BatchNorm's bnbias takes its place
        self.W1 = nn.Parameter(torch.randn(S * E, H) * (5 / 3) / (S * E) ** 0.5)
        self.bngain = nn.Parameter(torch.ones(1, H))
        self.bnbias = nn.Parameter(torch.zeros(1, H))
        # small output weights: the initial loss is ln(V), not confidently wrong
        self.W2 = nn.Parameter(torch.randn(H, V) * 0.01)
        self.b2 = nn.Parameter(torch.zeros(V))
        self.register_buffer("bnmean_running", torch.zeros(1, H))
        self.register_buffer("bnvar_running", torch.ones(1, H))
        self.tanh = nn.Tanh()  # a module only so that diagnostics can hook its output

    def forward(self, idx):
        emb = self.C[idx]  # (B, S, E)
        embcat = emb.view(emb.shape[0], -1)  # (B, S*E)
        hpreact = embcat @ self.W1  # (B, H)
        if self.training:
            bnmean = hpreact.mean(0, keepdim=True)
            bnvar = hpreact.var(0, keepdim=True, unbiased=True)
            with torch.no_grad():
                m = self.config.bn_momentum
                self.bnmean_running.mul_(1 - m).add_(m * bnmean)
                self.bnvar_running.mul_(1 - m).add_(m * bnvar)
        else:
            bnmean, bnvar = self.bnmean_running, self.bnvar_running
        hpreact = self.bngain * (hpreact - bnmean) / torch.sqrt(bnvar + self.config.bn_eps) + self.bnbias
        h = self.tanh(hpreact)
        return h @ self.W2 + self.b2

    def manual_grad(self, X, Y):
        """Part 4: fill every p.grad by hand (no autograd) and return the loss; see makemore/backprop.py."""
        from .. import backprop

        return backprop.manual_grad(self, X, Y)

    @torch.no_grad()
    def fold(self) -> MLP:
        """The eval-mode network as a plain `mlp`: BatchNorm folded into W1 and a bias b1.

        gain * (x W1 - mean) / sqrt(var + eps) + bias = x (W1 * s) + (bias - mean * s),
        with s = gain / sqrt(var + eps) per hidden unit.
        """
        c = self.config
        mlp = MLP(MLPConfig(vocab_size=c.vocab_size, block_size=c.block_size, n_embd=c.n_embd, n_hidden=c.n_hidden))
        s = self.bngain / torch.sqrt(self.bnvar_running + c.bn_eps)  # (1, H)
        mlp.C.copy_(self.C)
        mlp.W1.copy_((self.W1 * s).view(c.block_size, c.n_embd, c.n_hidden))
        mlp.b1.copy_((self.bnbias - self.bnmean_running * s).view(-1))
        mlp.W2.copy_(self.W2)
        mlp.b2.copy_(self.b2)
        return mlp.to(self.device).eval()


# --- the deeper network, built from layers as in the lecture's "PyTorch-ifying" section ------------
class Linear(nn.Module):
    def __init__(self, fan_in: int, fan_out: int, bias: bool = True, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_in, fan_out) * gain / fan_in**0.5)
        self.bias = nn.Parameter(torch.zeros(fan_out)) if bias else None

    def forward(self, x):
        out = x @ self.weight
        return out if self.bias is None else out + self.bias


class BatchNorm1d(nn.Module):
    def __init__(self, dim: int, momentum: float, eps: float):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def forward(self, x):
        if self.training:
            xmean = x.mean(0)
            xvar = x.var(0, unbiased=True)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * xmean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * xvar)
        else:
            xmean, xvar = self.running_mean, self.running_var
        return self.gamma * (x - xmean) / torch.sqrt(xvar + self.eps) + self.beta


@dataclass
class DeepConfig(MLPBNConfig):
    n_hidden: int = option(100, "width of each hidden layer")
    n_layer: int = option(5, "hidden layers (Linear -> BatchNorm -> tanh each)")
    bn_momentum: float = option(0.01, "weight of each batch in the running mean/var")
    norm: str = option("batchnorm", "batchnorm | none (then every Linear has a bias instead)")
    init_gain: float = option(5 / 3, "hidden weights are randn * gain / sqrt(fan_in); 5/3 suits tanh")

    def validate(self) -> list[str]:
        problems = super().validate()
        if self.norm not in ("batchnorm", "none"):
            problems.append("--norm must be batchnorm or none")
        return problems


class MLPBNDeep(Model):
    Config = DeepConfig
    train_defaults = dict(max_steps=30000, batch_size=128, learning_rate=0.01, weight_decay=0.01, warmup_steps=200)

    def __init__(self, config: DeepConfig):
        super().__init__(config)
        c = config
        bn = c.norm == "batchnorm"
        self.C = nn.Parameter(torch.randn(c.vocab_size, c.n_embd))
        layers, fan_in = [], c.block_size * c.n_embd
        for _ in range(c.n_layer):
            layers.append(Linear(fan_in, c.n_hidden, bias=not bn, gain=c.init_gain))
            if bn:
                layers.append(BatchNorm1d(c.n_hidden, c.bn_momentum, c.bn_eps))
            layers.append(nn.Tanh())
            fan_in = c.n_hidden
        layers.append(Linear(fan_in, c.vocab_size, bias=not bn))
        if bn:
            layers.append(BatchNorm1d(c.vocab_size, c.bn_momentum, c.bn_eps))
        self.layers = nn.Sequential(*layers)
        with torch.no_grad():  # a less confident last layer: the initial loss is near ln(V)
            last = self.layers[-1]
            (last.gamma if bn else last.weight).mul_(0.1)

    def forward(self, idx):
        emb = self.C[idx]
        return self.layers(emb.view(emb.shape[0], -1))

    @torch.no_grad()
    def fold(self) -> "MLPBNDeep":
        """The eval-mode network with every BatchNorm folded into the Linear before it (norm=none)."""
        c = self.config
        if c.norm == "none":
            return self
        plain = MLPBNDeep(DeepConfig(**{**c.__dict__, "norm": "none"}))
        plain.C.copy_(self.C)
        linears = [m for m in self.layers if isinstance(m, Linear)]
        norms = [m for m in self.layers if isinstance(m, BatchNorm1d)]
        for target, lin, bn in zip([m for m in plain.layers if isinstance(m, Linear)], linears, norms):
            s = bn.gamma / torch.sqrt(bn.running_var + bn.eps)
            target.weight.copy_(lin.weight * s)
            target.bias.copy_(bn.beta - bn.running_mean * s)
        return plain.to(self.device).eval()
