"""One-row decoding in NumPy against the Transformer's own forward pass."""

import pytest
import torch

from makemore.data import Vocab
from makemore.errors import MakemoreError
from makemore.models import REGISTRY
from makemore.models.row_decoder import RowDecoder
from makemore.sample import generate

cls = REGISTRY["transformer"]


def float_model(seed=0, **kw):
    """A float32 model (the dtype the NumPy path takes) with bold weights: LayerNorm gains and biases
    far from 1 and 0, so that folding them into the next weights is tested."""
    torch.manual_seed(seed)
    model = cls(cls.Config(**{**dict(vocab_size=27, max_len=15, n_layer=2, n_head=4, n_embd=32), **kw})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("head", ["separate", "tied"])
@torch.no_grad()
def test_one_row_decoding_gives_the_logits_of_forward(head):
    model = float_model(head=head)
    idx = torch.randint(0, 27, (1, 16))
    full = model(idx)
    logits, state = model.decode(idx[:, :5])  # a prefix, then one token at a time
    pieces = [logits]
    for t in range(5, 16):
        logits, state = model.decode(idx[:, t : t + 1], state)
        pieces.append(logits)
    assert isinstance(state[0], RowDecoder) and state[1] == 16
    diff = (torch.cat(pieces, dim=1) - full).abs().max().item()
    print(head, "max |NumPy row - forward| logits", diff, "of", full.abs().max().item())
    assert diff < 1e-4


@torch.no_grad()
def test_the_folded_weights_follow_a_change_of_the_weights():
    model = float_model()
    idx = torch.tensor([[0, 5, 9]])
    before = model.decode(idx)[0]
    model.lm_head.bias[3] += 1.0  # in place, as an optimizer step or a load changes weights
    after = model.decode(idx)[0]
    expected = before.clone()
    expected[..., 3] += 1.0
    print("max |after - (before + 1 on logit 3)|", (after - expected).abs().max().item())
    assert torch.allclose(after, expected, atol=1e-5)


@torch.no_grad()
def test_one_row_decoding_refuses_a_row_longer_than_the_positions():
    model = float_model(max_len=3)
    _, state = model.decode(torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(MakemoreError, match="longer than this model's 4 positions"):
        model.decode(torch.zeros(1, 1, dtype=torch.long), state)


def test_sampling_one_at_a_time_draws_what_full_recomputation_draws():
    """generate() at batch 1 takes the NumPy path; without the cache it recomputes every prefix in torch."""
    model = float_model(seed=3)
    vocab = Vocab(tuple("abcdefghijklmnopqrstuvwxyz"))
    fast, plain = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    got = [generate(model, vocab, 1, 15, fast)[0] for _ in range(30)]
    expected = [generate(model, vocab, 1, 15, plain, cache=False)[0] for _ in range(30)]
    print(got[:5])
    assert got == expected and len(set(got)) > 20
