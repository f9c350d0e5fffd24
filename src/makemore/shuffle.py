"""The permutation ``random.Random(seed).shuffle`` makes of ``range(n)``, computed with numpy instead of a Python loop.

``Random.shuffle(x)`` runs the Fisher-Yates steps ``i = n-1, ..., 1``: step ``i`` draws ``j = _randbelow(i + 1)`` and
swaps ``x[i], x[j]``. ``_randbelow(m)`` takes ``k = m.bit_length()`` bits per try, each try being the next 32-bit
Mersenne Twister output shifted right by ``32 - k``, and retries while the result is ``>= m``. We replay that stream
with numpy's MT19937 (same state, same outputs), pick the kept tries in bulk, then turn the swaps into the final
permutation by sorting and pointer doubling.
"""

import math
import operator
import random
import sys

import numpy as np

MAX_N = 2**31 - 1  # indices are held as int32 (and from 2**32 on, _randbelow would draw more than 32 bits per try)
# a block of steps spans at most 2**k >> 8 bounds, so about 1 try in 256 is decided in Python; but at least 64, as
# numpy calls cost more than deciding every try in Python for the few short blocks this makes
_SPAN_SHIFT = 8
_MIN_SPAN = 64
_READ_AHEAD = 1 << 16  # outputs generated at least at a time
_LOW, _HIGH = (0, 1) if sys.byteorder == "little" else (1, 0)  # the int32 halves of an int64


def shuffled_indices(n: int, seed: int = 42) -> np.ndarray:
    """The permutation random.Random(seed).shuffle(list(range(n))) produces, as an int64 array,
    computed without a Python-level loop over the n items."""
    n = operator.index(n)
    if not 0 <= n <= MAX_N:
        raise ValueError(f"n must be in [0, {MAX_N}], got {n}")
    step, choice = _sorted_swaps(n, _TwisterStream(random.Random(seed)))
    return _permutation(step, choice)


class _TwisterStream:
    """The 32-bit outputs a random.Random will produce next, read ahead through numpy's MT19937 on the same state."""

    def __init__(self, rng: random.Random):
        _version, words, _gauss = rng.getstate()
        self._bits = np.random.MT19937()
        self._bits.state = {
            "bit_generator": "MT19937",
            "state": {"key": np.array(words[:624], dtype=np.uint32), "pos": words[624]},
        }
        self._ahead = np.empty(0, dtype=np.uint32)

    def peek(self, count: int) -> np.ndarray:
        """The next count outputs, without consuming them."""
        if self._ahead.size < count:
            fresh = self._bits.random_raw(max(count - self._ahead.size, _READ_AHEAD)).astype(
                np.uint32
            )  # exact: outputs are < 2**32
            self._ahead = np.concatenate([self._ahead, fresh])
        return self._ahead[:count]

    def skip(self, count: int) -> None:
        """Consume the next count outputs."""
        self._ahead = self._ahead[count:]


def _sorted_swaps(n: int, stream: _TwisterStream) -> tuple[np.ndarray, np.ndarray]:
    """Every step i (with i = 0, choosing 0, for uniformity) and the j it swaps with, sorted by j, then by i.

    (j << 32 | i) packs a pair into one int64, so one in-place numeric sort does it; the two columns returned are
    int32 views of the sorted keys."""
    key = np.zeros(n, dtype=np.int64)
    halves = key.view(np.int32).reshape(n, 2)
    for top, bottom in _blocks(n):
        steps = slice(bottom - 1, top)  # i = top-1 down to bottom-1, drawn in that order
        halves[steps, _HIGH] = _draw_block(stream, top, bottom)[::-1]
        halves[steps, _LOW] = np.arange(bottom - 1, top)
    key.sort()
    return halves[:, _LOW], halves[:, _HIGH]


def _blocks(n: int):
    """(top, bottom) bounds m = i + 1 of each block of steps, in drawing order (m = n down to 2).

    A block's bounds share one bit length k (so one shift of the raw outputs) and span few values (see _SPAN_SHIFT),
    so a try rarely falls between the block's smallest and largest bound."""
    top = n
    while top >= 2:
        k = top.bit_length()
        span = max(_MIN_SPAN, (1 << k) >> _SPAN_SHIFT)
        bottom = max(1 << (k - 1), top - span + 1)
        yield top, bottom
        top = bottom - 1


