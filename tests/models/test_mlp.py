import math

import pytest
import torch
import torch.nn.functional as F

from makemore.data import Dataset, Windows, bundled_names
from makemore.models import REGISTRY
from makemore.models.mlp import INITS


def test_lecture_configuration_has_11897_parameters():
    model = REGISTRY["mlp"](REGISTRY["mlp"].Config(vocab_size=27))
    assert model.num_params() == 11897


def test_einsum_is_the_lectures_view_and_matmul():
    """'bse,seh->bh' over (context, embedding) is emb.view(B, S*E) @ W1.view(S*E, H)."""
    torch.manual_seed(0)
    model = REGISTRY["mlp"](REGISTRY["mlp"].Config(vocab_size=27)).double()
    idx = torch.randint(0, 27, (64, 3))
    emb = model.C[idx]
    hpre_einsum = torch.einsum("bse,seh->bh", emb, model.W1)
    hpre_matmul = emb.view(64, -1) @ model.W1.view(-1, model.config.n_hidden)
    diff = (hpre_einsum - hpre_matmul).abs().max().item()
    print("max |einsum - view@matmul|", diff)
    assert diff < 1e-12


def test_initial_loss_is_near_uniform():
    torch.manual_seed(0)
    model = REGISTRY["mlp"](REGISTRY["mlp"].Config(vocab_size=27))
    idx, y = torch.randint(0, 27, (1000, 3)), torch.randint(0, 27, (1000,))
    loss = torch.nn.functional.cross_entropy(model(idx), y).item()
    print("initial loss", loss, "uniform", torch.log(torch.tensor(27.0)).item())
    assert abs(loss - 3.2958) < 0.02


@pytest.mark.slow
def test_default_recipe_reaches_the_target_and_samples_look_like_names():
    """The acceptance run: `makemore train --type mlp` with no flags, dev <= 2.13 (lecture: 2.170)."""
    from makemore.config import TrainConfig
    from makemore.data import Dataset, Windows, bundled_names
    from makemore.evaluate import split_nll
    from makemore.sample import generate
    from makemore.train import Trainer

    data = Dataset.read(bundled_names())
    cls = REGISTRY["mlp"]
    torch.manual_seed(42)
    model = cls(cls.Config(vocab_size=27))
    Trainer(model, data, TrainConfig(**cls.train_defaults)).run()
    dev = split_nll(model, Windows(data.split("dev"), 3))
    print("mlp default recipe dev", dev)
    assert dev <= 2.13
    names = generate(model, data.vocab, 200, 30, torch.Generator().manual_seed(0))
    lengths = sorted(len(n) for n in names)
    print(names[:10], "median length", lengths[100])
    assert 4 <= lengths[100] <= 8  # names.txt's median length is 6
    vowels = sum(any(v in n for v in "aeiouy") for n in names)
    assert vowels >= 190  # noise from a context-blind model would often have none


@pytest.mark.parametrize("model_type", ["mlp", "mlp-bn"])
def test_part_3s_initialisations_give_the_lectures_first_losses(model_type):
    """naive: every weight N(0, 1), confidently wrong (the lecture's first loss: 27); each fix after it
    starts near ln 27 = 3.30, the loss of a uniform guess."""
    cls = REGISTRY[model_type]
    X, Y = Windows(Dataset.read(bundled_names()).split("train"), 3)[:4096]
    first = {}
    for init in INITS:
        torch.manual_seed(0)
        model = cls(cls.Config(vocab_size=27, init=init))
        with torch.no_grad():
            first[init] = F.cross_entropy(model(X), Y).item()
    print(model_type, {k: round(v, 2) for k, v in first.items()})
    assert first["naive"] > 15
    for init in ("small-output", "scaled", "kaiming"):
        assert abs(first[init] - math.log(27)) < 0.1, init


def test_an_unknown_init_is_refused():
    assert "--init must be one of naive, small-output, scaled, kaiming" in REGISTRY["mlp"].Config(init="x").problems()
