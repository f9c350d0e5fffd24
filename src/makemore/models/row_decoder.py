"""One row of Transformer decoding in NumPy: sampling one item at a time, fast.

At batch 1 a decoding step is a few hundred tiny operations (a row of 64 numbers through 64x192
weights), and each torch call costs microseconds of dispatch, far more than its arithmetic: the
torch path draws ~60 names/s one at a time. NumPy's calls cost about half as much, and this path
makes fewer of them: the LayerNorm gains and biases are folded into the weights after them, the
attention scale into the queries, GELU's 1/2 into the MLP's output weights, all heads attend in
one batched product, and the first token's step (the same for every item) is kept. The logits
are the model's up to float32 rounding (tests/models/test_row_decoder.py holds them against
forward()).

It is a speed path outside the model: the sampler asks `row_decoder(model)` for one, and gets
None for any model or setting it does not cover. The folded weights are keyed on the model's
current parameter tensors and their versions, so any change of the weights (an optimizer step, a
load, with or without `assign=True`, a move to another device) folds them again.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
import torch

from ..errors import MakemoreError

INV_SQRT2 = 1 / math.sqrt(2)


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy().copy()


def _linear(linear) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) with x @ W + b == linear(x)."""
    return _array(linear.weight).T.copy(), _array(linear.bias)


def _after_norm(ln, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) of a linear map that follows LayerNorm `ln`, taking the normalised x̂ instead:
    (x̂ g + β) W + b = x̂ (g[:, None] W) + (β W + b)."""
    g, beta = _array(ln.weight), _array(ln.bias)
    return g[:, None] * W, beta @ W + b


class RowWeights:
    """A Transformer's weights, folded for one-row decoding (a snapshot: see row_decoder())."""

    def __init__(self, model):
        c = model.config
        self.width, self.heads, self.eps = c.n_embd, c.n_head, model.ln_f.eps
        self.shape = (c.n_layer, c.n_head, c.n_embd // c.n_head, c.positions)
        self.wte, self.wpe = _array(model.wte.weight), _array(model.wpe.weight)
        self.layers = []
        for block in model.blocks:
            Wa, ba = _after_norm(block.ln_1, *_linear(block.attn.c_attn))
            scale = 1 / math.sqrt(c.n_embd // c.n_head)  # q k / sqrt(head size), folded into q
            Wa[:, : c.n_embd] *= scale
            ba[: c.n_embd] *= scale
            W1, b1 = _after_norm(block.ln_2, *_linear(block.mlp[0]))
            W2, b2 = _linear(block.mlp[2])
            self.layers.append((Wa, ba, *_linear(block.attn.c_proj), W1, b1, 0.5 * W2, b2))
        if c.head == "tied":
            head = (self.wte.T.copy(), _array(model.lm_bias))
        else:
            head = _linear(model.lm_head)
        self.head = _after_norm(model.ln_f, *head)
        self.first = None  # (first token, its keys, values and logits): the same for every row

    def normed(self, x: np.ndarray) -> np.ndarray:
        """LayerNorm without its gain and bias (they are folded into the next weights)."""
        d = x - x.sum() / self.width
        return d * (1 / math.sqrt(d @ d / self.width + self.eps))


class RowDecoder:
    """The keys and values of one row's tokens so far; step() takes the next token."""

    def __init__(self, weights: RowWeights):
        self.w = weights
        layers, heads, head_size, positions = weights.shape
        self.keys = np.empty((layers, heads, head_size, positions), np.float32)  # transposed: q @ keys
        self.values = np.empty((layers, heads, positions, head_size), np.float32)
        self.length = 0

    def step(self, token: int) -> np.ndarray:
        """The logits of the token after `token`."""
        w, t = self.w, self.length
        if t >= w.shape[-1]:
            raise MakemoreError(f"a row of {t + 1} tokens is longer than this model's {w.shape[-1]} positions")
        if t == 0 and w.first is not None and w.first[0] == token:  # every item starts alike: done once
            _, self.keys[..., 0], self.values[:, :, 0], logits = w.first
            self.length = 1
            return logits.copy()
        x = w.wte[token] + w.wpe[t]
        for keys, values, (Wa, ba, Wp, bp, W1, b1, W2, b2) in zip(self.keys, self.values, w.layers):
            q, k, v = (w.normed(x) @ Wa + ba).reshape(3, w.heads, 1, -1)
            keys[:, :, t], values[:, t] = k[:, 0], v[:, 0]
            scores = q @ keys[:, :, : t + 1]  # (heads, 1, t + 1)
            e = np.exp(scores - scores.max(-1, keepdims=True))
            x = x + ((e @ values[:, : t + 1]) / e.sum(-1, keepdims=True)).reshape(-1) @ Wp + bp
            h = w.normed(x) @ W1 + b1
            x = x + (h * (1 + torch.special.erf(torch.from_numpy(h * INV_SQRT2)).numpy())) @ W2 + b2  # GELU
        self.length = t + 1
        logits = w.normed(x) @ w.head[0] + w.head[1]
        if t == 0:
            w.first = (token, self.keys[..., 0].copy(), self.values[:, :, 0].copy(), logits.copy())
        return logits


_FOLDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (its parameters, versions, RowWeights)


def row_decoder(model) -> RowDecoder | None:
    """A NumPy decoder for one row of `model`, or None where this path does not apply: a model other
    than the Transformer with its whole block (MLP, residual connections, LayerNorm), weights that are
    not float32 on the CPU, training mode, or autograd on."""
    from .transformer import Transformer

    weight = next(model.parameters(), None)
    if not isinstance(model, Transformer) or weight is None or model.training or torch.is_grad_enabled():
        return None
    c = model.config
    if (
        c.activation != "gelu"
        or not (c.ffn and c.residual and c.layer_norm)
        or c.qk_norm
        or c.rotary
        or c.soft_cap
        or c.value_embeddings
    ):
        return None  # the folding assumes every piece of the block, and the block as makemore.py has it
    if weight.device.type != "cpu" or weight.dtype != torch.float32:
        return None
    params = list(model.parameters())
    versions = [(p.data_ptr(), p._version) for p in params]
    held = _FOLDED.get(model)
    # the cache holds the parameters themselves, so none of them can be freed and its identity reused
    if (
        held is None
        or len(held[0]) != len(params)
        or any(a is not b for a, b in zip(held[0], params))
        or held[1] != versions
    ):
        held = _FOLDED[model] = (params, versions, RowWeights(model))
    return RowDecoder(held[2])
