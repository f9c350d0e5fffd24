"""Autoregressive sampling: start from the boundary (plus an optional prefix), draw one
character at a time until the model emits the boundary again."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import BOUNDARY, Vocab
from .models import Model


def next_token_logits(model: Model, tokens: torch.Tensor) -> torch.Tensor:
    """Logits (B, V) for the token after each row of `tokens` (B, t)."""
    if model.context == "window":
        block = model.config.block_size
        context = F.pad(tokens, (max(0, block - tokens.size(1)), 0), value=BOUNDARY)[:, -block:]
        return model(context)
    return model(tokens[:, -model.config.block_size :])[:, -1]


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    logits = logits / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) > top_p  # keep the smallest set whose mass reaches top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


@torch.no_grad()
def generate(model: Model, vocab: Vocab, n: int, max_len: int, generator: torch.Generator, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, prefix: str = "", cache: bool = True) -> list[str]:
    """n items, each the prefix followed by at most max_len - len(prefix) sampled characters."""
    model.eval()
    start = [BOUNDARY] + vocab.encode(prefix)
    tokens = torch.tensor([start] * n, dtype=torch.long, device=model.device)
    done = torch.zeros(n, dtype=torch.bool, device=model.device)
    steps = max(0, max_len - len(prefix))
    # Incremental decoding (a KV cache, a carried hidden state) when the model offers it and
    # the whole item fits in its block, so it sees exactly what full recomputation would.
    incremental = cache and hasattr(model, "decode") and len(start) + steps - 1 <= model.config.block_size
    state, fresh = None, tokens
    for _ in range(steps):
        if incremental:
            logits, state = model.decode(fresh, state)
            logits = logits[:, -1]
        else:
            logits = next_token_logits(model, tokens)
        probs = F.softmax(filter_logits(logits.float(), temperature, top_k, top_p), dim=-1)
        nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(model.device)
        nxt = nxt.masked_fill(done[:, None], BOUNDARY)
        tokens, fresh = torch.cat([tokens, nxt], dim=1), nxt
        done |= nxt[:, 0] == BOUNDARY
        if done.all():
            break
    return [prefix + vocab.decode(row.tolist()[len(start) :]) for row in tokens]
