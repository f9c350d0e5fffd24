"""The transformer's pieces switched off one at a time (the "Let's build GPT" ladder), and the
speedrun's levers switched on: each option does what its help says, the model still keeps the
contract (causal, cached decoding, packed rows, checkpoints), still learns, and a run trained
without a piece loads back without it."""

import pytest
import torch
from torch import nn

from makemore import checkpoint
from makemore.checkpoint import Checkpoint, RunInfo
from makemore.data import Dataset
from makemore.models import REGISTRY
from makemore.sample import generate
from makemore.train import batch_loss

from conftest import run_cli

cls = REGISTRY["transformer"]
NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "charlotte", "amelia", "x", "evelyn", "jo"] * 3
SMALL = dict(n_layer=2, n_head=4, n_embd=16)
# the ladder's rungs as options (one head, several, the MLP, the residual stream, LayerNorm)
VARIANTS = {
    "one-head": dict(n_head=1, ffn=False, residual=False, layer_norm=False),
    "multi-head": dict(ffn=False, residual=False, layer_norm=False),
    "ffn": dict(residual=False, layer_norm=False),
    "residual": dict(layer_norm=False),
    "no-ffn": dict(ffn=False),
    "no-residual": dict(residual=False),
    "pytorch-init": dict(init="pytorch"),
    # the speedrun's levers (off by default)
    "qk-norm": dict(qk_norm=True),
    "relu2": dict(activation="relu2"),
    "zero-init": dict(zero_init=True),
    "rotary": dict(rotary=True),
    "soft-cap": dict(soft_cap=3.0),
    "value-embeddings": dict(value_embeddings=True),
}


def build(seed=0, data=None, **options):
    data = data or Dataset.from_items(NAMES)
    torch.manual_seed(seed)
    return cls(cls.config_for(data, **{**SMALL, **options})), data


