import math

import pytest
import torch

from makemore.config import TrainConfig
from makemore.data import Dataset, Windows, bundled_names
from makemore.evaluate import split_nll
from makemore.models import REGISTRY
from makemore.train import Trainer


def _names():
    return Dataset.read(bundled_names())


def test_counts_model_matches_explicit_counting():
    data = Dataset.from_items(["ab", "abb", "ba"])
    V = len(data.vocab)
    model = REGISTRY["bigram"](REGISTRY["bigram"].Config(vocab_size=V, alpha=0.5))
    examples = Windows(data.split("train"), 1)
    model.fit(examples)
    X, Y = examples[:]
    N = torch.zeros(V, V)
    for prev, nxt in zip(X[:, 0].tolist(), Y.tolist()):
        N[prev, nxt] += 1
    P = (N + 0.5) / (N + 0.5).sum(1, keepdim=True)
    diff = (model.log_probs.exp() - P).abs().max().item()
    print("max |P - reference|", diff)
    assert diff < 1e-6


def test_counts_dev_nll_on_names():
    data = _names()
    model = REGISTRY["bigram"](REGISTRY["bigram"].Config(vocab_size=27))
    Trainer(model, data, TrainConfig(max_steps=0)).run()
    dev = split_nll(model, Windows(data.split("dev"), 1))
    print("bigram counts dev", dev)
    assert 2.44 <= dev <= 2.47


@pytest.mark.slow
def test_neural_bigram_lands_on_the_counts_model():
    data = _names()
    counts = REGISTRY["bigram"](REGISTRY["bigram"].Config(vocab_size=27))
    counts.fit(Windows(data.split("train"), 1))
    cls = REGISTRY["bigram-nn"]
    torch.manual_seed(0)
    nn_model = cls(cls.Config(vocab_size=27))
    Trainer(nn_model, data, TrainConfig(**cls.train_defaults)).run()
    dev = {name: split_nll(m, Windows(data.split("dev"), 1)) for name, m in [("counts", counts), ("nn", nn_model)]}
    print("dev", dev)
    assert math.isclose(dev["counts"], dev["nn"], abs_tol=0.01)


def test_bigram_tables_are_the_models_own_probabilities():
    """bigram_table() (what `makemore serve` draws) is P(next | previous): rows sum to one, and
    row c is the softmax of the logits the model gives after c; the counts model adds its counts."""
    data = Dataset.from_items(["ab", "abb", "ba"])
    V = len(data.vocab)
    counts = REGISTRY["bigram"](REGISTRY["bigram"].Config(vocab_size=V))
    counts.fit(Windows(data.split("train"), 1))
    neural = REGISTRY["bigram-nn"](REGISTRY["bigram-nn"].Config(vocab_size=V))
    with torch.no_grad():
        neural.W.copy_(torch.randn(V, V))
    for model in (counts, neural):
        probs, counted = model.bigram_table()
        assert torch.allclose(probs.sum(1), torch.ones(V))
        prev = torch.arange(V).unsqueeze(1)
        assert torch.allclose(probs, model(prev).softmax(1), atol=1e-6)
    assert torch.equal(counts.bigram_table()[1], counts.counts) and neural.bigram_table()[1] is None


def test_regularization_adds_the_mean_of_w_squared_and_pulls_toward_uniform():
    """bigram-nn --regularization R: the objective is NLL + R * mean(W**2); the logged loss is the NLL."""
    data = Dataset.from_items(["ab", "abb", "ba", "aab"] * 50)
    V, cls = len(data.vocab), REGISTRY["bigram-nn"]
    assert cls(cls.Config(vocab_size=V)).penalty() == 0  # by default the penalty adds nothing
    model = cls(cls.Config(vocab_size=V, regularization=0.5))
    with torch.no_grad():
        model.W.copy_(torch.randn(V, V))
    assert torch.allclose(model.penalty(), 0.5 * (model.W**2).mean())
    dev = {}
    for strength in (0.0, 10.0):
        model = cls(cls.Config(vocab_size=V, regularization=strength))
        cfg = TrainConfig(max_steps=200, batch_size=64, learning_rate=0.3, weight_decay=0.0, warmup_steps=0)
        Trainer(model, data, cfg).run()
        dev[strength] = split_nll(model, Windows(data.split("train"), 1))
    print("train NLL without and with regularization", dev)
    assert dev[0.0] < dev[10.0] < math.log(V)  # smoothed: further from the data, short of uniform
