"""Sampling: which characters survive temperature, top-k and top-p, and what generate() draws."""

import math
from unittest.mock import patch

import numpy as np
import pytest
import torch

from makemore.data import BOUNDARY, Vocab
from makemore.models import REGISTRY, SequenceModel
from makemore.sample import filter_logits, generate, uniforms

PROBS = torch.tensor([[0.5, 0.2, 0.15, 0.1, 0.05]])
LOGITS = PROBS.log()


def survivors(logits: torch.Tensor) -> list[int]:
    return torch.isfinite(logits[0]).nonzero().flatten().tolist()


def test_top_k_keeps_exactly_the_k_most_likely():
    shuffled = LOGITS[:, [3, 0, 4, 2, 1]]  # most likely at index 1, then 4, then 3
    assert survivors(filter_logits(shuffled, 1.0, 1, None)) == [1]
    assert survivors(filter_logits(shuffled, 1.0, 3, None)) == [1, 3, 4]
    assert survivors(filter_logits(LOGITS, 1.0, 5, None)) == [0, 1, 2, 3, 4]
    assert survivors(filter_logits(LOGITS, 1.0, 50, None)) == [0, 1, 2, 3, 4]  # k past the vocabulary: all


def test_top_p_keeps_the_smallest_set_that_reaches_p():
    assert survivors(filter_logits(LOGITS, 1.0, None, 0.45)) == [0]  # 0.5 alone reaches 0.45
    assert survivors(filter_logits(LOGITS, 1.0, None, 0.6)) == [0, 1]  # 0.5 < 0.6 <= 0.7
    assert survivors(filter_logits(LOGITS, 1.0, None, 0.8)) == [0, 1, 2]  # 0.7 < 0.8 <= 0.85
    assert survivors(filter_logits(LOGITS, 1.0, None, 1.0)) == [0, 1, 2, 3, 4]
    assert survivors(filter_logits(LOGITS, 1.0, None, 0.01)) == [0]  # the most likely always survives


def test_temperature_rescales_before_the_filters():
    kept = filter_logits(LOGITS, 0.5, None, None)
    assert torch.allclose(kept.softmax(-1), (PROBS**2) / (PROBS**2).sum())  # T = 1/2 squares the odds
    # at T = 1/2 the head holds more mass: 0.25 / 0.325 > 0.7, so top-p 0.7 keeps one character
    assert survivors(filter_logits(LOGITS, 0.5, None, 0.7)) == [0]


def test_top_k_and_top_p_together_keep_the_intersection():
    assert survivors(filter_logits(LOGITS, 1.0, 2, 0.9)) == [0, 1]
    assert survivors(filter_logits(LOGITS, 1.0, 4, 0.6)) == [0, 1]
    survivors_probs = filter_logits(LOGITS, 1.0, 2, None).softmax(-1)[0]
    assert math.isclose(survivors_probs[0].item(), 0.5 / 0.7, rel_tol=1e-6) and survivors_probs[2:].sum() == 0


def test_extreme_temperatures_have_their_limits_and_keep_the_filters():
    greedy = filter_logits(LOGITS, 1e-40, None, None).softmax(-1)
    assert torch.equal(greedy, torch.tensor([[1.0, 0, 0, 0, 0]]))  # tends to the argmax, no nan
    uniform = filter_logits(LOGITS, float("inf"), None, None).softmax(-1)
    assert torch.allclose(uniform, torch.full((1, 5), 0.2))
    assert survivors(filter_logits(LOGITS, float("inf"), 1, None)) == [0]  # top-k still holds
    assert survivors(filter_logits(LOGITS, float("inf"), 2, None)) == [0, 1]


def reference_samples(model, vocab, n: int, max_len: int, generator: torch.Generator) -> list[str]:
    """The plain sampler: one item at a time, its whole prefix recomputed at every step, each character
    the first whose cumulative probability passes the item's uniform number for that step."""
    keys = torch.randint(0, 2**62, (n,), generator=generator).tolist()
    items = []
    for key in keys:
        tokens = [BOUNDARY]
        for t in range(1, max_len + 1):
            probs = model.next_logits(torch.tensor([tokens])).float().softmax(-1).double()[0]  # as generate()
            u = uniforms(np.array([key], dtype=np.uint64), np.array([t]))[0, 0]
            cum = probs.cumsum(0)
            nxt = int((cum <= u * cum[-1]).sum())  # the first index whose cumulative sum exceeds u * total
            if nxt == BOUNDARY:
                break
            tokens.append(nxt)
        items.append(vocab.decode(tokens[1:]))
    return items


@pytest.mark.parametrize("model_type", sorted(REGISTRY))
def test_generate_draws_what_the_plain_sampler_draws(model_type):
    """generate() decodes incrementally, in batches, and stops computing the rows that have ended; the
    items must be what one item at a time draws (a second call continues the same stream)."""
    torch.manual_seed(0)
    cls = REGISTRY[model_type]
    sizes = {"max_len": 12} if issubclass(cls, SequenceModel) else {}
    model = cls(cls.Config(vocab_size=27, **sizes)).double().eval()
    vocab = Vocab(tuple("abcdefghijklmnopqrstuvwxyz"))
    expected_gen, gen = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    expected = [reference_samples(model, vocab, n, 12, expected_gen) for n in (40, 5)]
    got = [generate(model, vocab, n, 12, gen) for n in (40, 5)]
    ended = [len(item) for item in got[0]]
    print(model_type, "item lengths", min(ended), "to", max(ended))
    assert got == expected and min(ended) < max(ended)


@pytest.mark.parametrize("model_type", sorted(REGISTRY))
def test_the_first_items_of_a_seed_do_not_depend_on_how_many_are_drawn(model_type):
    """-n 8 and -n 10 give the same first 8 items (each item has its own random stream), also when
    the batches are split differently (3 rows at a time)."""
    torch.manual_seed(0)
    cls = REGISTRY[model_type]
    sizes = {"max_len": 12} if issubclass(cls, SequenceModel) else {}
    model = cls(cls.Config(vocab_size=27, **sizes)).eval()
    vocab = Vocab(tuple("abcdefghijklmnopqrstuvwxyz"))
    draw = lambda n: generate(model, vocab, n, 12, torch.Generator().manual_seed(7))  # noqa: E731
    eight, ten = draw(8), draw(10)
    assert ten[:8] == eight and len(set(ten)) > 1
    with patch("makemore.sample.batch_rows", return_value=3):  # batches of 3, 3, 2 rows
        assert draw(8) == eight
