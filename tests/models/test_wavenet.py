"""WaveNet: the lecture's size, and the hierarchical and convolutional forms as one function."""

import json

import pytest
import torch
import torch.nn.functional as F

from makemore.data import Dataset, Rows, Split, Windows, bundled_names
from makemore.models import REGISTRY
from makemore.models.wavenet import WaveNet, WaveNetConv
from makemore.sample import generate
from makemore.train import batch_loss

from conftest import run_cli


@pytest.fixture(scope="module")
def names():
    return Dataset.read(bundled_names())


def pair(seed=0, dtype=torch.float64, **overrides):
    """A hierarchical model with trained-looking BatchNorm statistics, and the conv form with its weights."""
    torch.manual_seed(seed)
    tree = WaveNet(WaveNet.Config(vocab_size=27, **overrides)).to(dtype)
    with torch.no_grad():  # running statistics far from their (0, 1) init, so a mix-up would show
        for level in tree.levels:
            level.bn.running_mean.normal_()
            level.bn.running_var.uniform_(0.5, 2.0)
            level.bn.gamma.uniform_(0.5, 1.5)
            level.bn.beta.normal_()
    span = tree.config.context_size
    conv = WaveNetConv(
        WaveNetConv.Config(
            vocab_size=27,
            receptive_field=span,
            n_embd=tree.config.n_embd,
            n_hidden=tree.config.n_hidden,
            level=tree.config.level,
        )
    ).to(dtype)
    conv.load_state_dict(tree.state_dict(), strict=True)  # same parameter names: the same network
    return tree, conv


GATED = dict(level="gated", n_embd=16, n_hidden=16)


def test_lecture_configuration_has_76579_parameters():
    model = REGISTRY["wavenet"](REGISTRY["wavenet"].Config(vocab_size=27))
    assert (model.config.context_size, model.config.n_embd, model.config.n_hidden) == (8, 24, 128)
    assert model.num_params() == 76579
    assert model(torch.zeros(5, 8, dtype=torch.long)).shape == (5, 27)
    assert all(not hasattr(level, "bias") for level in model.levels)  # BatchNorm's beta is the bias


def test_output_layer_starts_small_so_initial_loss_is_near_uniform(names):
    torch.manual_seed(0)
    model = WaveNet(WaveNet.Config(vocab_size=27))
    loss = batch_loss(model, *Windows(names.split("train"), 8)[:2000]).item()
    print(f"initial loss {loss:.4f} vs ln 27 = {torch.log(torch.tensor(27.0)):.4f}")
    assert abs(loss - torch.log(torch.tensor(27.0)).item()) < 0.05


@pytest.mark.parametrize("options", [{}, GATED], ids=["tanh", "gated"])
def test_conv_form_equals_hierarchical_form_at_every_position_in_eval_mode(names, options):
    tree, conv = pair(**options)
    tree.eval(), conv.eval()
    dev = names.split("dev")
    first_300 = Split(dev.tokens, dev.offsets[:301])
    X, Y = Rows(first_300)[:]
    windows, _ = Windows(first_300, 8)[:]
    by_window = tree(windows)  # one window per predicted character
    by_item = conv(X)[Y != -1]  # one pass per item, the same positions in the same order
    diff = (by_item - by_window).abs().max().item()
    print(f"max |conv - hierarchical| over {len(windows)} positions: {diff:.2e}")
    assert by_item.shape == by_window.shape and diff < 1e-12


def test_conv_form_equals_torch_conv1d_with_the_same_weights(names):
    """An independent reference: each level as F.conv1d(kernel 2, dilation 2**i) on left-padded input."""
    _, conv = pair(seed=1)
    conv.eval()
    X = Rows(names.split("dev"))[:100][0]
    x = conv.wte(F.pad(X, (7, 0))).transpose(1, 2)  # (B, C, T + 7): channels first for conv1d
    for i, level in enumerate(conv.levels):
        C = level.weight.size(0) // 2
        kernel = torch.stack([level.weight[:C].T, level.weight[C:].T], dim=-1)  # (H, C, 2): [older, newer]
        h = F.conv1d(x, kernel, dilation=2**i)
        bn = level.bn
        x = torch.tanh(F.batch_norm(h, bn.running_mean, bn.running_var, bn.gamma, bn.beta, training=False, eps=bn.eps))
    reference = conv.lm_head(x.transpose(1, 2))
    diff = (conv(X) - reference).abs().max().item()
    print(f"max |conv form - F.conv1d reference|: {diff:.2e}")
    assert diff < 1e-12


