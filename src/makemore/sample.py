"""Autoregressive sampling: start from the boundary (plus an optional prefix), draw one
character at a time until the model emits the boundary again; in text mode, continue a text for
a given number of characters (the boundary is never drawn).

Each item has its own stream of random numbers: a key drawn for it from the generator (the i-th
item of a call takes the generator's i-th draw), hashed with the step to give one uniform number
per character. So an item does not depend on how many items are drawn with it, on the batches they
are drawn in, or on which of them have ended: the first k items of a seed are the same for any -n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .data import BOUNDARY, Vocab
from .models import Model
from .models.row_decoder import row_decoder

KEY_LIMIT = 1 << 62  # item keys are drawn in [0, 2**62)
GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64's increment: consecutive steps give well-spread hash inputs
NOISE_STEPS = 64  # steps of uniform numbers hashed at once: (rows, 64) float64, 2 MB at 4096 rows
LOGITS_BUDGET = 1 << 24  # logits (float32) of a batch of rows: 64 MB
TOKENS_BUDGET = 1 << 22  # the batch's table of tokens (int64), rows x the longest item it may draw: 32 MB
MAX_ROWS = 4096


@dataclass(frozen=True)
class Sampling:
    """How each character is drawn: logits / temperature, then only the top_k most likely, then
    only the smallest set holding top_p of the probability; every item starts with prefix."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    prefix: str = ""


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Logits whose softmax is the distribution to draw from; filtered-out characters are -inf.

    The most likely character is shifted to 0 before dividing by the temperature, so no temperature
    overflows: a tiny one tends to the argmax, an infinite one to uniform over what the filters keep.
    A temperature below the smallest normal number of the logits' type is that number (it would be 0
    there, and 0 / 0 is NaN): already the argmax, ties shared."""
    if temperature == 1.0 and top_k is None and top_p is None:
        return logits  # softmax shifts the maximum to 0 itself
    temperature = max(temperature, torch.finfo(logits.dtype).tiny)
    if top_k is not None and top_k < logits.size(-1):  # ranks: before the temperature, which can tie them all
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    masked = logits == float("-inf")
    logits = ((logits - logits.max(-1, keepdim=True).values) / temperature).masked_fill(masked, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) > top_p  # keep the smallest set whose mass reaches top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def generate(
    model: Model,
    vocab: Vocab,
    n: int,
    max_len: int,
    generator: torch.Generator,
    how: Sampling = Sampling(),
    cache: bool = True,
) -> list[str]:
    """n items, each the prefix followed by at most max_len - len(prefix) sampled characters. The
    i-th item is drawn with the generator's i-th key (a second call continues the stream).

    Items are drawn in batches whose logits stay under 64 MB and whose table of tokens (each row as
    long as the longest item it may draw) under 32 MB, so memory grows neither with n nor with the
    sampling bound; what it holds beyond that is the items drawn."""
    rows = batch_rows(model.config.vocab_size, 1 + max(max_len, len(how.prefix)))
    keys = item_keys(n, generator)
    start, steps = [BOUNDARY] + vocab.encode(how.prefix), max(0, max_len - len(how.prefix))
    items = []
    with tqdm(total=n, unit="items", leave=False, disable=None if n > rows else True) as bar:  # None: on a tty
        for first in range(0, n, rows):
            drawn = _generate_batch(model, keys[first : first + rows], start, steps, how, cache, text=False)
            items += [how.prefix + vocab.decode(ids) for ids in drawn]
            bar.update(len(drawn))
    return items


def continue_text(
    model: Model, vocab: Vocab, context: str, length: int, generator: torch.Generator, how: Sampling = Sampling()
) -> str:
    """Text mode: `length` characters that continue `context` (a sequence model sees the last block of
    characters it was trained on, a window model its context). The boundary is never drawn."""
    drawn = _generate_batch(model, item_keys(1, generator), vocab.encode(context), length, how, True, text=True)
    return vocab.decode(drawn[0])


def item_keys(n: int, generator: torch.Generator) -> np.ndarray:
    """One key per item: the generator's next n draws, so that item i takes draw i whatever n is."""
    return torch.randint(0, KEY_LIMIT, (n,), generator=generator).numpy().astype(np.uint64)


