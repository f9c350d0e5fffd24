"""The one metric: mean negative log-likelihood in nats per predicted character.

Every character of an item counts, plus one end token; padding counts for nothing.
Evaluations always cover the whole split, in chunks so memory stays bounded.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .data import IGNORE, Vocab, encode_sequences
from .errors import MakemoreError
from .models import Model


@torch.no_grad()
def split_nll(model: Model, X: torch.Tensor, Y: torch.Tensor) -> float:
    """Mean NLL over all non-padding targets of (X, Y); nan for an empty split."""
    was_training = model.training
    model.eval()
    chunk_tokens = min(1 << 16, (1 << 24) // model.config.vocab_size)  # logits stay under 64 MB
    per_row = Y[0].numel() if len(Y) else 1
    rows = max(1, chunk_tokens // per_row)
    total, count = 0.0, 0
    for i in range(0, len(X), rows):
        logits = model(X[i : i + rows])
        y = Y[i : i + rows].reshape(-1)
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y, ignore_index=IGNORE, reduction="sum").item()
        count += int((y != IGNORE).sum())
    model.train(was_training)
    return total / count if count else math.nan


@torch.no_grad()
def score_items(model: Model, vocab: Vocab, items: list[str]) -> list[dict]:
    """Per-character NLL of each item (its characters, then the end token)."""
    model.eval()
    limit = model.length_limit
    if limit is not None and max(len(s) for s in items) > limit:
        raise MakemoreError(f"items longer than {limit} characters cannot be scored by this model")
    X, Y = encode_sequences(items, vocab, None if limit is None else limit + 1)
    logp = F.log_softmax(model.sequence_logits(X.to(model.device)).float(), dim=-1).cpu()
    results = []
    for i, item in enumerate(items):
        n = len(item) + 1
        nll = [-logp[i, t, Y[i, t]].item() for t in range(n)]
        shown = [vocab.show(int(Y[i, t])) for t in range(n)]
        results.append({"item": item, "nll": sum(nll), "nll_per_char": sum(nll) / n, "chars": list(zip(shown, nll))})
    return results