@pytest.mark.parametrize("options", [{}, GATED], ids=["tanh", "gated"])
def test_conv_training_step_is_the_hierarchical_step_on_all_windows_of_the_items(names, options):
    """Weighted BatchNorm statistics make a batch of items train exactly like all its windows."""
    tree, conv = pair(**options, seed=2)
    train = names.split("train")
    first_64 = Split(train.tokens, train.offsets[:65])
    X, Y = Rows(first_64)[:]
    loss_tree = batch_loss(tree, *Windows(first_64, 8)[:])
    loss_conv = batch_loss(conv, X, Y)
    loss_tree.backward(), loss_conv.backward()
    grad_diff = max((a.grad - b.grad).abs().max().item() for a, b in zip(tree.parameters(), conv.parameters()))
    stat_diff = max((a - b).abs().max().item() for a, b in zip(tree.buffers(), conv.buffers()))
    print(
        f"loss {loss_tree.item():.6f} vs {loss_conv.item():.6f}; max grad diff {grad_diff:.2e}; "
        f"max running-stat diff {stat_diff:.2e}"
    )
    assert abs(loss_tree.item() - loss_conv.item()) < 1e-12
    assert grad_diff < 1e-12 and stat_diff < 1e-12


@pytest.mark.parametrize("options", [{}, GATED], ids=["tanh", "gated"])
def test_cached_decoding_equals_full_recomputation(names, options):
    _, conv = pair(**options, seed=3, dtype=torch.float32)
    conv.eval()
    X = Rows(names.split("dev"))[:20][0]
    X = F.pad(X, (0, max(0, 12 - X.size(1))))[:, :12]  # 12 positions, padded if these items are shorter
    logits, state = conv.decode(X[:, :2])
    steps = [logits]
    for t in range(2, 12):
        logits, state = conv.decode(X[:, t : t + 1], state)
        steps.append(logits)
    diff = (torch.cat(steps, dim=1) - conv(X)).abs().max().item()
    print(f"max |cached - full| over 12 positions: {diff:.2e}")
    assert diff < 1e-5


@pytest.mark.parametrize("options", [{}, GATED], ids=["tanh", "gated"])
def test_both_forms_sample_the_same_items_from_the_same_weights(names, options):
    tree, conv = pair(**options, seed=4, dtype=torch.float32)
    a = generate(tree, names.vocab, 50, 15, torch.Generator().manual_seed(0))
    b = generate(conv, names.vocab, 50, 15, torch.Generator().manual_seed(0))  # cached path
    print(a[:5], b[:5])
    assert a == b and len(set(a)) > 10


def test_bn_momentum_sets_how_far_running_statistics_move_per_step():
    torch.manual_seed(0)
    model = WaveNet(WaveNet.Config(vocab_size=27, bn_momentum=0.25)).double()
    idx = torch.randint(0, 27, (64, 8))
    x = model.wte(idx).view(64, 4, 48) @ model.levels[0].weight  # level 1's pre-BatchNorm activations
    model(idx)
    expected = 0.75 * torch.zeros(128) + 0.25 * x.mean((0, 1))  # explicit lerp from the (0, 1) init
    diff = (model.levels[0].bn.running_mean - expected).abs().max().item()
    print(f"running mean vs explicit lerp: max diff {diff:.2e}")
    assert diff < 1e-12 and all(level.bn.momentum == 0.25 for level in model.levels)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--type", "wavenet", "--context-size", "6"], "power of 2"),
        (["--type", "wavenet-conv", "--receptive-field", "12"], "power of 2"),
        (["--type", "wavenet", "--dropout", "1.0"], "dropout"),
        (["--type", "wavenet", "--bn-momentum", "0"], "bn-momentum"),
        (["--type", "wavenet", "--preset", "nonesuch"], "no preset 'nonesuch'"),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path, capsys, argv, message):
    code, _, err = run_cli(capsys, "train", "-o", tmp_path / "r", "--max-steps", "1", *argv)
    assert code == 1 and message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("model_type", ["wavenet", "wavenet-conv"])
