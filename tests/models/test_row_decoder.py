"""One-row decoding in NumPy against the Transformer's own forward pass."""

import numpy as np
import pytest
import torch

from makemore.data import Vocab
from makemore.errors import MakemoreError
from makemore.models import REGISTRY
from makemore.models.row_decoder import row_decoder
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


def row_logits(model, idx):
    """The logits of every position of one row idx (1, T), decoded one token at a time in NumPy."""
    decoder = row_decoder(model)
    assert decoder is not None
    return torch.from_numpy(np.stack([decoder.step(t) for t in idx[0].tolist()]))[None]


@pytest.mark.parametrize("head", ["separate", "tied"])
@torch.no_grad()
def test_one_row_decoding_gives_the_logits_of_forward(head):
    model = float_model(head=head)
    idx = torch.randint(0, 27, (1, 16))
    full = model(idx)
    diff = (row_logits(model, idx) - full).abs().max().item()
    print(head, "max |NumPy row - forward| logits", diff, "of", full.abs().max().item())
    assert diff < 1e-4


def _in_place(model, other):
    for p, q in zip(model.parameters(), other.parameters()):
        p.copy_(q)


def _load(model, other):
    model.load_state_dict(other.state_dict())


def _load_assigned(model, other):  # new parameter tensors: the case a cache over the old ones missed
    model.load_state_dict({k: v.clone() for k, v in other.state_dict().items()}, assign=True)


def _optimizer_step(model, other):
    with torch.enable_grad():
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        model(torch.randint(0, 27, (2, 8))).square().mean().backward()
        opt.step()


def _round_trip_device(model, other):
    model.to(torch.float64).to(torch.float32)


@pytest.mark.parametrize("change", [_in_place, _load, _load_assigned, _optimizer_step, _round_trip_device])
@torch.no_grad()
def test_decode_equals_forward_after_every_kind_of_weight_change(change):
    model, other = float_model(seed=0), float_model(seed=1)
    idx = torch.randint(0, 27, (1, 12))
    row_logits(model, idx)  # folds and caches the first weights
    change(model, other)
    model.eval()
    diff = (row_logits(model, idx) - model(idx)).abs().max().item()
    print(change.__name__, "max |NumPy row - forward| logits after the change", diff)
    assert diff < 1e-4


@torch.no_grad()
def test_the_numpy_path_applies_only_where_it_is_exact():
    model = float_model()
    assert row_decoder(model) is not None
    assert row_decoder(model.train()) is None
    assert row_decoder(float_model().double()) is None
    with torch.enable_grad():
        assert row_decoder(float_model()) is None
    assert row_decoder(REGISTRY["rnn"](REGISTRY["rnn"].Config(vocab_size=27)).eval()) is None


@torch.no_grad()
def test_one_row_decoding_refuses_a_row_longer_than_the_positions():
    model = float_model(max_len=3)
    decoder = row_decoder(model)
    for token in range(4):
        decoder.step(token)
    with pytest.raises(MakemoreError, match="longer than this model's 4 positions"):
        decoder.step(0)


def test_sampling_one_at_a_time_draws_what_full_recomputation_draws():
    """generate() at batch 1 takes the NumPy path; without the cache it recomputes every prefix in torch."""
    model = float_model(seed=3)
    vocab = Vocab(tuple("abcdefghijklmnopqrstuvwxyz"))
    fast, plain = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    got = [generate(model, vocab, 1, 15, fast)[0] for _ in range(30)]
    expected = [generate(model, vocab, 1, 15, plain, cache=False)[0] for _ in range(30)]
    print(got[:5])
    assert got == expected and len(set(got)) > 20
