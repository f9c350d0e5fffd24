"""Part 4: the hand-written backward pass against autograd."""

import math

import pytest
import torch

from makemore import backprop
from makemore.config import TrainConfig
from makemore.data import Dataset, Windows, bundled_names
from makemore.gradcheck import gradcheck, gradcheck_params
from makemore.models.mlp_bn import MLPBN
from makemore.train import Hook, Trainer, batch_loss

from conftest import run_cli


@pytest.fixture(scope="module")
def report():
    return gradcheck(seed=42, batch_size=32)


@pytest.fixture(scope="module")
def data():
    return Dataset.read(bundled_names())


def test_all_26_rows_match_autograd_in_float32(report):
    rows = report["tables"]["float32"]["atomic"]
    assert [r["tensor"] for r in rows] == list(backprop.ORDER) and len(rows) == 26
    print("float32 max diff", max(r["maxdiff"] for r in rows))
    assert all(r["approx"] for r in rows), [r["tensor"] for r in rows if not r["approx"]]
    # the loss side up to W2/b2 is the same arithmetic as autograd's kernels: bitwise equal
    assert all(r["exact"] for r in rows[: backprop.ORDER.index("b2") + 1])


def test_float64_max_diff_at_most_1e_6(report):
    for kind in ("atomic", "fused"):
        rows = report["tables"]["float64"][kind]
        worst = max(r["maxdiff"] for r in rows)
        print(f"float64 {kind} max diff {worst:.3g}")
        assert worst <= 1e-6 and all(r["approx"] for r in rows)


def test_fused_forms_match_autograd(report):
    for dtype in ("float32", "float64"):
        fused = report["tables"][dtype]["fused"]
        assert [r["tensor"] for r in fused] == ["logits", "hprebn"] and all(r["approx"] for r in fused)


def test_every_manual_gradient_has_its_tensors_shape(data):
    """Shape hygiene: a (1, H) gradient for a (1, H) tensor, not a broadcastable (H,) or (n, H)."""
    torch.manual_seed(0)
    model = MLPBN(MLPBN.Config(vocab_size=27))
    p = gradcheck_params(model, torch.float64, 0)
    X, Y = Windows(data.split("train"), 3)[:32]
    t = backprop.forward_steps(p, X[:32], Y[:32])
    d = backprop.backward_steps(p, t, X[:32], Y[:32])
    assert set(d) == set(backprop.ORDER)
    for name in backprop.ORDER:
        tensor = p[name] if name in backprop.PARAMS else t[name]
        assert d[name].shape == tensor.shape, name


def test_bessel_correction_matters_in_the_fused_batchnorm_backward(data):
    """With 1/n instead of 1/(n-1) in the variance term the fused form would no longer match."""
    torch.manual_seed(0)
    p = gradcheck_params(MLPBN(MLPBN.Config(vocab_size=27)), torch.float64, 0)
    X, Y = Windows(data.split("train"), 3)[:32]
    _, _, mine = backprop.compare(p, X[:32], Y[:32])
    t = backprop.forward_steps(p, X[:32], Y[:32])
    n, dh, raw = 32, mine["hpreact"], t["bnraw"]
    wrong = p["bngain"] * t["bnvar_inv"] / n * (n * dh - dh.sum(0) - raw * (dh * raw).sum(0))
    right = backprop.batchnorm_backward(dh, p["bngain"], raw, t["bnvar_inv"])
    print(
        "fused vs atomic",
        (right - mine["hprebn"]).abs().max().item(),
        "biased form",
        (wrong - mine["hprebn"]).abs().max().item(),
    )
    assert torch.allclose(right, mine["hprebn"]) and not torch.allclose(wrong, mine["hprebn"])


def test_manual_grad_fills_every_parameter_and_updates_running_stats_like_forward(data):
    X, Y = Windows(data.split("train"), 3)[:128]
    models = []
    for _ in range(2):
        torch.manual_seed(3)
        models.append(MLPBN(MLPBN.Config(vocab_size=27)).train())
    auto, manual = models
    loss = batch_loss(auto, X, Y)
    loss.backward()
    with torch.no_grad():
        for p in manual.parameters():
            p.grad = None
    mloss = manual.manual_grad(X, Y)
    assert not mloss.requires_grad and torch.equal(mloss, loss.detach())  # same forward, bitwise
    assert torch.equal(manual.bn.running_mean, auto.bn.running_mean) and torch.equal(
        manual.bn.running_var, auto.bn.running_var
    )
    for (name, a), m in zip(auto.named_parameters(), manual.parameters()):
        diff = (a.grad - m.grad).abs().max().item()
        print(f"{name} max diff {diff:.3g}")
        assert m.grad.shape == a.shape and torch.allclose(m.grad, a.grad, atol=1e-7), name


class LossLog(Hook):
    def __init__(self):
        self.losses = []

    def on_step(self, trainer):
        self.losses.append(trainer.loss)


def _losses(data, manual: bool, steps: int = 1000) -> list[float]:
    """Per-step losses of the shared Trainer on mlp-bn's recipe, seed 1."""
    torch.manual_seed(1)
    model = MLPBN(MLPBN.Config(vocab_size=27))
    cfg = TrainConfig(
        **{
            **MLPBN.train_defaults,
            "max_steps": steps,
            "eval_interval": steps,
            "seed": 1,
            "device": "cpu",
            "manual_grad": manual,
        }
    )
    log = LossLog()
    Trainer(model, data, cfg, hooks=[log]).run()
    return log.losses


def test_manual_training_follows_autograd_step_for_step(data):
    auto = _losses(data, manual=False)
    manual = _losses(data, manual=True)
    worst = max(abs(a - m) for a, m in zip(auto, manual))
    print(f"1000 steps: max |loss difference| {worst:.3g}; final losses {auto[-1]:.4f} / {manual[-1]:.4f}")
    assert len(auto) == len(manual) == 1000 and all(map(math.isfinite, manual))
    assert worst < 1e-4
    assert manual[-1] < manual[0] - 0.5  # it did learn


def test_gradcheck_command_prints_both_tables(capsys):
    code, out, _ = run_cli(capsys, "gradcheck")
    assert code == 0 and "float32" in out and "float64" in out
    assert out.count("\nhpreact ") == 2 and out.count("True   True") >= 22  # the exact rows, twice


def test_manual_grad_on_a_model_without_it_is_one_clear_error(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "train", "--type", "mlp", "--manual-grad", "-o", tmp_path / "x", "--max-steps", "1", "-q"
    )
    assert code == 1 and "no hand-written backward" in err and "Traceback" not in err
