"""The model contract, held for every registered model: a new model gets all of it by its one
registry line. Each model is built from data with its own defaults (config_for), with weights
moved off their initial values so that no check passes by symmetry."""

import pytest
import torch

from makemore import checkpoint
from makemore.checkpoint import Checkpoint, RunInfo
from makemore.config import flag
from makemore.data import IGNORE, Dataset
from makemore.models import REGISTRY
from makemore.sample import generate
from makemore.train import batch_loss

from conftest import run_cli

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "charlotte", "amelia", "x", "evelyn", "jo"] * 3
LONG_ITEM = "abcdefghij" * 30  # one 300-character item: max_len sizes no weight of most sequence models
TYPES = list(REGISTRY)


def model_for(model_type: str, items=NAMES, seed: int = 0):
    data = Dataset.from_items(items)
    cls = REGISTRY[model_type]
    torch.manual_seed(seed)
    model = cls(cls.config_for(data))
    with torch.no_grad():  # bold weights and buffers: LayerNorm / BatchNorm far from identity
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point():
                t.add_(0.3 * torch.randn_like(t))
        for norm in model.batchnorms():
            norm.running_var.abs_()
    return model.eval(), data


def batch(model, data):
    X, Y = model.examples(data.split("train"))[:]
    return X, Y


@pytest.mark.parametrize("model_type", TYPES)
@torch.no_grad()
def test_one_example_alone_gets_the_logits_it_gets_in_a_batch(model_type):
    model, data = model_for(model_type)
    X, _ = batch(model, data)
    together = model(X)
    for i in (0, 3, len(X) - 1):
        alone = model(X[i : i + 1])[0]
        assert (alone - together[i]).abs().max() < 1e-5, i


@pytest.mark.parametrize("model_type", [t for t in TYPES if REGISTRY[t].Config.__dataclass_fields__.get("max_len")])
@torch.no_grad()
def test_a_prediction_never_sees_a_later_character(model_type):
    model, data = model_for(model_type)
    X, _ = batch(model, data)
    full = model(X)
    for t in range(1, X.size(1) - 1):
        changed = X.clone()
        changed[:, t + 1 :] = torch.randint(1, model.config.vocab_size, changed[:, t + 1 :].shape)
        assert (model(changed)[:, : t + 1] - full[:, : t + 1]).abs().max() < 1e-5, t


def _decoded(model, X, chunks=(3, 1, 2)):
    """The logits of every position of X, decoded a few tokens at a time."""
    pieces, state, t, k = [], None, 0, 0
    while t < X.size(1):
        n = chunks[min(k, len(chunks) - 1)]
        logits, state = model.decode(X[:, t : t + n], state)
        pieces.append(logits)
        t, k = t + n, k + 1
    return torch.cat(pieces, dim=1)


INCREMENTAL = [t for t in TYPES if REGISTRY[t].can("decode")]


@pytest.mark.parametrize("model_type", INCREMENTAL)
@torch.no_grad()
def test_incremental_decoding_gives_the_logits_of_forward_also_after_new_weights(model_type):
    model, data = model_for(model_type)
    X, _ = batch(model, data)
    assert (_decoded(model, X) - model(X)).abs().max() < 1e-4
    other, _ = model_for(model_type, seed=1)
    model.load_state_dict({k: v.clone() for k, v in other.state_dict().items()}, assign=True)
    assert (_decoded(model, X) - other(X)).abs().max() < 1e-4


@pytest.mark.parametrize("model_type", INCREMENTAL)
def test_sampling_with_the_cache_draws_what_full_recomputation_draws(model_type):
    model, data = model_for(model_type)
    for n in (1, 7):  # one row (a speed path may take it) and a batch
        cached = [generate(model, data.vocab, n, 12, torch.Generator().manual_seed(s))[0] for s in range(5)]
        plain = [generate(model, data.vocab, n, 12, torch.Generator().manual_seed(s), cache=False)[0] for s in range(5)]
        assert cached == plain


@pytest.mark.parametrize("model_type", [t for t in TYPES if REGISTRY[t].can("pack")])
@torch.no_grad()
def test_packed_rows_give_the_loss_of_padded_items(model_type):
    model, data = model_for(model_type)
    X, Y = batch(model, data)
    Xp, Yp, pos = model.shape_batch(X, Y, True)
    assert pos is not None and Xp.numel() < X.numel()
    packed, padded = batch_loss(model, Xp, Yp, pos, reduction="sum"), batch_loss(model, X, Y, reduction="sum")
    assert int((Yp != IGNORE).sum()) == int((Y != IGNORE).sum())
    assert abs(packed.item() - padded.item()) < 1e-3 * abs(padded.item())


@pytest.mark.parametrize("model_type", TYPES)
@torch.no_grad()
def test_a_checkpoint_round_trip_gives_the_same_logits_even_with_a_long_item(tmp_path, model_type):
    model, data = model_for(model_type, items=NAMES + [LONG_ITEM])
    run = RunInfo(
        type=model_type,
        source="x.txt",
        max_item_len=1000,
        max_len=data.max_len,
        params=model.num_params(),
        skipped_items=0,
    )
    checkpoint.save(tmp_path / "m.safetensors", Checkpoint(model=model, vocab=data.vocab, run=run))
    loaded = checkpoint.load(tmp_path / "m.safetensors").model
    X, _ = batch(model, Dataset.from_items(NAMES, vocab=data.vocab))
    assert torch.equal(loaded(X), model(X))


@pytest.mark.parametrize("model_type", TYPES)
def test_a_small_model_with_a_long_item_trains_loads_and_evaluates(capsys, tmp_path, model_type):
    data = tmp_path / "long.txt"
    data.write_text("\n".join([LONG_ITEM] + NAMES * 6))
    run = tmp_path / "run"
    argv = ["train", "--type", model_type, "-i", data, "-o", run, "--max-steps", "2", "--threads", "1", "-q"]
    if model_type in ("rnn", "gru", "lstm"):
        argv += ["--n-embd", "4", "--n-embd2", "4"]  # a few hundred weights, fewer than max_len's 300
    code, out, err = run_cli(capsys, *argv, "--eval-interval", "2", "-b", "4")
    assert code == 0, err
    code, out, err = run_cli(capsys, "eval", "-o", run, "--json")
    assert code == 0, err


@pytest.mark.parametrize("model_type", TYPES)
def test_help_lists_every_option_of_the_model_with_its_default(capsys, model_type):
    code, out, _ = run_cli(capsys, "train", "--type", model_type, "--help")
    assert code == 0
    for name in REGISTRY[model_type].Config.__dataclass_fields__:
        if name != "vocab_size":
            assert flag(name) in out, name