def test_preset_best_sets_its_options_and_explicit_flags_win(tmp_path, capsys, model_type, small_names):
    best = REGISTRY[model_type].presets["best"]
    code, _, err = run_cli(
        capsys,
        "train",
        "--type",
        model_type,
        "--preset",
        "best",
        "-i",
        small_names,
        "-o",
        tmp_path / "r",
        "-q",
        "--max-steps",
        "3",
        "--eval-interval",
        "3",
    )
    assert code == 0, err
    meta = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    assert meta["step"] == 3
    from makemore import checkpoint

    saved, _ = checkpoint._read(tmp_path / "r" / checkpoint.BEST)
    model_keys = {k: v for k, v in best.items() if k in saved["config"]}
    flags = ("max_steps", "eval_interval")  # given on the command line
    train_keys = {k: v for k, v in best.items() if k not in saved["config"] and k not in flags}
    assert model_keys and all(saved["config"][k] == v for k, v in model_keys.items())
    assert all(saved["train_config"][k] == v for k, v in train_keys.items())
    assert saved["train_config"]["max_steps"] == 3  # the flag beat the preset


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["wavenet", "wavenet-conv"])
def test_short_training_is_deterministic_and_learns(tmp_path, capsys, model_type, small_names):
    runs = []
    for name in ("a", "b"):
        code, out, err = run_cli(
            capsys,
            "train",
            "--type",
            model_type,
            "-i",
            small_names,
            "-o",
            tmp_path / name,
            "-q",
            "--max-steps",
            "150",
            "--eval-interval",
            "150",
            "--warmup-steps",
            "10",
        )
        assert code == 0, err
        runs.append(out)
    print(runs[0])
    assert runs[0].split("(best")[0] == runs[1].split("(best")[0]  # same seed, same numbers
    dev = float(runs[0].split("dev ")[1].split()[0])
    assert dev < 3.0  # from ln 27 = 3.30 (BatchNorm running statistics, momentum 0.001, still lag)


def test_gated_level_is_the_papers_gate_with_a_residual_connection():
    torch.manual_seed(0)
    model = (
        WaveNet(WaveNet.Config(vocab_size=27, context_size=8, level="gated", n_embd=16, n_hidden=16)).double().eval()
    )
    level, x = model.levels[1], torch.randn(5, 32, dtype=torch.float64)  # pairs [older, newer] of width 16
    bn = level.bn
    z = (x @ level.weight - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.gamma + bn.beta
    expected = x[:, 16:] + (torch.tanh(z[:, :16]) * torch.sigmoid(z[:, 16:])) @ level.proj
    diff = (level(x) - expected).abs().max().item()
    print("max |gated level - explicit formula|:", diff)
    assert diff < 1e-12 and all(lv.residual for lv in model.levels)
    wider = WaveNet(WaveNet.Config(vocab_size=27, level="gated", n_embd=24, n_hidden=128))
    assert [lv.residual for lv in wider.levels] == [False, True, True]  # level 1 changes the width


def test_bn_per_position_is_the_lectures_batchnorm1d_on_3d_input():
    """--bn-per-position: each position of a level has its own statistics, taken over the batch only,
    as the lecture's x.mean(0, keepdim=True) / x.var(0, keepdim=True) on (B, T, C) gave before its fix."""
    torch.manual_seed(0)
    model = WaveNet(WaveNet.Config(vocab_size=27, n_embd=10, n_hidden=68, bn_per_position=True)).double()
    assert model.num_params() == 22397  # the lecture's hierarchical net: the statistics are buffers
    assert [tuple(level.bn.running_mean.shape) for level in model.levels] == [(4, 68), (2, 68), (1, 68)]
    idx = torch.randint(0, 27, (32, 8))
    x = model.wte(idx).view(32, 4, 20) @ model.levels[0].weight
    reference = (x - x.mean(0, keepdim=True)) / torch.sqrt(x.var(0, keepdim=True) + 1e-5)  # gamma 1, beta 0
    level1 = model.levels[0].bn(x)
    diff = (level1 - reference).abs().max().item()
    print(f"per-position BatchNorm vs the lecture's arithmetic: max diff {diff:.2e}")
    assert diff < 1e-12
    pooled = WaveNet(WaveNet.Config(vocab_size=27, n_embd=10, n_hidden=68)).double()
    assert not torch.allclose(pooled.levels[0].bn(x), reference)  # the fix pools batch and positions
    model.eval()
    assert model(idx).shape == (32, 27)  # eval mode reads each position's running statistics


def test_preset_lecture_is_the_lectures_loop():
    for model_type, step_at in (("mlp", 0.5), ("mlp-bn", 0.5), ("wavenet", 0.75)):
        lecture = REGISTRY[model_type].presets["lecture"]
        loop = dict(optimizer="sgd", batch_size=32, learning_rate=0.1, schedule="step", max_steps=200000)
        assert lecture.items() >= (loop | dict(step_at=step_at, warmup_steps=0, weight_decay=0.0)).items()
    assert REGISTRY["mlp"].presets["lecture"]["init"] == "naive"  # Part 2's N(0, 1) weights
    assert REGISTRY["wavenet"].presets["lecture"]["bn_momentum"] == 0.1  # Part 5's BatchNorm1d layer
