"""Reference answers to the exercises whose answer makemore itself does not hold: one attention
head (part6_attention_head.py) and the training step of "overfit one batch"
(part2_overfit_one_batch.py). The others' answers are the package's own code: see each
exercise's `--solution`. Try first; read after.
"""

import torch
import torch.nn.functional as F
from torch import nn


class Head(nn.Module):
    """One head of causal self-attention, as in "Let's build GPT"."""

    def __init__(self, n_embd, head_size, block_size):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        # a buffer, not a parameter: it moves with the module (.to(device)) but is never trained
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))

    def forward(self, x):
        T = x.shape[1]
        k, q, v = self.key(x), self.query(x), self.value(x)  # (B, T, head_size) each
        scores = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T): unit variance at init
        scores = scores.masked_fill(self.tril[:T, :T] == 0, float("-inf"))  # no looking ahead
        weights = F.softmax(scores, dim=-1)  # each row: how much token t takes from tokens 0..t
        return weights @ v


def train_step(parameters, X, Y, lr, forward):
    """One step of gradient descent on the whole batch; returns the loss before the step.
    `forward` is the exercise's (the exercise's own train_step calls it directly)."""
    loss = F.cross_entropy(forward(parameters, X), Y)
    for p in parameters:
        p.grad = None  # backward adds into .grad: without this each step uses every earlier gradient too
    loss.backward()
    with torch.no_grad():  # the update itself is not part of the function being differentiated
        for p in parameters:
            p -= lr * p.grad
    return loss.item()
