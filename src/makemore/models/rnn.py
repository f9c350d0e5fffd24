"""Recurrent models: rnn (Elman), gru and lstm, as in makemore.py (which has no LSTM).

One cell is applied at every position: it reads the embedding of the current character and
the hidden state carried from the previous position, and writes the next hidden state; the
logits for the next character come from that state. The cells are written out gate by gate
(the lecture's way); the tests check them against torch's fused nn.GRUCell / nn.LSTMCell.

`decode` carries the hidden state between calls, so sampling costs one cell step per
character instead of re-running the whole prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import option
from .base import SequenceConfig, SequenceModel


@dataclass
class RNNConfig(SequenceConfig):
    n_embd: int = option(64, "embedding dimension per character")
    n_embd2: int = option(64, "width of the hidden state")


class ElmanCell(nn.Module):
    """h' = tanh(W [x, h] + b): the plain recurrent cell."""

    def __init__(self, n_embd: int, n_embd2: int):
        super().__init__()
        self.xh_to_h = nn.Linear(n_embd + n_embd2, n_embd2)

    def init_state(self, start):
        return start

    def output(self, state):
        return state

    def forward(self, x, h):
        return torch.tanh(self.xh_to_h(torch.cat([x, h], dim=1)))


class GRUCell(nn.Module):
    """Gated recurrent unit (Cho et al. 2014): an update gate z chooses, per unit, between
    keeping the old state and taking a candidate built from the input and the reset state."""

    def __init__(self, n_embd: int, n_embd2: int):
        super().__init__()
        self.xh_to_z = nn.Linear(n_embd + n_embd2, n_embd2)
        self.xh_to_r = nn.Linear(n_embd + n_embd2, n_embd2)
        self.xh_to_hbar = nn.Linear(n_embd + n_embd2, n_embd2)

    def init_state(self, start):
        return start

    def output(self, state):
        return state

    def forward(self, x, h):
        xh = torch.cat([x, h], dim=1)
        r = torch.sigmoid(self.xh_to_r(xh))  # reset: how much of the past the candidate may read
        hbar = torch.tanh(self.xh_to_hbar(torch.cat([x, r * h], dim=1)))
        z = torch.sigmoid(self.xh_to_z(xh))  # update: how much of the state to replace
        return (1 - z) * h + z * hbar


class LSTMCell(nn.Module):
    """Long short-term memory (Hochreiter & Schmidhuber 1997): a cell c that is only ever
    scaled and added to (so gradients pass through many steps), read out through gate o."""

    def __init__(self, n_embd: int, n_embd2: int):
        super().__init__()
        self.n_embd2 = n_embd2
        self.xh_to_gates = nn.Linear(n_embd + n_embd2, 4 * n_embd2)  # input, forget, candidate, output
        with torch.no_grad():  # forget gate starts open (bias 1) so early training keeps memory
            self.xh_to_gates.bias[n_embd2 : 2 * n_embd2] = 1.0

    def init_state(self, start):
        return start, torch.zeros_like(start)

    def output(self, state):
        return state[0]

    def forward(self, x, state):
        h, c = state
        i, f, g, o = self.xh_to_gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class RNN(SequenceModel):
    Config = RNNConfig
    abilities = frozenset({"decode", "embedding"})
    cell_type = ElmanCell
    train_defaults = dict(max_steps=10000, batch_size=64, learning_rate=3e-3, weight_decay=0.01, warmup_steps=200)

    def __init__(self, config: RNNConfig):
        super().__init__(config)
        self.start = nn.Parameter(torch.zeros(1, config.n_embd2))  # learned hidden state before <b>
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.cell = self.cell_type(config.n_embd, config.n_embd2)
        self.lm_head = nn.Linear(config.n_embd2, config.vocab_size)

    def char_embedding(self):
        return self.wte.weight

    def hidden_matrices(self):
        return [m.weight for m in self.cell.modules() if isinstance(m, nn.Linear)]

    def decode(self, idx, state=None):
        """Logits (B, T, V) for tokens idx (B, T) continuing from `state` (None: the start);
        returns (logits, the state after the last token)."""
        B, T = idx.shape
        if state is None:
            state = self.cell.init_state(self.start.expand(B, -1))
        emb = self.wte(idx)  # (B, T, n_embd)
        hiddens = []
        for t in range(T):
            state = self.cell(emb[:, t], state)
            hiddens.append(self.cell.output(state))
        return self.lm_head(torch.stack(hiddens, dim=1)), state

    def forward(self, idx):
        return self.decode(idx)[0]


class GRU(RNN):
    cell_type = GRUCell


class LSTM(RNN):
    cell_type = LSTMCell
