import json
import math

import pytest
import torch
import torch.nn.functional as F

from makemore.cli import main
from makemore.diagnose import SATURATED, Probe
from makemore.models.mlp_bn import MLPBNDeep

from conftest import run_cli


def small_deep(seed=0):
    torch.manual_seed(seed)
    return MLPBNDeep(MLPBNDeep.Config(vocab_size=27, n_layer=3, n_hidden=24))


def test_probe_matches_autograd_and_the_update_rule():
    model = small_deep()
    probe = Probe(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    probe.attach(opt)
    gen = torch.Generator().manual_seed(0)
    X, Y = torch.randint(0, 27, (64, 3), generator=gen), torch.randint(0, 27, (64,), generator=gen)
    model.train()
    # the reference: the same forward by hand, gradients w.r.t. the tanh outputs by torch.autograd.grad
    snapshot = {n: p.detach().clone() for n, p in model.named_parameters()}
    ref_model = small_deep()
    ref_model.load_state_dict(model.state_dict())
    ref_model.train()
    x, outs = ref_model.C[X].view(64, -1), []
    for layer in ref_model.layers:
        x = layer(x)
        if isinstance(layer, torch.nn.Tanh):
            outs.append(x)
    ref_grads = torch.autograd.grad(F.cross_entropy(x, Y), outs + [p for p in ref_model.parameters() if p.dim() == 2])

    with model.probing(probe.keep):
        loss = F.cross_entropy(model(X), Y)
    opt.zero_grad()
    loss.backward()
    opt.step()

    d_act = max((probe.acts[f"tanh {i + 1}"] - o.detach()).abs().max().item() for i, o in enumerate(outs))
    d_grad = max((probe.grads[f"tanh {i + 1}"] - g).abs().max().item() for i, g in enumerate(ref_grads[: len(outs)]))
    print("probe vs reference: activations", d_act, "tanh gradients", d_grad)
    assert d_act < 1e-6 and d_grad < 1e-8
    stats = probe.layer_stats()
    for row, o in zip(stats, outs):
        assert row["saturated_pct"] == pytest.approx(100 * (o.abs() > SATURATED).float().mean().item())
    # SGD without weight decay: the update is lr * grad, so the ratio is log10(lr std(grad) / std(data))
    for name, g in zip([n for n, p in model.named_parameters() if p.dim() == 2], ref_grads[len(outs) :]):
        want = math.log10((0.1 * g).std().item() / snapshot[name].std().item())
        got = probe.update_ratios[name][-1]
        print(f"{name}: update ratio {got:.6f} vs lr*grad {want:.6f}")
        assert got == pytest.approx(want, abs=1e-4)
        ratio = next(r["grad_to_data"] for r in probe.weight_stats() if r["weight"] == name)
        assert ratio == pytest.approx(g.std().item() / snapshot[name].std().item(), rel=1e-4)


def test_diagnose_writes_plots_and_json_for_the_deep_net(capsys, tmp_path, small_names):
    run = tmp_path / "deep"
    assert (
        main(
            [
                "train",
                "--type",
                "mlp-bn-deep",
                "-i",
                str(small_names),
                "-o",
                str(run),
                "--max-steps",
                "200",
                "--n-layer",
                "3",
                "--n-hidden",
                "32",
                "-q",
            ]
        )
        == 0
    )
    capsys.readouterr()
    code, out, err = run_cli(capsys, "diagnose", "-o", run, "--steps", "60")
    print(out, err)
    assert code == 0
    report = json.loads((run / "diagnostics" / "diagnostics.json").read_text())
    for name in report["plots"]:
        assert (run / "diagnostics" / name).stat().st_size > 10_000  # a real image, not an empty canvas
    assert "variants_saturation.png" in report["plots"]
    variants = report["variants"]
    assert len(variants) == 5  # the run's config + no norm (gain 5/3, 1, 5) + batchnorm gain 5
    for r in variants.values():
        assert len(r["layers"]) == 3 and all(len(s) == 60 for s in r["update_ratio"].values())
    # a bad init (gain 5, no BatchNorm) saturates tanh far more than the BatchNorm net
    sat = {k: max(row["saturated_pct"] for row in r["layers"]) for k, r in variants.items()}
    print("max saturation per variant:", sat)
    assert sat["none, gain 5"] > 2 * sat[next(iter(variants))]
    assert abs(report["expected_init_loss"] - math.log(27)) < 1e-9


def test_the_plain_mlp_replays_part_3s_initialisations(capsys, mlp_run, tmp_path):
    """The first half of Part 3, on the plain mlp: naive init is confidently wrong (the hockey
    stick's first loss, ~27 in the lecture), the small output layer fixes the loss but leaves tanh
    saturated, scaling W1 fixes that."""
    code, out, err = run_cli(capsys, "diagnose", "-o", mlp_run, "--out", tmp_path, "--steps", "50")
    assert code == 0, err
    print(out)
    report = json.loads((tmp_path / "diagnostics.json").read_text())
    variants = {name: r for name, r in report["variants"].items()}
    first = {name.split("init ")[-1]: r["init_loss"] for name, r in variants.items()}
    sat = {name.split("init ")[-1]: r["layers"][0]["saturated_pct"] for name, r in variants.items()}
    assert first["naive"] > 15 and all(abs(first[i] - math.log(27)) < 0.1 for i in ("small-output", "scaled"))
    assert sat["small-output"] > 2 * sat["scaled"]


def test_diagnose_refuses_a_model_without_tanh(capsys, tmp_path):
    run = tmp_path / "bigram"
    assert main(["train", "--type", "bigram", "-o", str(run), "-q"]) == 0
    code, out, err = run_cli(capsys, "diagnose", "-o", run)
    print(err)
    assert code == 1 and "offers no tanh layers" in err and "Traceback" not in err


def test_a_replay_that_diverges_is_one_line(capsys, tmp_path):
    run = tmp_path / "bn"
    assert main(["train", "--type", "mlp-bn", "-o", str(run), "--max-steps", "20", "--eval-interval", "20", "-q"]) == 0
    code, _, err = run_cli(capsys, "diagnose", "-o", run, "--steps", "5", "-l", "1e30")
    assert (
        code == 1
        and "the replay's " in err
        and "became" in err
        and "lower --learning-rate" in err
        and "Traceback" not in err
    )
