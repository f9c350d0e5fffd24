"""Items, vocabulary, the 80/10/10 split and the tensors every model trains on.

An item is one line of the input file. Each item becomes a sequence of predictions:
for "emma" the model sees <b> and must say e, sees <b>e and must say m, ... and after
the final a it must say <b> again. So an item of n characters gives n + 1 examples.
"""

from __future__ import annotations

import os
import random
import stat
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import MakemoreError

BOUNDARY = 0  # token id of the start/end marker; never a data character
BOUNDARY_SHOWN = "."  # how the boundary prints in tables of bigrams
IGNORE = -1  # target value for padding: contributes nothing to loss or metric
SPLIT_SEED = 42  # the lectures' split; fixed so results compare across runs and models
DEFAULT_MAX_ITEM_LEN = 1000
READ_CHUNK = 1 << 24  # bytes of input read at a time
ITEM_LEN_LIMIT = 100_000  # longest item any model reads or samples: bounds time and memory per item
MAX_VOCAB = 10_000  # output layers and logits grow with V; beyond this the input is not "characters of items"


def bundled_names() -> Path:
    """Path of the names.txt shipped inside the package (32,033 US first names)."""
    return Path(str(resources.files("makemore") / "data" / "names.txt"))


def read_items(path: str | os.PathLike, max_item_len: int = DEFAULT_MAX_ITEM_LEN) -> tuple[list[str], int]:
    """Read one item per line. Returns (items, number skipped for exceeding max_item_len).

    The file is read in chunks of whole lines, so a binary or broken file is reported at its first
    bad byte without reading the rest, and a line far too long to be an item is never held whole."""
    path = Path(path)
    if not 1 <= max_item_len <= ITEM_LEN_LIMIT:
        raise MakemoreError(f"--max-item-len must be in [1, {ITEM_LEN_LIMIT:,}], got {max_item_len}")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise MakemoreError(f"input file not found: {path}") from None
    except OSError as e:
        raise MakemoreError(f"cannot read input file {path}: {e.strerror}") from None
    if not stat.S_ISREG(mode):  # a FIFO would block forever, a directory cannot be read
        raise MakemoreError(f"input is not a regular file: {path}")
    items, skipped = [], 0
    try:
        with open(path, "rb") as f:
            for offset, lines in _line_chunks(f, path, max_item_len):
                if lines is None:
                    skipped += 1
                    continue
                if offset == 0 and lines.startswith(b"\xef\xbb\xbf"):  # a BOM is not part of the first item
                    lines, offset = lines[3:], 3
                try:
                    text = lines.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise MakemoreError(
                        f"input file {path} is not valid UTF-8 (byte offset {offset + e.start})"
                    ) from None
                for line in text.split("\n"):
                    item = line.strip()
                    if len(item) > max_item_len:
                        skipped += 1
                    elif item:
                        items.append(item)
    except OSError as e:
        raise MakemoreError(f"cannot read input file {path}: {e.strerror}") from None
    if not items:
        why = f" (all {skipped} longer than --max-item-len {max_item_len})" if skipped else ""
        raise MakemoreError(f"input file {path} has no items{why}")
    return items, skipped


def _line_chunks(f, path: Path, max_item_len: int):
    """(byte offset, bytes) of whole lines, about `chunk` bytes at a time. A NUL byte stops the read.
    A line longer than any item could be (4 bytes per character, plus room for surrounding
    whitespace) is dropped as it streams by, reported as (offset, None)."""
    longest = 4 * max_item_len + (1 << 20)
    pending, start, offset, dropping = b"", 0, 0, False
    while block := f.read(READ_CHUNK):
        if (nul := block.find(0)) >= 0:
            raise MakemoreError(f"input file {path} contains NUL bytes at offset {offset + nul}; is it a binary file?")
        offset += len(block)
        if dropping:  # inside an overlong line: skip to its end
            end = block.find(b"\n")
            if end < 0:
                continue
            dropping, block, start = False, block[end + 1 :], offset - len(block) + end + 1
        pending += block
        cut = pending.rfind(b"\n") + 1
        if cut:
            yield start, pending[:cut]
            pending, start = pending[cut:], start + cut
        if len(pending) > longest:
            yield start, None
            pending, dropping = b"", True
    if pending and not dropping:
        yield start, pending


@dataclass(frozen=True)
class Vocab:
    """Token 0 is the boundary; data characters follow in sorted order from id 1."""

    chars: tuple[str, ...]

    @classmethod
    def from_items(cls, items: list[str]) -> Vocab:
        return cls(tuple(sorted(set("".join(items)))))

    def __post_init__(self):
        object.__setattr__(self, "_stoi", {c: i + 1 for i, c in enumerate(self.chars)})

    def __len__(self) -> int:
        return len(self.chars) + 1

    def encode(self, item: str) -> list[int]:
        unknown = sorted(set(item) - self._stoi.keys())
        if unknown:
            shown = ", ".join(repr(c) for c in unknown)
            shown_item = repr(item) if len(item) <= 40 else repr(item[:40])[:-1] + "...'"
            raise MakemoreError(f"{shown_item} contains characters not in the vocabulary: {shown}")
        return [self._stoi[c] for c in item]

    def decode(self, ids) -> str:
        return "".join(self.chars[i - 1] for i in ids if i != BOUNDARY)

    def show(self, i: int) -> str:
        return BOUNDARY_SHOWN if i == BOUNDARY else self.chars[i - 1]


