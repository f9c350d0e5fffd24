import torch

from makemore.models import REGISTRY

cls = REGISTRY["bow"]


def model_and_input(T=12):
    torch.manual_seed(0)
    model = cls(cls.Config(vocab_size=27, max_len=15)).double().eval()
    return model, torch.randint(0, 27, (4, T))


def test_causal_average_matches_an_explicit_loop():
    """Position t sees the mean of the embeddings at 0..t, computed here one position at a time."""
    model, idx = model_and_input()
    x = model.wte(idx) + model.wpe(torch.arange(12))
    want = torch.stack([model._head(x[:, t], x[:, : t + 1].mean(1)) for t in range(12)], dim=1)
    diff = (model(idx) - want).abs().max().item()
    print("max |matrix average - loop average|", diff)
    assert diff < 1e-12


def test_parameter_count_at_makemore_py_size():
    model = cls(cls.Config(vocab_size=27, max_len=15))
    print("bow parameters", model.num_params())
    assert model.num_params() == 12827
