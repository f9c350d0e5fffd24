"""The one metric: mean negative log-likelihood in nats per predicted character.

Every character of an item counts, plus one end token; padding counts for nothing.
Evaluations always cover the whole split, in chunks so memory stays bounded.
"""

from __future__ import annotations

import contextlib
import gc
import math

import torch
import torch.nn.functional as F

from .data import BOUNDARY, IGNORE, ITEM_LEN_LIMIT, Rows, Split, Vocab, Windows, pack
from .errors import MakemoreError
from .models import Model

LOGITS_BUDGET = 1 << 24  # logits (float32) held at once: 64 MB
CHUNK_TOKENS = 1 << 14  # tokens per forward pass: larger chunks measured slower on CPU (allocation)


def _chunks(model: Model, examples: Rows | Windows, rows: slice = slice(None)):
    """(logits, targets) of the examples (those in `rows`), in chunks whose logits stay under 64 MB."""
    tokens = min(CHUNK_TOKENS, LOGITS_BUDGET // model.config.vocab_size)
    for a, b in examples.spans(tokens, rows):
        X, Y = examples[a:b]
        if model.packs:  # whole items back to back, in order: the same logits, far less padding
            X, Y, pos = pack(X, Y, model.pack_width(X.size(1)), in_order=True)
            logits = model(X.to(model.device), pos.to(model.device))
        else:
            logits = model(X.to(model.device))
        yield logits.reshape(-1, logits.size(-1)), Y.reshape(-1).to(model.device)


def split_nll(model: Model, examples: Rows | Windows) -> float:
    """Mean NLL over every target of a split's examples; nan for an empty split."""
    total, count = split_totals(model, examples)
    return total / count if count else math.nan


@torch.no_grad()
def split_totals(model: Model, examples: Rows | Windows, rows: slice = slice(None)) -> tuple[float, int]:
    """(summed NLL, number of targets) over the non-padding targets of the examples in `rows`."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for logits, y in _chunks(model, examples, rows):
        total += F.cross_entropy(logits, y, ignore_index=IGNORE, reduction="sum").item()
        count += int((y != IGNORE).sum())
    model.train(was_training)
    return total, count


@torch.no_grad()
def item_nlls(model: Model, examples: Rows | Windows) -> torch.Tensor:
    """Each item's NLL (float64), summed over its characters and end token, in the split's order."""
    was_training = model.training
    model.eval()
    nll = [
        F.cross_entropy(logits.float(), y, ignore_index=IGNORE, reduction="none")[y != IGNORE].cpu()
        for logits, y in _chunks(model, examples)
    ]
    model.train(was_training)
    split = examples.split
    ends = (split.offsets[1:] - split.offsets[0]) + torch.arange(1, len(split) + 1)  # + one end token each
    running = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cat(nll).double().cumsum(0)])
    return running[ends] - running[torch.cat([ends.new_zeros(1), ends[:-1]])]


@torch.no_grad()
def score_items(model: Model, vocab: Vocab, items: list[str]) -> list[dict]:
    """Per-character NLL of each item (its characters, then the end token), in bounded memory."""
    model.eval()
    limit = model.length_limit if model.length_limit is not None else ITEM_LEN_LIMIT
    if max(len(s) for s in items) > limit:
        raise MakemoreError(f"items longer than {limit:,} characters cannot be scored by this model")
    nll = []
    for logits, y in _chunks(model, model.examples(Split.of(items, vocab))):
        real = y != IGNORE  # every item's characters and end token, item after item
        nll.append(F.cross_entropy(logits.float()[real], y[real], reduction="none").cpu())
    # one conversion to Python for all items: slicing tensors item by item costs more than the model
    nll = torch.cat(nll).tolist()
    end = vocab.show(BOUNDARY)
    results, start = [], 0
    with _collector_paused():
        for item in items:
            n = len(item) + 1
            values = nll[start : start + n]
            total = sum(values)
            chars = [*zip(item, values), (end, values[-1])]  # the characters predicted, then the end token
            results.append({"item": item, "nll": total, "nll_per_char": total / n, "chars": chars})
            start += n
    return results


@contextlib.contextmanager
def _collector_paused():
    """No garbage collection while the results are built: they are many small lists and tuples in
    no cycle, and each collection they would set off walks every object of the process (the model,
    torch's modules), which cost `bigram` scoring 6x its items/s."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
