import copy

import pytest
import torch

from makemore.config import TrainConfig
from makemore.errors import MakemoreError
from makemore.models import REGISTRY
from makemore.optim import Muon, Optimizers, make_optimizer, orthogonalise
from makemore.train import check_recipe


def _tiny_transformer():
    cls = REGISTRY["transformer"]
    torch.manual_seed(0)
    return cls(cls.Config(vocab_size=27, max_len=7, n_layer=2, n_head=2, n_embd=16, dropout=0, emb_dropout=0))


@pytest.mark.parametrize("polynomial", ["quintic", "polar"])
def test_orthogonalise_keeps_singular_vectors_and_evens_singular_values(polynomial):
    G = torch.randn(3, 16, 48, dtype=torch.float64) * torch.logspace(-2, 1, 48, dtype=torch.float64)
    ortho = orthogonalise(G.float(), polynomial=polynomial).double()
    U, S, Vh = torch.linalg.svd(G, full_matrices=False)
    inner = U.mT @ ortho @ Vh.mT  # diagonal when ortho = U S' Vᵀ
    off = inner - torch.diag_embed(torch.diagonal(inner, dim1=1, dim2=2))
    print("largest off-diagonal", off.abs().max().item(), "singular values", torch.diagonal(inner, dim1=1, dim2=2))
    assert off.abs().max() < 1e-3
    s = torch.linalg.svdvals(ortho)
    assert s.min() > 0.5 and s.max() < 1.3, s


def test_polar_express_takes_the_smallest_singular_values_closer_to_one():
    torch.manual_seed(0)
    G = torch.randn(4, 64, 256)
    worst = {p: torch.linalg.svdvals(orthogonalise(G, polynomial=p)).min().item() for p in ("quintic", "polar")}
    print("smallest singular value after five iterations", worst)
    assert worst["polar"] > worst["quintic"] + 0.1


def test_muon_steps_like_torchs_muon():
    """Held against torch.optim.Muon (which orthogonalises in bfloat16): the same direction and size."""
    torch.manual_seed(1)
    weights = [torch.randn(24, 40), torch.randn(40, 24), torch.randn(24, 40)]
    grads = [torch.randn_like(w) for w in weights]
    ours = [w.clone().requires_grad_() for w in weights]
    theirs = [w.clone().requires_grad_() for w in weights]
    opt_ours = Muon(ours, lr=0.01, weight_decay=0.1)
    opt_theirs = torch.optim.Muon(theirs, lr=0.01, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
    for _ in range(3):
        for params, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
    for w, a, b in zip(weights, ours, theirs):
        da, db = (a.detach() - w).flatten(), (b.detach() - w).flatten()
        cosine = torch.dot(da, db) / (da.norm() * db.norm())
        print(tuple(w.shape), "cosine", cosine.item(), "size ratio", (da.norm() / db.norm()).item())
        assert cosine > 0.99
        assert abs(da.norm() / db.norm() - 1) < 0.03


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest():
    model = _tiny_transformer()
    opt = make_optimizer(model, TrainConfig(optimizer="muon"), torch.device("cpu"))
    adamw, muon = opt.optimizers
    hidden = {id(p) for p in model.hidden_matrices()}
    assert {id(p) for g in muon.param_groups for p in g["params"]} == hidden
    assert len(hidden) == 2 * 4  # 2 blocks, each: attention in and out, MLP in and out
    assert not hidden & {id(p) for g in adamw.param_groups for p in g["params"]}
    assert len(opt.param_groups) == 3


def test_beta2_reaches_adamw():
    model = REGISTRY["mlp"](REGISTRY["mlp"].Config(vocab_size=27))
    opt = make_optimizer(model, TrainConfig(beta2=0.99), torch.device("cpu"))
    assert all(group["betas"] == (0.9, 0.99) for group in opt.param_groups)


def test_muon_needs_a_model_that_names_its_hidden_matrices():
    cls = REGISTRY["bigram-nn"]
    model = cls(cls.Config(vocab_size=27))
    with pytest.raises(MakemoreError, match="no hidden matrices"):
        check_recipe(model, TrainConfig(optimizer="muon"))


def _steps(model, opt, n, seed):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        X = torch.randint(1, 27, (4, 8), generator=gen)
        opt.zero_grad()
        model(X).logsumexp(-1).mean().backward()
        opt.step()


def test_optimizers_state_round_trips():
    """Saved after 3 steps and loaded into a fresh optimizer, the next 3 steps are those of an
    uninterrupted run, bit for bit."""
    straight = _tiny_transformer()
    opt = make_optimizer(straight, TrainConfig(optimizer="muon"), torch.device("cpu"))
    _steps(straight, opt, 3, seed=0)
    resumed = _tiny_transformer()
    resumed.load_state_dict(straight.state_dict())
    saved = copy.deepcopy(opt.state_dict())  # as a checkpoint holds it: not the live tensors
    assert sorted(saved["state"]) == list(range(sum(len(g["params"]) for g in saved["param_groups"])))
    again = make_optimizer(resumed, TrainConfig(optimizer="muon"), torch.device("cpu"))
    again.load_state_dict(saved)
    _steps(straight, opt, 3, seed=1)
    _steps(resumed, again, 3, seed=1)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert isinstance(again, Optimizers)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_weight_decay_reaches_matrices_only_as_the_help_says(optimizer):
    """One step with a zero gradient: only the decay moves a weight. Biases and gains stay put."""
    model = _tiny_transformer()
    before = copy.deepcopy(model.state_dict())
    cfg = TrainConfig(optimizer=optimizer, learning_rate=0.1, weight_decay=0.5)
    opt = make_optimizer(model, cfg, torch.device("cpu"))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, p in model.named_parameters():
        moved = not torch.equal(p.detach(), before[name])
        assert moved == (p.dim() >= 2), name
    assert "matrices only" in TrainConfig.__dataclass_fields__["weight_decay"].metadata["help"]


def test_muon_refuses_a_hidden_weight_that_is_not_a_matrix_in_one_line():
    model = _tiny_transformer()
    conv = torch.nn.Parameter(torch.zeros(4, 3, 2))
    model.hidden_matrices = lambda: [conv]  # a model that names a convolution's 3-D weight
    with pytest.raises(MakemoreError, match=r"names a weight of shape \(4, 3, 2\)"):
        check_recipe(model, TrainConfig(optimizer="muon"))