def bold(model):
    """Weights moved off their init, so that no check passes because a branch starts near zero."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def test_each_option_removes_exactly_its_weights():
    full, _ = build()
    n, width = full.config.n_layer, full.config.n_embd
    mlp = sum(p.numel() for p in full.blocks[0].mlp.parameters()) + 2 * width  # with its LayerNorm ln_2
    layer_norms = (2 * n + 1) * 2 * width  # ln_1, ln_2 per block and ln_f, each a gain and a bias
    counts = {name: build(**VARIANTS[name])[0].num_params() for name in ("no-ffn", "residual", "no-residual")}
    print("parameters", full.num_params(), counts)
    assert counts["no-ffn"] == full.num_params() - n * mlp
    assert counts["residual"] == full.num_params() - layer_norms
    assert counts["no-residual"] == full.num_params()  # a connection has no weights
    no_ffn, _ = build(ffn=False)
    assert not any(".mlp." in k or ".ln_2." in k for k in no_ffn.state_dict())
    no_ln, _ = build(layer_norm=False)
    assert not any(isinstance(m, nn.LayerNorm) for m in no_ln.modules())


@torch.no_grad()
def test_without_the_residual_connection_a_branch_replaces_the_stream():
    x = torch.randn(2, 5, SMALL["n_embd"])
    for residual in (True, False):
        block = bold(build(ffn=False, residual=residual)[0]).blocks[0]
        branch = block.attn(block.ln_1(x))
        assert torch.allclose(block(x), x + branch if residual else branch)


def test_one_head_attends_with_a_single_map_per_layer():
    model = bold(build(n_head=1)[0])
    maps = model.attention(torch.tensor([[0, 5, 13, 13, 1]]))
    assert maps.shape == (SMALL["n_layer"], 1, 5, 5)


def test_pytorch_init_keeps_torchs_layer_defaults():
    """The lecture's code never re-initialises: embeddings N(0, 1), not GPT-2's N(0, 0.02)."""
    gpt2, pytorch = build()[0], build(init="pytorch")[0]
    print("token embedding std: gpt2", gpt2.wte.weight.std().item(), "pytorch", pytorch.wte.weight.std().item())
    assert gpt2.wte.weight.std() < 0.03 < 0.5 < pytorch.wte.weight.std()


@pytest.mark.parametrize("variant", VARIANTS)
@torch.no_grad()
def test_every_variant_keeps_the_contract(tmp_path, variant):
    """No prediction sees a later character; cached decoding, packed rows, sampling one row or
    several, and a checkpoint all give what a plain forward pass gives."""
    model, data = build(**VARIANTS[variant])
    model = bold(model)
    X, Y = model.examples(data.split("train"))[:]
    full = model(X)
    changed = X.clone()
    changed[:, 4:] = torch.randint(1, model.config.vocab_size, changed[:, 4:].shape)
    assert (model(changed)[:, :4] - full[:, :4]).abs().max() < 1e-5
    logits, state = model.decode(X[:, :3], None)
    rest, _ = model.decode(X[:, 3:], state)
    assert (torch.cat([logits, rest], 1) - full).abs().max() < 1e-4
    Xp, Yp, pos = model.shape_batch(X, Y, True)
    packed, padded = batch_loss(model, Xp, Yp, pos, reduction="sum"), batch_loss(model, X, Y, reduction="sum")
    assert abs(packed.item() - padded.item()) < 1e-3 * abs(padded.item())
    for n in (1, 5):  # one row: the sampler's NumPy path must not take a block it cannot fold
        cached = generate(model, data.vocab, n, 12, torch.Generator().manual_seed(0))[0]
        assert cached == generate(model, data.vocab, n, 12, torch.Generator().manual_seed(0), cache=False)[0]
    run = RunInfo(
        type="transformer",
        source="x.txt",
        max_item_len=100,
        max_len=data.max_len,
        params=model.num_params(),
        skipped_items=0,
    )
    checkpoint.save(tmp_path / "m.safetensors", Checkpoint(model=model, vocab=data.vocab, run=run))
    loaded = checkpoint.load(tmp_path / "m.safetensors").model
    assert loaded.config == model.config and torch.equal(loaded(X), full)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_learns(variant):
    model, data = build(**VARIANTS[variant])
    X, Y = model.examples(data.split("train"))[:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = batch_loss(model.train(), X, Y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    print(variant, "loss", losses[0], "->", losses[-1])
    assert losses[-1] < losses[0] - 0.3


def test_a_rung_trained_from_the_command_line_loads_back_without_its_pieces(tmp_path, capsys, small_names):
    """The ladder's first rung (one head, nothing else) under the lecture's recipe: the run's checkpoint
    says what was off, and eval and sample rebuild that model."""
    out = tmp_path / "rung"
    argv = ["train", "--type", "transformer", "--preset", "lecture", "-i", small_names, "-o", out, "-q"]
    rung = ["--n-layer", "1", "--n-head", "1", "--no-ffn", "--no-residual", "--no-layer-norm"]
    code, _, err = run_cli(capsys, *argv, *rung, "--max-steps", "3", "--eval-interval", "3", "--threads", "1")
    assert code == 0, err
    loaded = checkpoint.load(out / checkpoint.BEST)
    config, recipe = loaded.model.config, loaded.train_config
    assert (config.n_head, config.ffn, config.residual, config.layer_norm) == (1, False, False, False)
    lecture = cls.presets["lecture"]
    assert (config.init, config.n_embd, config.dropout) == (lecture["init"], lecture["n_embd"], lecture["dropout"])
    assert (recipe.schedule, recipe.batch_size, recipe.ema) == (lecture["schedule"], lecture["batch_size"], 0.0)
    assert not any(isinstance(m, nn.LayerNorm) for m in loaded.model.modules())
    code, out_text, err = run_cli(capsys, "sample", "-o", out, "-n", "3", "--seed", "0")
    assert code == 0 and len(out_text.splitlines()) == 3, err


def test_an_unknown_init_is_one_line(capsys):
    code, _, err = run_cli(capsys, "train", "--type", "transformer", "--init", "xavier", "--max-steps", "1")
    assert code != 0 and "--init must be 'gpt2' or 'pytorch'" in err and "Traceback" not in err


def test_rotary_positions_make_attention_depend_on_distance_only():
    """With RoPE a query-key product is unchanged when both tokens move by the same offset."""
    from makemore.models.transformer import rotary_angles, rotate

    q, k = torch.randn(1, 2, 1, 8), torch.randn(1, 2, 1, 8)
    scores = []
    for shift in (0, 5):
        pos_q, pos_k = torch.tensor([3 + shift]), torch.tensor([1 + shift])
        scores.append((rotate(q, rotary_angles(pos_q, 8)) * rotate(k, rotary_angles(pos_k, 8))).sum(-1))
    assert torch.allclose(scores[0], scores[1], atol=1e-5)
    model = build(rotary=True)[0]
    assert not hasattr(model, "wpe") and not any("wpe" in k for k in model.state_dict())


def test_qk_norm_gives_queries_and_keys_unit_root_mean_square():
    model = build(qk_norm=True)[0]
    attn = model.blocks[0].attn
    q, k, _ = attn.queries_keys_values(5 * torch.randn(2, 6, SMALL["n_embd"]))
    for t in (q, k):  # the gain starts at 1
        assert torch.allclose(t.pow(2).mean(-1), torch.ones(()), atol=1e-4)
    assert model.num_params() == build()[0].num_params() + SMALL["n_layer"] * 2 * (SMALL["n_embd"] // SMALL["n_head"])


@torch.no_grad()
def test_zero_init_starts_every_block_as_the_identity_and_predicts_uniformly():
    model = build(zero_init=True)[0].eval()
    x = torch.randn(2, 5, SMALL["n_embd"])
    assert torch.equal(model.blocks[0](x), x)
    logits = model(torch.tensor([[0, 5, 13]]))
    assert torch.allclose(logits, logits[..., :1].expand_as(logits))  # the head's bias only: all equal


@torch.no_grad()
def test_soft_cap_bounds_the_logits_and_relu2_is_relu_squared():
    from makemore.models.transformer import ReLUSquared

    model = bold(build(soft_cap=2.0)[0])
    model.lm_head.weight.mul_(10)
    idx = torch.tensor([[0, 5, 13, 1]])
    capped = model(idx)
    model.config.soft_cap = 0.0
    raw = model(idx)
    assert raw.abs().max() > 4 and capped.abs().max() <= 2.0
    assert torch.allclose(capped, 2.0 * torch.tanh(raw / 2.0))
    x = torch.linspace(-2, 2, 9)
    assert torch.equal(ReLUSquared()(x), torch.where(x > 0, x * x, torch.zeros(())))


def test_the_levers_are_one_line_errors_when_wrong(capsys):
    for flags, message in (
        (["--activation", "tanh"], "--activation must be one of gelu, relu2"),
        (["--soft-cap", "-1"], "--soft-cap must be >= 0"),
        (["--rotary", "--n-embd", "12", "--n-head", "4"], "--rotary needs an even head size"),
    ):
        code, _, err = run_cli(capsys, "train", "--type", "transformer", "--max-steps", "1", *flags)
        assert code != 0 and message in err and "Traceback" not in err
