"""What a trained model shows of its inside, as plain data: its bigram table, its character
embedding in two dimensions, its attention over an item, the gradient on its logits. `makemore
serve` sends these to the page and `makemore plot` draws them; each comes from the model contract
(Model.bigram_table, char_embedding, attention), so a model that has the part gets the view."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .checkpoint import Checkpoint
from .data import BOUNDARY, IGNORE, Dataset, Split
from .errors import MakemoreError


class TextError(MakemoreError):
    """The text to look at is refused: characters outside the vocabulary, or too long."""


def bigram(best: Checkpoint) -> dict:
    """P(next | previous) (row: the previous character, '.' starting and ending items) and, for the
    counting model, the counts behind it."""
    if not best.model.can("bigram"):
        raise MakemoreError(f"a {best.run.type} model reads more than the previous character: no bigram table")
    probs, counts = best.model.bigram_table()
    return {
        "chars": [best.vocab.show(i) for i in range(len(probs))],
        "probs": probs.tolist(),
        "counts": None if counts is None else counts.long().tolist(),
    }


def embedding(best: Checkpoint) -> dict:
    """The character embedding projected to its two principal directions (as it is when it has at
    most two dimensions), with the share of the variance along each."""
    if not best.model.can("embedding"):
        raise MakemoreError(f"a {best.run.type} model has no character embedding")
    table = best.model.char_embedding()
    points, explained = project_2d(table.detach().double().cpu())
    chars = [best.vocab.show(i) for i in range(len(table))]
    return {"chars": chars, "dims": table.size(1), "points": points.tolist(), "explained": explained}


@torch.no_grad()
def attention(best: Checkpoint, text: str) -> dict:
    """The attention weights of every layer and head over '.' and the text: layers[l][h][i][j] is how
    much position i takes from position j (j <= i)."""
    if not best.model.can("attention"):
        raise MakemoreError(f"a {best.run.type} model has no attention")
    idx = row_of(best, text)
    maps = best.model.eval().attention(idx)
    return {"tokens": [best.vocab.show(i) for i in idx[0].tolist()], "layers": maps.float().cpu().tolist()}


def row_of(best: Checkpoint, text: str) -> torch.Tensor:
    """The model's input row (1, T) for a text: the boundary, then its characters, checked."""
    try:
        ids = best.vocab.encode(text)
    except MakemoreError as e:
        raise TextError(str(e)) from None
    limit = best.model.length_limit
    if limit is not None and len(ids) > limit:
        raise TextError(f"this model reads at most {limit} characters")
    return torch.tensor([[BOUNDARY, *ids]], device=best.model.device)


def project_2d(table: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """Rows (V, E) -> (V, 2) points, and the share of the rows' variance along each axis."""
    if table.size(1) > 2:  # the two directions along which the rows spread the most
        centred = table - table.mean(0)
        points = centred @ torch.linalg.svd(centred, full_matrices=False).Vh[:2].T
        total = centred.pow(2).sum()
    else:  # already at most 2-D: shown as it is
        points = torch.nn.functional.pad(table, (0, 2 - table.size(1)))
        total = (points - points.mean(0)).pow(2).sum()
    return points, ((points - points.mean(0)).pow(2).sum(0) / total).tolist()


def dlogits(best: Checkpoint, data: Dataset, n: int = 32) -> dict:
    """Part 4's picture: the gradient of the mean loss over n training targets with respect to their
    logits, softmax(logits) - one_hot(target), divided by n. Each row sums to zero: the right
    character is pulled down by what the model failed to give it, the others pushed up by what
    they took."""
    return dlogits_of(best, data.split("train"), n)


def dlogits_of(best: Checkpoint, split: Split, n: int) -> dict:
    """dlogits() over the first n targets of these items (each item's characters, then its end)."""
    model = best.model.eval()
    examples = model.examples(split)
    X, Y = examples[: max(1, n)]
    logits = model(X.to(model.device)).reshape(-1, model.config.vocab_size)
    targets = Y.reshape(-1).to(model.device)
    keep = targets != IGNORE
    logits, targets = logits[keep][:n].detach().requires_grad_(), targets[keep][:n]
    F.cross_entropy(logits.float(), targets).backward()  # autograd computes what the lecture derives
    return {
        "chars": [best.vocab.show(i) for i in range(model.config.vocab_size)],
        "targets": [best.vocab.show(t) for t in targets.tolist()],
        "ends": [k for k, t in enumerate(targets.tolist()) if t == BOUNDARY],  # '.' may be a character too
        "dlogits": logits.grad.float().cpu().tolist(),
    }


# The one saturation threshold, used by `makemore plot tanh` (this view) and `makemore diagnose`
# alike. Karpathy's Part 3 lecture counts a tanh output as saturated at |t| > 0.97 in its
# diagnostics (the "saturated: %" of each layer, beside the activation histograms); its first
# look, the white-pixel map, used 0.99. We take the diagnostics' 0.97 for both, so the two commands
# agree on the same layer. At |t| = 0.97 the local gradient 1 - t^2 is under 6% of its maximum.
SATURATED = 0.97


@torch.no_grad()
def tanh_at_init(best: Checkpoint, data: Dataset, n: int = 32, seed: int = 42, trained: bool = False) -> dict:
    """Part 3's look at a freshly initialised network's first tanh layer on n training examples,
    under each of the model's initialisations (Model.diagnostic_variants): its pre-activations, its
    outputs, and how often they saturate (|h| > SATURATED), one row per example, one column per neuron.
    A layer that reads several positions (a WaveNet's first level reads the context's pairs) has a
    neuron's share of saturated positions in each cell, so a column is still one neuron; a layer of one
    position has 0 or 1. trained: the served weights' layer on the same examples first (in eval mode,
    as they generate)."""
    if not best.model.can("probes"):
        raise MakemoreError(f"a {best.run.type} model offers no tanh layer to look at")
    examples = best.model.examples(data.split("train"))
    X = examples[torch.randint(0, len(examples), (n,), generator=torch.Generator().manual_seed(seed))][0]
    variants = [_first_tanh("trained weights", best.model.eval(), X, n)] if trained else []
    for label, config in best.model.diagnostic_variants():
        torch.manual_seed(seed)
        model = type(best.model)(config).train()  # training mode: BatchNorm normalises this batch
        variants.append(_first_tanh(label, model, X, n))
    return {"examples": n, "threshold": SATURATED, "variants": variants}


def _first_tanh(label: str, model, X: torch.Tensor, n: int) -> dict:
    """The first tanh layer of model on the batch X: pre-activations, outputs, and per example and
    neuron the share of the layer's positions where it saturates."""
    seen: list[tuple] = []  # (the tanh's input, its output) of each probe point
    with model.probing(lambda out, pre: seen.append((pre, out))):
        model(X.to(model.device))
    pre, out = seen[0][0].float().cpu(), seen[0][1].float().cpu()
    h = out.reshape(n, -1, out.size(-1))  # (examples, positions, neurons)
    return {
        "label": label,
        "preact": pre.reshape(-1).tolist(),
        "positions": h.size(1),
        "saturated": (h.abs() > SATURATED).double().mean(1).tolist(),
        "h": h.reshape(-1).tolist(),
    }
