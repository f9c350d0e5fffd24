"""The one metric: mean negative log-likelihood in nats per predicted character.

Every character of an item counts, plus one end token; padding counts for nothing. In text mode
every character of the split after its first counts, once (data.Blocks, data.TextWindows).
Evaluations always cover the whole split, in chunks so memory stays bounded. Beside it, for
comparison only, the figure Karpathy's makemore.py prints (makemore_nll): a mean of batch means.
"""

from __future__ import annotations

import contextlib
import gc
import math
import weakref
from collections.abc import Callable
from dataclasses import fields, replace

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .data import BOUNDARY, IGNORE, ITEM_LEN_LIMIT, Rows, Split, Vocab, Windows
from .errors import MakemoreError
from .models import Model
from .models.base import shapes_only

LOGITS_BUDGET = 1 << 24  # logits (float32) held at once: 64 MB
CHUNK_TOKENS = 1 << 14  # tokens per forward pass: larger chunks measured slower on CPU (allocation)
CHUNK_BUDGET = 1 << 28  # bytes of one chunk (its input, activations, logits and loss): 256 MB
# per input token, besides the model's activations: a window's gather (data.Windows: positions, masks,
# the token ids) or a row's padding and packing (data.pack), measured at ~35 bytes
INDEX_BYTES = 48
PROBE_ROWS = 64  # rows of the shapes-only forward pass that measures the activations per row
PROBE_WIDTH = 64  # its widest row for a sequence model (wider ones are extrapolated)


class _Peak(TorchDispatchMode):
    """The most bytes that tensors made by the operations under it held at once (views and in-place
    results share their input's memory and are not counted; a tensor counts until it is freed)."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps a mode's __torch_dispatch__ in dynamo.disable, which imports the compiler (1.1 s
        # added to every `eval` and `score`); this mode never runs under torch.compile
        return False

    def _free(self, n: int) -> None:
        self.live -= n

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if all(r.alias_info is None for r in func._schema.returns):
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    n = t.numel() * t.element_size()
                    self.live += n
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(t, self._free, n)
        return out


def forward_bytes(model: Model, rows: int, width: int, grad: bool = False) -> int:
    """Peak bytes of the activations of one forward pass over a (rows, width) batch (with `grad`,
    what autograd keeps for backward), measured on a shapes-only copy of the model: nothing is
    allocated, whatever the sizes. A model that repeats a block many times (config fields marked
    `repeats`) is measured with two and three blocks and extrapolated: each block adds the same."""
    if not grad and model.device.type == "cpu":  # a model with its weights: a small real pass measures it
        return _measure_real(model, rows, width)
    config = model.config
    repeated = [f.name for f in fields(config) if f.metadata.get("repeats") and getattr(config, f.name) > 3]
    if not repeated:
        return _measure(type(model), config, rows, width, grad)
    two, three = (
        _measure(type(model), replace(config, **dict.fromkeys(repeated, n)), rows, width, grad) for n in (2, 3)
    )
    blocks = max(getattr(config, name) for name in repeated)
    return three + (blocks - 3) * max(0, three - two)


def _measure(cls: type[Model], config, rows: int, width: int, grad: bool) -> int:
    with shapes_only():
        shapes = cls(config)
    shapes.train(grad)
    with torch.set_grad_enabled(grad), _Peak() as peak:
        shapes(torch.zeros(rows, width, dtype=torch.long, device="meta"))
    return peak.peak


def _measure_real(model: Model, rows: int, width: int) -> int:
    """forward_bytes of a model that has its weights, measured on it in eval mode: on the CPU, a shapes-only
    pass would take meta kernels that import torch's compiler (a second added to `eval` and `score`)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _Peak() as peak:
            model(torch.zeros(rows, width, dtype=torch.long))
    finally:
        model.train(was_training)
    return peak.peak