def uniforms(keys: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """A number in [0, 1) for each item key (n,) at each step (s,) -> (n, s): SplitMix64's mix of
    key + step * GOLDEN (uint64 arithmetic wraps), its top 52 bits as a fraction."""
    z = keys[:, None] + np.asarray(steps, dtype=np.uint64)[None, :] * np.uint64(GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(12)).astype(np.float64) * 2.0**-52


class _Noise:
    """The uniform numbers of a batch's items, hashed NOISE_STEPS steps at a time (per step, a lookup)."""

    def __init__(self, keys: np.ndarray):
        self.keys, self.first, self.table = keys, 0, np.zeros((len(keys), 0))

    def at(self, rows: np.ndarray, step: int) -> np.ndarray:
        if not self.first <= step < self.first + self.table.shape[1]:
            self.first = step
            self.table = uniforms(self.keys, np.arange(step, step + NOISE_STEPS))
        return self.table[rows, step - self.first]


def batch_rows(vocab_size: int, row_tokens: int) -> int:
    """Items drawn at once: logits under LOGITS_BUDGET, the token table under TOKENS_BUDGET, at least one."""
    return max(1, min(MAX_ROWS, LOGITS_BUDGET // vocab_size, TOKENS_BUDGET // row_tokens))


@torch.no_grad()
def _generate_batch(model, keys: np.ndarray, start: list[int], steps: int, how, cache, text: bool) -> list[list[int]]:
    """The token ids drawn after `start` for each item key, at most `steps` of them: up to the boundary,
    or in text mode exactly `steps` (the boundary is never drawn)."""
    if model.training:  # (eval() walks every module: a cost per call when items are drawn one at a time)
        model.eval()
    n = len(keys)
    device = model.device
    tokens = torch.full((n, len(start) + steps), BOUNDARY, dtype=torch.long, device=device)
    tokens[:, : len(start)] = torch.tensor(start)
    # Incremental decoding (a KV cache, a carried hidden state) when the model offers it and
    # the whole item fits, so it sees exactly what full recomputation would.
    incremental = cache and model.decodes(len(start) + steps - 1)
    # one row at a time: the cost is the calls, not the arithmetic; NumPy makes fewer, cheaper ones
    one_row = row_decoder(model) if incremental and n == 1 else None
    rows = torch.arange(n, device=device)  # the batch's rows still computed, as rows of tokens
    rows_here, noise = rows.cpu().numpy(), _Noise(keys)
    drawing = torch.ones(n, dtype=torch.bool, device=device)  # which of them have not ended
    state, fresh = None, tokens[:, : len(start)]
    for t in range(len(start), len(start) + steps):
        if one_row is not None:
            logits = torch.from_numpy([one_row.step(token) for token in fresh[0].tolist()][-1])[None]
        elif incremental:
            logits, state = model.decode(fresh, state)
            logits = logits[:, -1]
        else:
            logits = model.next_logits(tokens[rows, :t])
        if text:  # a text goes on: no end to draw
            logits = logits.float().index_fill(-1, torch.tensor([BOUNDARY], device=logits.device), float("-inf"))
        probs = F.softmax(filter_logits(logits.float(), how.temperature, how.top_k, how.top_p), dim=-1)
        nxt = draw(probs.cpu(), noise.at(rows_here, t)).to(device)
        tokens[rows, t] = nxt  # a row that has ended writes on past its end, which is cut off below
        drawing &= nxt != BOUNDARY
        live = int(drawing.sum())  # the one host sync of a step: has any row ended?
        if live == 0:
            break
        if live <= 3 * len(rows) // 4:  # drop the ended rows once they are a quarter of the batch
            keep = drawing.nonzero()[:, 0]
            rows, drawing, nxt = rows[keep], drawing[keep], nxt[keep]
            rows_here = rows.cpu().numpy()
            state = model.select_rows(state, keep) if incremental else None
        fresh = nxt[:, None]
    drawn = tokens[:, len(start) :]
    ended = drawn == BOUNDARY
    lengths = torch.where(ended.any(1), ended.int().argmax(1), drawn.size(1)).tolist()
    # row by row, up to its end: never the whole table as Python lists
    return [drawn[i, :k].tolist() for i, k in enumerate(lengths)]


def draw(probs: torch.Tensor, u: np.ndarray) -> torch.Tensor:
    """One character per row of probs (on the CPU) by inverse transform: the first whose cumulative
    probability exceeds u times the row's total (in float64, so a character of probability 0 is never
    drawn; u < 1 - 2**-52 keeps it strictly below the total). NumPy: at batch 1, a step's cost is calls."""
    cum = probs.numpy().astype(np.float64).cumsum(-1)
    return torch.from_numpy((cum <= (u * cum[:, -1])[:, None]).sum(-1))  # entries at or below: the first above