def _draw_block(stream: _TwisterStream, top: int, bottom: int) -> np.ndarray:
    """The j's _randbelow returns for the bounds top, top-1, ..., bottom, consuming exactly the tries it takes."""
    k = top.bit_length()
    steps = top - bottom + 1
    # expected tries plus a wide margin (each try is kept with probability >= 1/2); more only if that falls short
    budget = steps * (1 << k) // bottom + 4 * math.isqrt(steps) + 16
    while True:
        tries = stream.peek(budget) >> (32 - k)
        kept = np.flatnonzero(_kept(tries, top, bottom))[:steps]
        if kept.size == steps:
            break
        budget *= 2
    stream.skip(int(kept[-1]) + 1)
    return tries[kept]


def _kept(tries: np.ndarray, top: int, bottom: int) -> np.ndarray:
    """Which tries _randbelow keeps when the bounds top, top-1, ... consume them in turn.

    A try serves the bound top - (tries kept before it) and is kept iff it is below that bound. Below bottom it is
    below every bound of the block, at or above top below none; only the few in between depend on the count."""
    kept = tries < bottom
    undecided = np.flatnonzero((tries < top) != kept)  # bottom <= try < top
    if undecided.size:
        sure_before = np.cumsum(kept, dtype=np.int32)[undecided]  # sure keeps before each undecided try
        late = []  # the undecided tries kept
        for t, value, before in zip(undecided.tolist(), tries[undecided].tolist(), sure_before.tolist()):
            if value < top - before - len(late):
                late.append(t)
        kept[late] = True
    return kept


def _permutation(step: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """The final x of the Fisher-Yates steps swapping x[i], x[j], from x = range(n), given all (i, j) = (step[t],
    choice[t]) sorted by j, then by i: each group of equal j lists the steps writing position j, latest in time first.

    Position i is final after step i (later steps touch only smaller positions), and holds what position j held
    just before step i: j itself if no earlier step wrote there, else what the last earlier writer e (the smallest
    step e > i with the same j, the next entry of the group) moved in, namely content[e], the content of position e
    just before step e. By the same argument content[p] = content[w] for the last writer w of p before step p
    (smallest step w > p choosing p), else p; so content[p] is the end of the chain p -> w -> ...
    """
    n = step.size
    starts = np.empty(n, dtype=bool)  # first of its group, so the group's smallest step
    starts[:1] = True
    np.not_equal(choice[1:], choice[:-1], out=starts[1:])

    # prior[t]: the last step before step[t] (in time) that chose the same position, -1 if none
    prior = np.full(n, -1, dtype=np.int32)
    prior[:-1] = np.where(starts[1:], -1, step[1:])

    # the last writer of p before step p: every step choosing p is >= p, so that is its group's first step,
    # unless that is step p itself; then it is that step's prior (if any)
    first = np.flatnonzero(starts)  # integer indices gather much faster than a scattered boolean mask
    del starts
    chosen, head = choice[first], step[first]
    writer = np.where(head != chosen, head, prior[first])
    del first, head
    written = writer >= 0
    live = chosen[written]
    content = np.arange(n, dtype=np.int32)
    content[live] = writer[written]
    del chosen, writer, written
    _follow_to_ends(content, live)
    del live

    # what position step[t] receives at its step (where prior is -1, content[-1] is read but not used)
    moved = np.where(prior < 0, choice, content[prior])
    del prior, content
    shuffled = np.empty(n, dtype=np.int64)
    shuffled[step] = moved
    return shuffled


def _follow_to_ends(link: np.ndarray, live: np.ndarray) -> None:
    """Point every link[p] at the end of its chain p -> link[p] -> ... (an end has link[q] == q), in place, by
    pointer doubling; live holds every p whose link may not be an end yet."""
    target = link[live]
    while live.size:
        hop = link[target]
        further = hop != target  # target is not an end yet
        live, target = live[further], hop[further]
        link[live] = target  # each round doubles how far the live links reach