def chunk_plan(model: Model) -> tuple[int, int]:
    """(the size `spans` is given, the bytes of the largest chunk evaluation takes). A window model's
    chunks count examples, each context_size + 1 tokens; a sequence model's count tokens of padded
    rows (at least one row). Both stay under CHUNK_BUDGET, unless one example alone exceeds it."""
    width, vocab = model.input_width, model.config.vocab_size
    windows = model.tokens_per_example == 1  # one prediction per example: a window model
    per_row = _row_bytes(model, width)
    if windows:  # per example: its gather, activations, logits and their loss
        per = (width + 1) * INDEX_BYTES + per_row + 2 * 4 * vocab
    else:  # per token of a full-width row: attention makes the widest rows the costliest per token
        per = INDEX_BYTES + per_row / width + 2 * 4 * vocab
    size = max(1, min(CHUNK_TOKENS, LOGITS_BUDGET // vocab, int(CHUNK_BUDGET // per)))
    rows_at_least = 1 if windows else width  # a chunk holds at least one example
    return size, math.ceil(max(size, rows_at_least) * per)


_measured: dict = {}  # (model type, config, width) -> _row_bytes: a process evaluates few models


def _row_bytes(model: Model, width: int) -> float:
    """Activation bytes of one example of `width` tokens. A sequence model's rows wider than
    PROBE_WIDTH are extrapolated from three narrower ones (exact for costs quadratic in the width,
    as attention's): a recurrent model's shapes-only pass still takes an operation per position."""
    key = (type(model), repr(model.config), width)
    if key in _measured:
        return _measured[key]
    if model.tokens_per_example == 1 or width <= PROBE_WIDTH:
        measured = forward_bytes(model, PROBE_ROWS, width) / PROBE_ROWS
    else:
        w = [PROBE_WIDTH // 4, PROBE_WIDTH // 2, PROBE_WIDTH]
        y = [forward_bytes(model, PROBE_ROWS, x) / PROBE_ROWS for x in w]
        c = ((y[2] - y[1]) / (w[2] - w[1]) - (y[1] - y[0]) / (w[1] - w[0])) / (w[2] - w[0])
        b = (y[1] - y[0]) / (w[1] - w[0]) - c * (w[0] + w[1])
        a = y[0] - b * w[0] - c * w[0] ** 2
        measured = max(a + b * width + c * width**2, y[2] * width / w[2])
    if len(_measured) > 64:
        _measured.clear()
    _measured[key] = measured
    return measured


def _chunks(model: Model, examples: Rows | Windows, rows: slice = slice(None)):
    """(logits, targets) of the examples (those in `rows`), in chunks of bounded memory (chunk_plan)."""
    tokens, _ = chunk_plan(model)
    for a, b in examples.spans(tokens, rows):
        # packed where the model packs: whole items back to back, in order, the same logits, less padding
        X, Y, pos = model.shape_batch(*examples[a:b], packed=True, in_order=True)
        logits = model(X.to(model.device)) if pos is None else model(X.to(model.device), pos.to(model.device))
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
def target_nlls(model: Model, examples: Rows | Windows) -> torch.Tensor:
    """The NLL of every target of the examples (no padding), item after item: each item's
    characters, then its end token."""
    was_training = model.training
    model.eval()
    nll = [
        F.cross_entropy(logits.float(), y, ignore_index=IGNORE, reduction="none")[y != IGNORE].cpu()
        for logits, y in _chunks(model, examples)
    ]
    model.train(was_training)
    return torch.cat(nll) if nll else torch.zeros(0)


def item_nlls(model: Model, examples: Rows | Windows) -> torch.Tensor:
    """Each item's NLL (float64), summed over its characters and end token, in the split's order."""
    return per_item(target_nlls(model, examples), examples.split)


def per_item(nlls: torch.Tensor, split: Split) -> torch.Tensor:
    """The NLL of every target of a split's items (target_nlls' order) summed per item, in float64."""
    ends = (split.offsets[1:] - split.offsets[0]) + torch.arange(1, len(split) + 1)  # + one end token each
    running = torch.cat([torch.zeros(1, dtype=torch.float64), nlls.double().cumsum(0)])
    return running[ends] - running[torch.cat([ends.new_zeros(1), ends[:-1]])]


# --- makemore.py's test loss, for comparison with the figures it prints --------------------------------
MAKEMORE_BATCH = 100  # makemore.py evaluates with evaluate(model, dataset, batch_size=100, max_batches=10)
MAKEMORE_MAX_BATCHES = 10
MAKEMORE_EVAL_SEED = 3407  # makemore.py's default --seed (its loader's order comes from the global stream)


def makemore_batches(n: int, seed: int) -> list[torch.Tensor]:
    """The items makemore.py's evaluate reads from a split of n: a random order (its DataLoader's
    shuffle; here a generator seeded with `seed`) cut into batches of 100, the last one shorter. Its
    loop breaks after the batch whose index reaches max_batches, so it reads up to 11 batches (1,100
    items): a split of 1,000 items, its test split, is read whole, in 10 batches."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return list(order[: (MAKEMORE_MAX_BATCHES + 1) * MAKEMORE_BATCH].split(MAKEMORE_BATCH))


def makemore_nll(item_nll: Callable[[Split], torch.Tensor], split: Split, seed: int = MAKEMORE_EVAL_SEED) -> float:
    """makemore.py's figure for a split: the mean, over its batches (makemore_batches), of each batch's
    mean NLL over the batch's targets (every character and the end token). A batch of short items
    has few targets, yet weighs as much as any other: the whole-split NLL weighs every target alike.
    item_nll: each item's summed NLL (float64) of a split, as item_nlls gives it. nan for an empty split."""
    batches = makemore_batches(len(split), seed)
    if not batches:
        return math.nan
    drawn = split.take(torch.cat(batches))
    sizes = [len(b) for b in batches]
    nlls, targets = item_nll(drawn).split(sizes), (drawn.offsets.diff() + 1).double().split(sizes)
    return torch.stack([n.sum() / t.sum() for n, t in zip(nlls, targets)]).mean().item()


def model_item_nlls(model: Model) -> Callable[[Split], torch.Tensor]:
    """item_nlls of one model, as makemore_nll takes it."""
    return lambda split: item_nlls(model, model.examples(split))


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


@torch.no_grad()
def score_text(model: Model, vocab: Vocab, texts: list[str]) -> list[dict]:
    """Text mode: the NLL of each text's characters after its first, each seen as evaluation sees the
    split's (the characters before it in its block, or the window model's context)."""
    model.eval()
    results = []
    for text in texts:
        examples = model.examples(Split.of([text], vocab, text=True))
        nll = torch.cat(
            [
                F.cross_entropy(logits.float(), y, ignore_index=IGNORE, reduction="none")[y != IGNORE].cpu()
                for logits, y in _chunks(model, examples)
            ]
        ).tolist()
        total = sum(nll)
        results.append(
            {"item": text, "nll": total, "nll_per_char": total / len(nll), "chars": list(zip(text[1:], nll))}
        )
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
