"""Items, vocabulary, the 80/10/10 split and the examples every model trains on.

An item is one line of the input file. Each item becomes a sequence of predictions:
for "emma" the model sees <b> and must say e, sees <b>e and must say m, ... and after
the final a it must say <b> again. So an item of n characters gives n + 1 examples.

In text mode (the "Let's build GPT" lecture) the file is instead one stream of characters, line
breaks included: the first 90% of them train, the last 10% are the dev split, and there is no
test split. Every character after a split's first is predicted once, from the characters before
it: a window model's context, or for a sequence model those since its block of `block_size`
characters began (Blocks).

A data set is held as one flat array of token ids, its items back to back in split order
(train, dev, test), and the offset where each item starts: one or two bytes per character and
no padding. Batches are cut from it when they are drawn: a window model's windows, or a
sequence model's rows padded to the longest item of the batch.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from .errors import MakemoreError
from .files import file_kind
from .shuffle import shuffled_indices

BOUNDARY = 0  # token id of the start/end marker; never a data character
BOUNDARY_SHOWN = "."  # how the boundary prints in tables of bigrams
IGNORE = -1  # target value for padding: contributes nothing to loss or metric
SPLIT_SEED = 42  # the lectures' split; fixed so results compare across runs and models
SPLITS = ("train", "dev", "test")
# how the items are split (train --split): the lectures' 80/10/10, or the convention of Karpathy's makemore.py
LECTURES, MAKEMORE_PY = "lectures", "makemore"
SPLIT_RULES = (LECTURES, MAKEMORE_PY)
MAKEMORE_SEED = 3407  # makemore.py's default --seed: its first draw after torch.manual_seed is the split's randperm
MAKEMORE_TEST = 1000  # makemore.py's test split: the last min(1000, int(0.1 n)) items of that permutation
DEFAULT_MAX_ITEM_LEN = 1000
READ_CHUNK = 1 << 24  # bytes of input read at a time
ENCODE_CHUNK = 1 << 22  # bytes of whole lines encoded at a time: ~40 bytes of arrays per byte
ITEM_LEN_LIMIT = 100_000  # longest item any model reads or samples: bounds time and memory per item
MAX_VOCAB = 10_000  # output layers and logits grow with V; beyond this the input is not "characters of items"
GATHER_ITEMS = 1 << 20  # items reordered (or hashed) at a time: bounds the index arrays' memory
CACHE_FORMAT = "makemore-data-1"
TEXT_TRAIN = 0.9  # text mode: the first 90% of the characters train, the rest is the dev split (the lecture's)
TEXT_BLOCK = 8  # text mode: characters a sequence model reads at once, unless --block-size says (the lecture's first)
RUN_FILES_ONLY = "makemore reads only regular files in a run directory"


def bundled_names() -> Path:
    """Path of the names.txt shipped inside the package (32,033 US first names)."""
    return Path(str(resources.files("makemore") / "data" / "names.txt"))


def bundled_text() -> Path:
    """Path of the Tiny Shakespeare shipped inside the package (1,115,394 characters, public domain):
    the text of the "Let's build GPT" lecture, text mode's default input."""
    return Path(str(resources.files("makemore") / "data" / "tinyshakespeare.txt"))


