"""The one metric: mean negative log-likelihood in nats per predicted character.

Every character of an item counts, plus one end token; padding counts for nothing.
Evaluations always cover the whole split, in chunks so memory stays bounded.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .data import IGNORE, ITEM_LEN_LIMIT, Vocab, encode_sequences
from .errors import MakemoreError
from .models import Model

LOGITS_BUDGET = 1 << 24  # logits (float32) held at once: 64 MB


def _chunks(model: Model, X: torch.Tensor, Y: torch.Tensor):
    """(logits, targets) of (X, Y) in row chunks whose logits stay under 64 MB."""
    chunk_tokens = min(1 << 16, LOGITS_BUDGET // model.config.vocab_size)
    per_row = Y[0].numel() if len(Y) else 1
    rows = max(1, chunk_tokens // per_row)
    for i in range(0, len(X), rows):
        logits = model(X[i : i + rows].to(model.device))
        yield logits.reshape(-1, logits.size(-1)), Y[i : i + rows].reshape(-1).to(model.device)


def split_nll(model: Model, X: torch.Tensor, Y: torch.Tensor) -> float:
    """Mean NLL over all non-padding targets of (X, Y); nan for an empty split."""
    total, count = split_totals(model, X, Y)
    return total / count if count else math.nan


@torch.no_grad()
def split_totals(model: Model, X: torch.Tensor, Y: torch.Tensor) -> tuple[float, int]:
    """(summed NLL, number of targets) over the non-padding targets of (X, Y)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for logits, y in _chunks(model, X, Y):
        total += F.cross_entropy(logits, y, ignore_index=IGNORE, reduction="sum").item()
        count += int((y != IGNORE).sum())
    model.train(was_training)
    return total, count


@torch.no_grad()
def score_items(model: Model, vocab: Vocab, items: list[str]) -> list[dict]:
    """Per-character NLL of each item (its characters, then the end token), in bounded memory."""
    model.eval()
    limit = model.length_limit if model.length_limit is not None else ITEM_LEN_LIMIT
    if max(len(s) for s in items) > limit:
        raise MakemoreError(f"items longer than {limit:,} characters cannot be scored by this model")
    X, Y = encode_sequences(items, vocab, None if model.length_limit is None else limit + 1)
    targets = Y[Y != IGNORE]  # every item's characters and end token, item after item
    nll = torch.cat(
        [
            F.cross_entropy(logits.float(), y, ignore_index=IGNORE, reduction="none")[y != IGNORE].cpu()
            for logits, y in _chunks(model, *model.examples(X, Y))
        ]
    )
    results, start = [], 0
    for item in items:
        n = len(item) + 1
        values = nll[start : start + n].tolist()
        shown = [vocab.show(t) for t in targets[start : start + n].tolist()]
        results.append(
            {"item": item, "nll": sum(values), "nll_per_char": sum(values) / n, "chars": list(zip(shown, values))}
        )
        start += n
    return results