def split_items(items: list[str]) -> dict[str, list[str]]:
    """The lectures' split: shuffle with seed 42, then 80% / 10% / 10% by item."""
    items = list(items)
    random.Random(SPLIT_SEED).shuffle(items)
    n1, n2 = int(0.8 * len(items)), int(0.9 * len(items))
    return {"train": items[:n1], "dev": items[n1:n2], "test": items[n2:]}


def encode_sequences(items: list[str], vocab: Vocab, length: int | None = None):
    """Pad items into (X, Y): X[i] = <b> c1..cn <b>.., Y[i] = c1..cn <b> -1.. (shifted by one)."""
    length = length or max(len(s) for s in items) + 1
    X = torch.zeros(len(items), length, dtype=torch.long)
    Y = torch.full((len(items), length), IGNORE, dtype=torch.long)
    for i, item in enumerate(items):
        ids = vocab.encode(item)[: length - 1]
        X[i, 1 : len(ids) + 1] = torch.tensor(ids, dtype=torch.long)
        Y[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        Y[i, len(ids)] = BOUNDARY
    return X, Y


def windows_of(X: torch.Tensor, context_size: int) -> torch.Tensor:
    """(B, T) token rows -> (B, T, context_size): the context_size tokens ending at each position.

    Before the start of an item the context is boundary tokens, as in the lectures' `[0] * block_size`.
    """
    padded = F.pad(X, (context_size - 1, 0), value=BOUNDARY)
    return padded.unfold(1, context_size, 1)


def encode_windows(X: torch.Tensor, Y: torch.Tensor, context_size: int):
    """One (context, target) example per predicted character; padding positions dropped."""
    keep = Y != IGNORE
    return windows_of(X, context_size)[keep].contiguous(), Y[keep].contiguous()


def pack(X: torch.Tensor, Y: torch.Tensor, width: int):
    """Padded items (B, T) -> rows (R, width) that hold several whole items back to back, and
    pos (R, width), each token's position inside its item. A random batch of names is padded to
    ~11 tokens for ~7 real ones; packed rows are ~90% real tokens, and compute is per token.

    Rows are filled first-fit, longest item first. The slots left over at the end of a row hold
    the boundary with position 0 and target IGNORE, so each is an empty item of its own."""
    lengths = (Y != IGNORE).sum(1).cpu()
    free, start = [], [0] * len(lengths)  # room left in each row; first slot of each item
    n_of = lengths.tolist()
    if max(n_of) > width:
        raise MakemoreError(f"an item of {max(n_of)} tokens does not fit a packed row of {width}")
    for i in sorted(range(len(n_of)), key=lambda i: -n_of[i]):
        n = n_of[i]
        row = next((r for r, room in enumerate(free) if room >= n), len(free))
        if row == len(free):
            free.append(width)
        start[i] = row * width + width - free[row]
        free[row] -= n
    item = torch.repeat_interleave(torch.arange(len(lengths)), lengths)  # the item of each real token
    offset = torch.arange(len(item)) - torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    slot = torch.repeat_interleave(torch.tensor(start), lengths) + offset
    item, offset, slot = item.to(X.device), offset.to(X.device), slot.to(X.device)
    Xp = torch.full((len(free) * width,), BOUNDARY, dtype=X.dtype, device=X.device)
    Yp = torch.full_like(Xp, IGNORE)
    pos = torch.zeros_like(Xp)
    Xp[slot], Yp[slot], pos[slot] = X[item, offset], Y[item, offset], offset
    return Xp.view(-1, width), Yp.view(-1, width), pos.view(-1, width)


class Dataset:
    """Items, vocabulary and split of one input file, encoded once into tensors."""

    def __init__(self, items: list[str], vocab: Vocab | None = None):
        self.items = items
        self.vocab = vocab or Vocab.from_items(items)
        if len(self.vocab) > MAX_VOCAB:
            raise MakemoreError(
                f"the input has {len(self.vocab) - 1:,} distinct characters; makemore handles at most {MAX_VOCAB - 1:,}"
            )
        self.splits = split_items(items)
        if not self.splits["train"]:
            raise MakemoreError(
                f"{len(items)} item(s) leave nothing for training after the 80/10/10 split; give at least 2"
            )
        self.max_len = max(len(s) for s in items)
        self._membership = {}
        for name in ("test", "dev", "train"):  # train wins if an item is duplicated across splits
            self._membership.update(dict.fromkeys(self.splits[name], name))
        self._cache = {}

    def sequences(self, split: str):
        """Items padded to the longest item of the file: (X, Y), each (items, max_len + 1)."""
        key = (split, "seq")
        if key not in self._cache:
            self._cache[key] = encode_sequences(self.splits[split], self.vocab, self.max_len + 1)
        return self._cache[key]

    def windows(self, split: str, context_size: int):
        """One (context, target) example per predicted character: (X (N, context_size), Y (N,))."""
        key = (split, "win", context_size)
        if key not in self._cache:
            self._cache[key] = encode_windows(*self.sequences(split), context_size)
        return self._cache[key]

    def membership(self, item: str) -> str:
        """Which split an item appears in, or 'new'."""
        return self._membership.get(item, "new")