def shown(text: str) -> str:
    """Text from files, flags or a model as a terminal should print it: control characters (escape
    sequences, carriage returns, bells) escaped as Python writes them, so an item, a run's name or a
    forged field cannot rewrite the screen. The one helper for items and names printed to a terminal."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def open_regular(path: str | os.PathLike, run_file: bool = False):
    """A file opened for reading (binary) that is a regular file. It is opened with O_NONBLOCK, so a
    FIFO is not waited on, and checked once open (fstat), so what is read is what was checked.
    run_file: a file of a run directory, opened with O_NOFOLLOW too (makemore writes only regular
    files there, so a link was planted); anything else there is refused with RUN_FILES_ONLY. A
    missing file raises FileNotFoundError, for the caller to say what it means."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (os.O_NOFOLLOW if run_file else 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as e:
        if run_file and e.errno == errno.ELOOP:
            raise MakemoreError(f"{path} is a symbolic link; {RUN_FILES_ONLY}") from None
        raise MakemoreError(f"cannot read {path}: {e.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = file_kind(mode)
        if run_file:
            raise MakemoreError(f"{path} is not a regular file ({kind}); {RUN_FILES_ONLY}")
        raise MakemoreError(f"input is not a regular file ({kind}): {path}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


# --- reading: whole lines in chunks, items found with array operations ---------------------------
def _check_input(path: Path, max_item_len: int, run_file: bool = False) -> None:
    """The flag, and a first look at the -i file (a run's own input.txt is looked at once open only)."""
    if not 1 <= max_item_len <= ITEM_LEN_LIMIT:
        raise MakemoreError(f"--max-item-len must be in [1, {ITEM_LEN_LIMIT:,}], got {max_item_len}")
    if run_file:
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise MakemoreError(f"input file not found: {path}") from None
    except OSError as e:
        raise MakemoreError(f"cannot read input file {path}: {e.strerror}") from None
    if not stat.S_ISREG(mode):  # a FIFO would block forever, a directory cannot be read
        raise MakemoreError(f"input is not a regular file: {path}")


def _line_chunks(f, path: Path, max_item_len: int, digest=None):
    """(byte offset, bytes) of whole lines, about READ_CHUNK bytes at a time. A NUL byte stops the
    read. A line longer than any item could be (4 bytes per character, plus room for surrounding
    whitespace) is dropped as it streams by, reported as (offset, None). Every byte read goes
    into `digest` (a hashlib object), so the file is hashed in the same pass."""
    longest = 4 * max_item_len + (1 << 20)
    pending, start, offset, dropping = b"", 0, 0, False
    while block := f.read(READ_CHUNK):
        if digest is not None:
            digest.update(block)
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
            yield from _pieces(start, pending[:cut])
            pending, start = pending[cut:], start + cut
        if len(pending) > longest:
            yield start, None
            pending, dropping = b"", True
    if pending and not dropping:
        yield start, pending


def _pieces(start: int, lines: bytes):
    """Whole lines cut into pieces of about ENCODE_CHUNK bytes, which bound the arrays built per piece."""
    while len(lines) > ENCODE_CHUNK:
        cut = lines.rfind(b"\n", 0, ENCODE_CHUNK) + 1 or lines.find(b"\n", ENCODE_CHUNK) + 1 or len(lines)
        yield start, lines[:cut]
        lines, start = lines[cut:], start + cut
    yield start, lines


@cache
def _whitespace() -> np.ndarray:
    """Which code points str.strip() removes; U+3000 is the last whitespace code point, so
    anything above maps to the table's final, False entry."""
    return np.array([chr(c).isspace() for c in range(0x3001)] + [False])


def _items_in(text: str, max_item_len: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The items of whole lines of text, as str.strip() of each line finds them, without a loop
    over lines: (code points of the kept items back to back, their lengths, lines too long)."""
    cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if not len(cp):
        return cp, np.zeros(0, dtype=np.int64), 0
    space = _whitespace()
    breaks = np.flatnonzero(cp == 10)
    first = np.concatenate(([0], breaks + 1))  # each line's span [first, last]
    last = np.concatenate((breaks, [len(cp)])) - 1
    ends = np.minimum(np.stack([first, last]), len(cp) - 1)
    padded = (last >= first) & space[np.minimum(cp[ends], 0x3001)].any(0)  # whitespace to strip
    if padded.any():  # most files have none: only these lines need the positions of their solid characters
        solid = np.append(np.flatnonzero(~space[np.minimum(cp, 0x3001)]), len(cp))  # "\n" is whitespace too
        lo, hi = np.searchsorted(solid, first[padded]), np.searchsorted(solid, last[padded] + 1)
        blank = hi == lo
        first[padded] = np.where(blank, 1, solid[np.minimum(lo, len(solid) - 1)])
        last[padded] = np.where(blank, 0, solid[hi - 1])
    length = last - first + 1
    too_long = length > max_item_len
    keep = (length > 0) & ~too_long
    inside = np.zeros(len(cp) + 1, dtype=np.int8)  # +1 where a kept item starts, -1 after it ends
    inside[first[keep]], inside[last[keep] + 1] = 1, -1
    return cp[np.cumsum(inside[:-1], dtype=np.int8).view(bool)], length[keep], int(too_long.sum())


def _read(path: Path, max_item_len: int, digest=None, run_file: bool = False):
    """(code points, lengths, skipped) of each chunk of items in the file, in file order."""
    try:
        with open_regular(path, run_file) as f:
            for offset, lines in _line_chunks(f, path, max_item_len, digest):
                if lines is None:
                    yield np.zeros(0, np.uint32), np.zeros(0, np.int64), 1
                    continue
                if offset == 0 and lines.startswith(b"\xef\xbb\xbf"):  # a BOM is not part of the first item
                    lines, offset = lines[3:], 3
                try:
                    text = lines.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise MakemoreError(
                        f"input file {path} is not valid UTF-8 (byte offset {offset + e.start})"
                    ) from None
                yield _items_in(text, max_item_len)
    except OSError as e:
        raise MakemoreError(f"cannot read input file {path}: {e.strerror}") from None


def _text_chunks(path: Path, digest, run_file: bool = False):
    """Text mode: the file's code points, about READ_CHUNK bytes at a time, every character kept (line
    breaks and spaces too); a BOM at the start is not text. Every byte read goes into `digest`."""
    decoder, offset = codecs.getincrementaldecoder("utf-8")(), 0
    try:
        with open_regular(path, run_file) as f:
            while True:
                block = f.read(READ_CHUNK)
                digest.update(block)
                if (nul := block.find(0)) >= 0:
                    raise MakemoreError(
                        f"input file {path} contains NUL bytes at offset {offset + nul}; is it a binary file?"
                    )
                held = len(decoder.getstate()[0])  # bytes of a character cut at the last block's end
                try:
                    text = decoder.decode(block, final=not block)
                except UnicodeDecodeError as e:
                    raise MakemoreError(
                        f"input file {path} is not valid UTF-8 (byte offset {offset - held + e.start})"
                    ) from None
                if offset == 0 and text.startswith("\ufeff"):
                    text = text[1:]
                offset += len(block)
                if text:
                    yield np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
                if not block:
                    return
    except OSError as e:
        raise MakemoreError(f"cannot read input file {path}: {e.strerror}") from None


def _no_items(path, skipped: int, max_item_len: int) -> MakemoreError:
    why = f" (all {skipped} longer than --max-item-len {max_item_len})" if skipped else ""
    return MakemoreError(f"input file {path} has no items{why}")


def read_items(path: str | os.PathLike, max_item_len: int = DEFAULT_MAX_ITEM_LEN) -> tuple[list[str], int]:
    """Read one item per line, stripped of surrounding whitespace; blank lines are not items.
    Returns (items, number skipped for exceeding max_item_len).

    The file is read in chunks of whole lines, so a binary or broken file is reported at its first
    bad byte without reading the rest, and a line far too long to be an item is never held whole."""
    path = Path(path)
    _check_input(path, max_item_len)
    items, skipped = [], 0
    for cp, lengths, n_skipped in _read(path, max_item_len):
        items += _strings(cp, lengths)
        skipped += n_skipped
    if not items:
        raise _no_items(path, skipped, max_item_len)
    return items, skipped


def _strings(cp: np.ndarray, lengths: np.ndarray) -> list[str]:
    text = cp.astype(np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    ends = np.cumsum(lengths).tolist()
    return [text[a:b] for a, b in zip([0] + ends[:-1], ends)]


# --- vocabulary --------------------------------------------------------------------------------
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
        try:
            return [self._stoi[c] for c in item]
        except KeyError:
            shown = ", ".join(repr(c) for c in sorted(set(item) - self._stoi.keys()))
            shown_item = repr(item) if len(item) <= 40 else repr(item[:40])[:-1] + "...'"
            raise MakemoreError(f"{shown_item} contains characters not in the vocabulary: {shown}") from None

    def decode(self, ids) -> str:
        return "".join(self.chars[i - 1] for i in ids if i != BOUNDARY)

    def show(self, i: int) -> str:
        return BOUNDARY_SHOWN if i == BOUNDARY else self.chars[i - 1]

    @property
    def dtype(self) -> np.dtype:
        """The smallest integer type that holds every token id."""
        return np.dtype(np.uint8) if len(self) <= 256 else np.dtype(np.int16)


class _Encoder:
    """Code points -> token ids through a table over all of Unicode. Without a given vocabulary,
    characters get provisional ids as they first appear (vocab() then tells the final, sorted ones)."""

    def __init__(self, vocab: Vocab | None = None):
        self.ids = np.full(0x110000, -1, dtype=np.int32)
        self.codes: list[int] = []  # code points in order of first appearance
        self.fixed = vocab
        if vocab is not None:
            self._add(np.array([ord(c) for c in vocab.chars], dtype=np.uint32))

    def _add(self, codes: np.ndarray) -> None:
        if len(self.codes) + len(codes) >= MAX_VOCAB:
            raise MakemoreError(
                f"the input has more than {MAX_VOCAB - 1:,} distinct characters; makemore handles at most "
                f"{MAX_VOCAB - 1:,}"
            )
        self.ids[codes] = np.arange(len(self.codes), len(self.codes) + len(codes))
        self.codes += codes.tolist()

    def __call__(self, cp: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        ids = self.ids[cp]
        if (ids < 0).any():
            if self.fixed is not None:  # the first item with an unknown character says which
                first = np.searchsorted(np.cumsum(lengths), np.argmax(ids < 0), side="right")
                start = int(lengths[:first].sum())
                self.fixed.encode(_strings(cp[start : start + lengths[first]], lengths[first : first + 1])[0])
            self._add(np.unique(cp[ids < 0]))
            ids = self.ids[cp]
        return ids.astype(np.uint16)

    def vocab(self) -> tuple[Vocab, np.ndarray]:
        """The vocabulary, and the table from provisional ids to token ids."""
        codes = np.array(self.codes, dtype=np.int64)
        token = np.empty(len(codes), dtype=np.int64)
        token[np.argsort(codes)] = np.arange(1, len(codes) + 1)
        return Vocab(tuple(chr(c) for c in sorted(self.codes))), token


# --- one split: the examples of its items ----------------------------------------------------------
@dataclass
class Split:
    """The items of one split: their token ids back to back, and where each item starts
    (offsets has one more entry than there are items)."""

    tokens: torch.Tensor
    offsets: torch.Tensor
    text: bool = False  # text mode: one stream of characters (its one "item"), not items

    @classmethod
    def of(cls, items: list[str], vocab: Vocab, text: bool = False) -> Split:
        """A few items given as strings (scoring, tests); text: one string, as a stream of characters."""
        ids = [vocab.encode(item) for item in items]
        offsets = np.concatenate(([0], np.cumsum([len(i) for i in ids], dtype=np.int64)))
        tokens = np.array([t for item in ids for t in item], dtype=vocab.dtype)
        return cls(torch.from_numpy(tokens), torch.from_numpy(offsets), text)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def bounds(self, ix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Where items ix start in the flat array, and their lengths."""
        start = self.offsets[ix]
        return start, self.offsets[ix + 1] - start

    @property
    def targets(self) -> int:
        """Predicted characters: every character of every item, plus one end token each."""
        return int(self.offsets[-1] - self.offsets[0]) + len(self)

    def indices(self, ix: torch.Tensor | slice, n: int) -> torch.Tensor:
        """Example indices as a tensor on this split's device: a slice of n examples becomes a range."""
        if isinstance(ix, slice):
            return torch.arange(*ix.indices(n), device=self.offsets.device)
        return ix

    def to(self, device) -> Split:
        return Split(self.tokens.to(device), self.offsets.to(device), self.text)

    def take(self, ix: torch.Tensor) -> Split:
        """Items ix of this split, in that order (repeats allowed), as a split of their own."""
        start, length = self.bounds(ix)
        offsets = torch.zeros(len(ix) + 1, dtype=torch.int64)
        torch.cumsum(length, 0, out=offsets[1:])
        at = torch.from_numpy(_spans(start.numpy(), length.numpy())) if len(ix) else torch.zeros(0, dtype=torch.int64)
        return Split(self.tokens[at], offsets, self.text)

    def chars(self, at: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
        """Token ids (int64) at positions `at` of the flat array; BOUNDARY where `outside` an item."""
        last = max(len(self.tokens) - 1, 0)
        return self.tokens[at.clamp(0, last)].long().masked_fill_(outside, BOUNDARY)


class Rows:
    """A sequence model's examples: one row per item, X = <b> c1..cn, Y = c1..cn <b>, padded to
    the longest item of the batch (X with the boundary, Y with IGNORE)."""

    def __init__(self, split: Split):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, ix: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        ix = self.split.indices(ix, len(self))
        start, length = self.split.bounds(ix)
        T = int(length.max()) + 1 if len(ix) else 1
        t = torch.arange(T, device=start.device)
        chars = self.split.chars(start[:, None] + t, t >= length[:, None])  # the end boundary, then padding
        X = F.pad(chars[:, :-1], (1, 0), value=BOUNDARY)
        return X, chars.masked_fill_(t > length[:, None], IGNORE)

    def targets(self, ix: torch.Tensor) -> int:
        return int(self.split.bounds(ix)[1].sum()) + len(ix)

    def draws(self) -> Rows:
        """The examples training batches are drawn from: these ones."""
        return self

    def spans(self, tokens: int, rows: slice = slice(None)):
        """Consecutive (start, stop) ranges of rows whose padded batches hold at most `tokens`
        tokens (or a single row), halving a range until it fits."""
        width = self.split.offsets.diff() + 1
        todo = [rows.indices(len(self))[:2]]
        while todo:
            a, b = todo.pop()
            if a >= b:
                continue
            if b - a == 1 or (b - a) * int(width[a:b].max()) <= tokens:
                yield a, b
            else:
                todo += [((a + b) // 2, b), (a, (a + b) // 2)]  # the first half is taken next


class Windows:
    """A window model's examples: one per predicted character, its context the context_size
    tokens before it (boundary tokens before the item starts), in the order item after item."""

    def __init__(self, split: Split, context_size: int):
        self.split, self.context_size = split, context_size
        device = split.offsets.device
        self.first = split.offsets + torch.arange(len(split) + 1, device=device)  # each item's first example
        self.columns = torch.arange(-context_size, 1, device=device)  # the context, then the target

    def __len__(self) -> int:
        return self.split.targets

    def __getitem__(self, ex: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        # Few, large tensor operations: on CPU a batch's cost is mostly their number.
        ex = self.split.indices(ex, len(self))
        item = torch.searchsorted(self.first, ex, right=True) - 1
        at = (ex - item)[:, None] + self.columns  # flat positions: item i's examples are i positions on
        bounds = self.split.offsets.unfold(0, 2, 1)[item]  # (start, end) of each example's item
        outside = (at < bounds[:, :1]) | (at >= bounds[:, 1:])  # before the item: <b>; at its end: <b>
        tokens = self.split.chars(at, outside)
        return tokens[:, :-1], tokens[:, -1]

    def targets(self, ix: torch.Tensor) -> int:
        return len(ix)

    def draws(self) -> Windows:
        """The examples training batches are drawn from: these ones."""
        return self

    def spans(self, tokens: int, rows: slice = slice(None)):
        a, b = rows.indices(len(self))[:2]
        for start in range(a, b, tokens):
            yield start, min(b, start + tokens)


# --- text mode: one stream of characters -----------------------------------------------------------
class TextWindows(Windows):
    """A window model's examples in text mode: one per character after the split's first, its context
    the context_size characters before it (the boundary before the split starts)."""

    def __init__(self, split: Split, context_size: int):
        self.split, self.context_size = split, context_size
        self.columns = torch.arange(-context_size, 1, device=split.tokens.device)  # the context, then the target

    def __len__(self) -> int:
        return max(0, len(self.split.tokens) - 1)

    def __getitem__(self, ex: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        at = (self.split.indices(ex, len(self)) + 1)[:, None] + self.columns
        tokens = self.split.chars(at, at < 0)
        return tokens[:, :-1], tokens[:, -1]


class Blocks:
    """A sequence model's examples in text mode: windows of `width` characters of the stream, X =
    s[i : i + width] and Y = s[i + 1 : i + width + 1] (the lecture's get_batch). Example k is the
    block at k * width: the blocks tile the split, so evaluation predicts each character after the
    first once, from the characters since its block began. Training draws windows at every start
    (draws()), as the lecture does."""

    def __init__(self, split: Split, width: int, stride: int | None = None):
        self.split, self.width, self.stride = split, width, stride or width
        self.n = len(split.tokens)  # characters

    def __len__(self) -> int:
        return max(0, -(-(self.n - 1) // self.stride))  # blocks that predict at least one character

    def starts(self, ix: torch.Tensor | slice) -> torch.Tensor:
        return self.split.indices(ix, len(self)) * self.stride

    def __getitem__(self, ix: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        at = self.starts(ix)[:, None] + torch.arange(self.width + 1, device=self.split.tokens.device)
        past = at >= self.n  # beyond the end of the split: the last block is shorter
        chars = self.split.chars(at, past)
        return chars[:, :-1], chars[:, 1:].masked_fill(past[:, 1:], IGNORE)  # (X is a view of chars)

    def targets(self, ix: torch.Tensor) -> int:
        return int((self.n - 1 - self.starts(ix)).clamp(0, self.width).sum())

    def draws(self) -> Blocks:
        """Every window of `width` characters that the split holds whole, one per start (the lecture's
        torch.randint(len(data) - block_size)): training sees the text at every offset."""
        return _Starts(self.split, self.width)

    def spans(self, tokens: int, rows: slice = slice(None)):
        """Consecutive ranges of blocks of at most `tokens` tokens (at least one block)."""
        a, b = rows.indices(len(self))[:2]
        step = max(1, tokens // self.width)
        for start in range(a, b, step):
            yield start, min(b, start + step)


class _Starts(Blocks):
    """Windows at every start whose window the split holds whole (one at 0 in a split shorter than that)."""

    def __init__(self, split: Split, width: int):
        super().__init__(split, width, stride=1)

    def __len__(self) -> int:
        return max(1, self.n - self.width)


def pack(X: torch.Tensor, Y: torch.Tensor, width: int, in_order: bool = False):
    """Padded items (B, T) -> rows (R, width) that hold several whole items back to back, and
    pos (R, width), each token's position inside its item. A random batch of names is padded to
    ~11 tokens for ~7 real ones; packed rows are ~90% real tokens, and compute is per token.

    Rows are filled first-fit, longest item first; `in_order` keeps the items' order instead (the
    next row starts when an item does not fit), so that the targets read row after row are the
    items' targets one item after the other. The slots left over at the end of a row hold the
    boundary with position 0 and target IGNORE, so each is an empty item of its own."""
    lengths = (Y != IGNORE).sum(1).cpu()
    free, start = [], [0] * len(lengths)  # room left in each row; first slot of each item
    n_of = lengths.tolist()
    if max(n_of) > width:
        raise MakemoreError(f"an item of {max(n_of)} tokens does not fit a packed row of {width}")
    for i in range(len(n_of)) if in_order else sorted(range(len(n_of)), key=lambda i: -n_of[i]):
        n = n_of[i]
        if in_order:
            row = len(free) - 1 if free and free[-1] >= n else len(free)
        else:
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


def _spans(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions of the spans [start, start + length), back to back: a running sum of steps of
    1 that jump from the end of one span to the start of the next."""
    steps = np.ones(int(lengths.sum()), dtype=np.int64)
    steps[0] = starts[0]
    at = np.cumsum(lengths[:-1])
    steps[at] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    return np.cumsum(steps, out=steps)


# --- the data set: every item, in split order ----------------------------------------------------
def check_split_rule(rule: str) -> str:
    if rule not in SPLIT_RULES:
        raise MakemoreError(f"--split must be one of {', '.join(SPLIT_RULES)}, got {rule!r}")
    return rule


def split_sizes(n: int, rule: str = LECTURES) -> tuple[int, int, int]:
    """Items in train, dev and test. The lectures': 80% / 10% / 10%. makemore.py's: its test split, the
    last min(1000, int(0.1 n)) items, and a dev split of as many just before it, taken out of what
    makemore.py trains on, so that its test items stay unseen by training and by the choice of the best
    checkpoint (train then holds that many items fewer than makemore.py's)."""
    if check_split_rule(rule) == MAKEMORE_PY:
        k = min(MAKEMORE_TEST, int(n * 0.1))
        return n - 2 * k, k, k
    n1, n2 = int(0.8 * n), int(0.9 * n)
    return n1, n2 - n1, n - n2


def split_order(n: int, rule: str = LECTURES) -> np.ndarray:
    """The items' indices (in file order) in split order: train, dev, test. The lectures':
    random.Random(42).shuffle. makemore.py's: torch.randperm(n) as its first draw after
    torch.manual_seed(3407) (nothing draws between the two there), made here with a generator of
    its own seeded alike, so the global random state is left alone."""
    if check_split_rule(rule) == MAKEMORE_PY:
        return torch.randperm(n, generator=torch.Generator().manual_seed(MAKEMORE_SEED)).numpy()
    return shuffled_indices(n, SPLIT_SEED)


@dataclass
class Dataset:
    """One input file's items in split order: the lectures' split shuffles the items with
    random.Random(42) and takes 80% / 10% / 10% (or makemore.py's: split_order, split_sizes); here
    the permutation is applied to item indices, so the file's items are never held as Python strings."""

    vocab: Vocab
    tokens: torch.Tensor  # uint8 (int16 beyond 255 characters), every item back to back
    offsets: torch.Tensor  # int64, where each item starts, and the end
    sizes: tuple[int, int, int]  # items in train, dev, test
    skipped: int = 0  # lines longer than --max-item-len, left out
    sha256: str | None = None  # of the bytes the items were read from
    text: bool = False  # text mode: the "items" are the train and dev parts of one stream (read_text)
    rule: str = LECTURES  # how the items were split (SPLIT_RULES)
    _index: tuple | None = field(default=None, repr=False)  # membership: sorted item hashes

    @classmethod
    def read(
        cls,
        path: str | os.PathLike,
        max_item_len: int = DEFAULT_MAX_ITEM_LEN,
        vocab: Vocab | None = None,
        run_file: bool = False,
        rule: str = LECTURES,
    ):
        """Encode a file in one streaming pass (the vocabulary grows as characters appear, or is
        `vocab`), then put the items into split order (split by `rule`). run_file: a run directory's
        input.txt, read as open_regular reads run files (no link followed)."""
        path = Path(path)
        _check_input(path, max_item_len, run_file)
        check_split_rule(rule)
        encoder, digest = _Encoder(vocab), hashlib.sha256()
        ids, lengths, skipped = [], [], 0
        for cp, n, n_skipped in _read(path, max_item_len, digest, run_file):
            ids.append(encoder(cp, n))
            lengths.append(n)
            skipped += n_skipped
        lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        if not len(lengths):
            raise _no_items(path, skipped, max_item_len)
        ids = np.concatenate(ids)
        data = cls._in_split_order(ids, lengths, *encoder.vocab(), rule)
        data.skipped, data.sha256 = skipped, digest.hexdigest()
        return data

    @classmethod
    def read_text(cls, path: str | os.PathLike, vocab: Vocab | None = None, run_file: bool = False) -> Dataset:
        """Text mode: the file as one stream of characters in file order, line breaks included (the
        lecture's). The first 90% train; the last 10% are the dev split; there is no test split, so
        that the dev split is the lecture's validation data."""
        path = Path(path)
        _check_input(path, DEFAULT_MAX_ITEM_LEN, run_file)
        encoder, digest = _Encoder(vocab), hashlib.sha256()
        ids = [encoder(cp, np.array([len(cp)])) for cp in _text_chunks(path, digest, run_file)]
        ids = np.concatenate(ids) if ids else np.zeros(0, np.uint16)
        return cls.of_text(ids, *encoder.vocab(), digest.hexdigest(), f"input file {path}")

    @classmethod
    def from_text(cls, text: str, vocab: Vocab | None = None) -> Dataset:
        """A text-mode data set of a string; for tests and examples."""
        encoder = _Encoder(vocab)
        ids = encoder(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32), np.array([len(text)]))
        return cls.of_text(ids, *encoder.vocab(), None, "the text")

    @classmethod
    def of_text(cls, ids: np.ndarray, vocab: Vocab, token: np.ndarray, sha256: str | None, name) -> Dataset:
        n = len(ids)
        n_train = int(TEXT_TRAIN * n)
        if n - n_train < 2:  # the dev split predicts at least one character (so does train, then)
            least = next(k for k in range(n, 100) if k - int(TEXT_TRAIN * k) >= 2)
            raise MakemoreError(
                f"{name} has {n} character(s); text mode needs at least {least} "
                f"(the first {TEXT_TRAIN:.0%} train, the rest is the dev split)"
            )
        tokens = torch.from_numpy(token.astype(vocab.dtype)[ids])
        offsets = torch.tensor([0, n_train, n])
        return cls(vocab, tokens, offsets, (1, 1, 0), sha256=sha256, text=True)

    @classmethod
    def from_items(cls, items: list[str], vocab: Vocab | None = None, rule: str = LECTURES) -> Dataset:
        """A data set of items given as strings (one per line of a file); for tests and examples."""
        encoder = _Encoder(vocab)
        cp, lengths, _ = _items_in("\n".join(items), ITEM_LEN_LIMIT)
        if len(lengths) != len(items):
            raise MakemoreError("items must be non-empty lines without surrounding whitespace")
        return cls._in_split_order(encoder(cp, lengths), lengths, *encoder.vocab(), check_split_rule(rule))

    @classmethod
    def _in_split_order(
        cls, ids: np.ndarray, lengths: np.ndarray, vocab: Vocab, token: np.ndarray, rule: str
    ) -> Dataset:
        """Items (provisional ids, file order) -> token ids in split order, GATHER_ITEMS at a time."""
        sizes = split_sizes(len(lengths), rule)
        if not sizes[0]:  # (makemore.py's split always leaves some)
            raise MakemoreError(
                f"{len(lengths)} item(s) leave nothing for training after the 80/10/10 split (a single item goes "
                "to the test split); give at least 2"
            )
        order = split_order(len(lengths), rule)
        tokens = token.astype(vocab.dtype)[ids]  # final ids, still in file order
        starts = np.cumsum(lengths) - lengths
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths[order], out=offsets[1:])
        out = np.empty_like(tokens)
        for a in range(0, len(order), GATHER_ITEMS):
            b = min(a + GATHER_ITEMS, len(order))
            out[offsets[a] : offsets[b]] = tokens[_spans(starts[order[a:b]], lengths[order[a:b]])]
        return cls(vocab, torch.from_numpy(out), torch.from_numpy(offsets), sizes, rule=rule)

    # --- what the models see ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def max_len(self) -> int:
        """The longest item, in characters."""
        return int((self.offsets[1:] - self.offsets[:-1]).max())

    def split(self, name: str) -> Split:
        """The items of one split (views of the data set's arrays, no copy)."""
        i = SPLITS.index(name)
        a, b = sum(self.sizes[:i]), sum(self.sizes[: i + 1])
        start = self.offsets[a]
        return Split(self.tokens[start : self.offsets[b]], self.offsets[a : b + 1] - start, self.text)

    def summary(self) -> str:
        """How the data is split, in one line."""
        if self.text:
            train, dev = (int(n) for n in self.offsets.diff())
            return f"text: {train:,}/{dev:,} characters train/dev (the first {TEXT_TRAIN:.0%} and the rest; no test)"
        rule = " (makemore.py's split)" if self.rule == MAKEMORE_PY else ""
        return f"{self.sizes[0]}/{self.sizes[1]}/{self.sizes[2]} items train/dev/test{rule}"

    def items(self, name: str) -> list[str]:
        """One split's items as strings (small data sets: tests, examples)."""
        split = self.split(name)
        return [self.vocab.decode(split.tokens[a:b].tolist()) for a, b in zip(split.offsets, split.offsets[1:])]

    def same_items(self, other: Dataset) -> bool:
        return (
            self.vocab == other.vocab
            and self.sizes == other.sizes
            and torch.equal(self.offsets, other.offsets)
            and torch.equal(self.tokens, other.tokens)
            and self.text == other.text
            and self.rule == other.rule
        )

    # --- which split an item is in ------------------------------------------------------------------
    def membership(self, items: list[str]) -> list[str]:
        """The split each item appears in ('train' first if it is in several), or 'new'.

        Items are looked up by a 64-bit hash in a sorted array (16 bytes per item of the data
        set); a hash that matches is confirmed against the item's tokens, so the answer is exact."""
        if self._index is None:
            hashes = _item_hashes(self.tokens.numpy(), self.offsets.numpy())
            order = np.argsort(hashes, kind="stable")  # equal items keep split order: train first
            self._index = (hashes[order], order)
        chars = set(self.vocab.chars)
        known = list(dict.fromkeys(item for item in items if item and set(item) <= chars))
        query = Split.of(known, self.vocab)
        q_tokens, q_offsets, q_lengths = query.tokens.numpy(), query.offsets.numpy(), np.diff(query.offsets.numpy())
        hashes = _item_hashes(q_tokens, q_offsets)
        sorted_hashes, order = self._index
        at = np.minimum(np.searchsorted(sorted_hashes, hashes), len(order) - 1)
        hashed = sorted_hashes[at] == hashes
        candidate = order[at]  # the first item with that hash: of equal items, the one in train
        offsets = self.offsets.numpy()
        same = hashed & (offsets[candidate + 1] - offsets[candidate] == q_lengths)
        if q := np.flatnonzero(same).tolist():  # confirm token by token
            ours = q_tokens[_spans(q_offsets[q], q_lengths[q])]
            theirs = self.tokens.numpy()[_spans(offsets[candidate[q]], q_lengths[q])]
            differ = np.add.reduceat(ours != theirs, np.cumsum(q_lengths[q]) - q_lengths[q])
            same[np.array(q)[differ > 0]] = False
        split = np.searchsorted(np.cumsum(self.sizes), candidate, side="right")
        found = {
            item: SPLITS[split[i]] if same[i] else self._find(query, i, hashes[i]) if hashed[i] else "new"
            for i, item in enumerate(known)
        }
        return [found.get(item, "new") for item in items]

    def _find(self, query: Split, q: int, h: int) -> str:
        """Item q of the query among every item with its hash (another item's hash hid it)."""
        sorted_hashes, order = self._index
        lo, hi = np.searchsorted(sorted_hashes, [h, h], side="left")[0], np.searchsorted(sorted_hashes, h, "right")
        want = query.tokens[query.offsets[q] : query.offsets[q + 1]]
        for i in order[lo:hi].tolist():  # almost always one candidate, or duplicates of one item
            if torch.equal(self.tokens[self.offsets[i] : self.offsets[i + 1]], want):
                return SPLITS[int(np.searchsorted(np.cumsum(self.sizes), i, side="right"))]
        return "new"

    # --- the cache in a run directory ---------------------------------------------------------------
    def to_bytes(self, **facts: str) -> bytes:
        """The data set as a safetensors file; `facts` (strings) describe where it came from."""
        meta = {
            "format": CACHE_FORMAT,
            "vocab": json.dumps(self.vocab.chars),
            "sizes": json.dumps(self.sizes),
            "skipped": str(self.skipped),
            "sha256": self.sha256 or "",
            **({"mode": "text"} if self.text else {}),
            **({"split": self.rule} if self.rule != LECTURES else {}),  # (a cache without it: the lectures')
            **facts,
        }
        meta["checksum"] = _checksum(meta, self.tokens, self.offsets)
        return save({"tokens": self.tokens, "offsets": self.offsets}, metadata=meta)

    @classmethod
    def load(cls, path: Path) -> tuple[Dataset, dict[str, str]]:
        """(data set, its facts) from a file to_bytes wrote; CacheError for anything else, and
        MakemoreError for something that is not a regular file (open_regular: a FIFO is not waited on).

        The arrays and the header fields that describe them are checked against the SHA-256 stored
        with them, so a damaged or edited cache is not used (one that is forged with its checksum
        computed again still is: the cache is for speed, input.txt is what the checkpoint vouches for)."""
        try:
            with open_regular(path, run_file=True) as held:
                # safetensors opens a name: the open file's own, so what is read is what was checked
                fd_name = f"/proc/self/fd/{held.fileno()}"
                with safe_open(fd_name if os.path.exists(fd_name) else path, framework="pt") as f:
                    meta = f.metadata() or {}
                    tensors = {k: f.get_tensor(k) for k in f.keys()}
        except (OSError, SafetensorError) as e:
            raise CacheError(f"cannot be read ({e})") from None
        if meta.get("format") != CACHE_FORMAT or set(tensors) != {"tokens", "offsets"}:
            raise CacheError("is not a makemore data cache")
        if "checksum" not in meta:
            raise CacheError("has no checksum (an older makemore wrote it)")
        if meta["checksum"] != _checksum(meta, tensors["tokens"], tensors["offsets"]):
            raise CacheError("does not match its checksum (damaged or edited)")
        try:
            vocab = Vocab(tuple(json.loads(meta["vocab"])))
            sizes = tuple(int(n) for n in json.loads(meta["sizes"]))
            text = meta.get("mode") == "text"
            rule = meta.get("split", LECTURES)
            if rule not in SPLIT_RULES:
                raise ValueError(f"split {rule!r}")
            data = cls(
                vocab, tensors["tokens"], tensors["offsets"], sizes, int(meta["skipped"]), meta["sha256"], text, rule
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CacheError(f"has a damaged header ({e!r})") from None
        if problem := data._problem():
            raise CacheError(problem)
        return data, meta

    def _problem(self) -> str | None:
        """What makes these arrays not a data set (a damaged or foreign file), or None."""
        tokens, offsets, chars = self.tokens, self.offsets, self.vocab.chars
        if any(not isinstance(c, str) or len(c) != 1 for c in chars) or list(chars) != sorted(set(chars)):
            return "has a damaged vocabulary"
        if tokens.dim() != 1 or tokens.dtype != torch.from_numpy(np.zeros(0, self.vocab.dtype)).dtype:
            return "holds tokens of the wrong type"
        if offsets.dim() != 1 or offsets.dtype != torch.int64 or len(self.sizes) != 3:
            return "holds offsets of the wrong type"
        if min(self.sizes) < 0 or not self.sizes[0] or sum(self.sizes) != len(offsets) - 1:
            return "has split sizes that do not match its items"
        if self.text and (self.sizes != (1, 1, 0) or self.rule != LECTURES):
            return "has split sizes that are not text mode's (train, dev)"
        if offsets[0] != 0 or offsets[-1] != len(tokens) or (offsets[1:] <= offsets[:-1]).any():
            return "has item offsets out of order"
        if len(tokens) and (int(tokens.min()) < 1 or int(tokens.max()) >= len(self.vocab)):
            return "has token ids outside its vocabulary"
        return None


def _checksum(meta: dict[str, str], tokens: torch.Tensor, offsets: torch.Tensor) -> str:
    """SHA-256 of a cache's header fields (all but the checksum itself) and its arrays' bytes."""
    digest = hashlib.sha256(json.dumps({k: v for k, v in meta.items() if k != "checksum"}, sort_keys=True).encode())
    for array in (tokens, offsets):
        digest.update(f"|{array.dtype}|{array.numel()}|".encode())
        digest.update(array.contiguous().numpy().view(np.uint8))
    return digest.hexdigest()


class CacheError(Exception):
    """A data cache that cannot be used; the message completes "DIR/data.safetensors ..."."""


def _item_hashes(tokens: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each item: the sum of (token + 1) times a random odd key for its position,
    and a key for its length, modulo 2**64 (numpy's uint64 arithmetic wraps)."""
    keys = np.random.default_rng(SPLIT_SEED).integers(0, 2**63, ITEM_LEN_LIMIT + 2, dtype=np.uint64) * 2 + 1
    lengths = np.diff(offsets)
    out = np.empty(len(lengths), dtype=np.uint64)
    for a in range(0, len(lengths), GATHER_ITEMS):
        b = min(a + GATHER_ITEMS, len(lengths))
        lo, hi = offsets[a], offsets[b]
        pos = np.arange(hi - lo) - np.repeat(offsets[a:b] - lo, lengths[a:b])
        terms = (tokens[lo:hi].astype(np.uint64) + 1) * keys[pos]
        out[a:b] = np.add.reduceat(terms, offsets[a:b] - lo) if hi > lo else 0
        out[a:b] += keys[-1] * lengths[a:b].astype(np.uint64)
    return out
