"""Views of a model's inside (makemore.views): the data `serve` sends and `plot` draws."""

import pytest
import torch
import torch.nn.functional as F

from makemore.errors import MakemoreError
from makemore.store import RunStore
from makemore.views import SATURATED, TextError, attention, bigram, dlogits, embedding, project_2d, tanh_at_init


def test_project_2d_keeps_a_two_dimensional_table_and_finds_the_main_directions():
    table = torch.randn(27, 2, dtype=torch.float64)
    points, explained = project_2d(table)
    assert torch.equal(points, table) and sum(explained) == pytest.approx(1)
    line = torch.arange(27, dtype=torch.float64)[:, None] * torch.tensor([[1.0, 2.0, 2.0]])  # a line in 3-D
    points, explained = project_2d(line)
    print("explained variance of a line", explained)
    assert explained == pytest.approx([1, 0], abs=1e-9)
    assert points[:, 0].abs().diff().abs().max() == pytest.approx(3)  # the line's own spacing, |(1, 2, 2)|


def test_each_view_refuses_a_model_without_that_part(served_runs):
    mlp = RunStore.open(served_runs / "mlp").load_best()
    with pytest.raises(MakemoreError, match="a mlp model has no attention"):
        attention(mlp, "emma")
    with pytest.raises(MakemoreError, match="reads more than the previous character"):
        bigram(mlp)
    with pytest.raises(MakemoreError, match="a bigram model has no character embedding"):
        embedding(RunStore.open(served_runs / "bigram").load_best())


def test_attention_refuses_text_it_cannot_read(served_runs):
    transformer = RunStore.open(served_runs / "transformer").load_best()
    with pytest.raises(TextError, match="not in the vocabulary"):
        attention(transformer, "Emma")
    with pytest.raises(TextError, match="at most 15 characters"):
        attention(transformer, "a" * 16)


@pytest.mark.parametrize("run", ["mlp", "transformer"])
def test_dlogits_is_softmax_minus_one_hot_over_n(served_runs, run):
    """The lecture derives dlogits = (softmax(logits) - one_hot(y)) / n; the view takes autograd's."""
    store = RunStore.open(served_runs / run)
    best, data = store.load_best(), store.dataset()
    view = dlogits(best, data, n=32)
    grads = torch.tensor(view["dlogits"], dtype=torch.float64)
    assert grads.shape == (32, 27) and len(view["targets"]) == 32
    X, Y = best.model.examples(data.split("train"))[:32]
    logits = best.model.eval()(X).reshape(-1, 27)[Y.reshape(-1) != -1][:32].double()
    targets = [view["chars"].index(t) for t in view["targets"]]
    by_hand = (logits.softmax(1) - F.one_hot(torch.tensor(targets), 27)) / 32
    diff = (grads - by_hand).abs().max().item()
    print(run, "max |autograd - (softmax - one_hot) / n|", diff)
    assert diff < 1e-6 and grads.sum(1).abs().max() < 1e-6
    assert all(grads[i, t] < 0 for i, t in enumerate(targets))  # the right character is pulled down


def test_tanh_at_init_shows_how_much_each_initialisation_saturates(served_runs):
    store = RunStore.open(served_runs / "mlp")
    view = tanh_at_init(store.load_best(), store.dataset(), n=32)
    shares = {}
    for v in view["variants"]:
        assert len(v["saturated"]) == 32 and len(v["saturated"][0]) == 200 and len(v["preact"]) == 32 * 200
        assert v["positions"] == 1  # one row per example, one column per neuron: 1 where it saturates
        assert v["saturated"] == [
            [float(abs(h) > SATURATED) for h in v["h"][i * 200 : (i + 1) * 200]] for i in range(32)
        ]
        shares[v["label"].split()[-1]] = sum(map(sum, v["saturated"])) / (32 * 200)
    print(f"share of |h| > {SATURATED} at initialisation", shares)
    assert set(shares) == {"naive", "small-output", "scaled", "kaiming"}
    assert shares["naive"] > 0.5 > 0.1 > shares["scaled"]  # the lecture's white picture, then its fix
    again = tanh_at_init(store.load_best(), store.dataset(), n=32)
    assert again == view  # seeded: the same batch and the same fresh weights


def test_plot_tanh_and_diagnose_count_saturation_at_one_threshold(served_runs):
    """`plot tanh` counted |h| > 0.99, `diagnose` |t| > 0.97: the same layer, two answers. One
    constant now (the lecture's diagnostics' 0.97), in views, used by both."""
    from makemore import diagnose, views

    assert diagnose.SATURATED is views.SATURATED and views.SATURATED == 0.97
    store = RunStore.open(served_runs / "mlp")
    view = tanh_at_init(store.load_best(), store.dataset(), n=32)
    assert view["threshold"] == diagnose.SATURATED
    for v in view["variants"]:  # what diagnose's Probe counts on the same outputs
        counted = sum(abs(h) > diagnose.SATURATED for h in v["h"])
        assert sum(map(sum, v["saturated"])) == counted, v["label"]
