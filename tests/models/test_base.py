"""The model contract: a new model is one class and one registry line (docs/architecture.md,
"How to add a model"), and every model's recipes are checked against the configs."""

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from makemore import checkpoint
from makemore.config import option
from makemore.errors import MakemoreError
from makemore.models import REGISTRY, SequenceConfig, SequenceModel, WindowConfig, WindowModel, check_recipes

from conftest import run_cli


# --- the toy models of the how-to: one window model, one sequence model --------------------------
@dataclass
class ToyConfig(WindowConfig):
    context_size: int = option(2, "previous characters the model sees")
    n_embd: int = option(8, "embedding dimension per character")


class Toy(WindowModel):
    """Embed the context, sum it, one linear layer: a deliberately small window model."""

    Config = ToyConfig
    train_defaults = dict(max_steps=60, batch_size=64, learning_rate=0.05, warmup_steps=0, eval_interval=30)
    presets = {"wide": dict(n_embd=16, max_steps=40)}

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size)

    def forward(self, idx):
        return self.head(self.wte(idx).sum(1))


@dataclass
class ToySeqConfig(SequenceConfig):
    n_embd: int = option(8, "width of the running state")


class ToySeq(SequenceModel):
    """A causal running mean of embeddings: a sequence model in a dozen lines."""

    Config = ToySeqConfig
    train_defaults = dict(max_steps=60, batch_size=32, learning_rate=0.05, warmup_steps=0, eval_interval=30)

    def __init__(self, config: ToySeqConfig):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size)

    def forward(self, idx):
        x = self.wte(idx).cumsum(1) / torch.arange(1, idx.size(1) + 1, device=idx.device)[None, :, None]
        return self.head(x)


@pytest.mark.parametrize("name, cls", [("toy", Toy), ("toy-seq", ToySeq)])
def test_a_new_model_trains_evaluates_samples_and_scores_through_the_shared_code(
    capsys, tmp_path, monkeypatch, name, cls
):
    monkeypatch.setitem(REGISTRY, name, check_recipes(cls))  # the one registry line
    run = tmp_path / name
    code, out, err = run_cli(capsys, "train", "--type", name, "-o", run, "-q")
    assert code == 0 and f"{name}: train" in out, err
    saved = checkpoint.load(run / checkpoint.BEST)
    assert isinstance(saved.model, cls) and saved.step in (30, 60) and saved.run.type == name
    code, out, _ = run_cli(capsys, "eval", "-o", run, "--json")
    assert code == 0 and 2.0 < json.loads(out)["dev"] < 3.3  # learned something past ln(27) = 3.30
    code, out, _ = run_cli(capsys, "sample", "-o", run, "-n", "5", "--seed", "0")
    assert code == 0 and len(out.splitlines()) == 5
    code, out, _ = run_cli(capsys, "score", "-o", run, "emma")
    assert code == 0 and out.startswith("emma\ttotal")


def test_the_sequence_kind_measures_max_len_on_the_data_and_refuses_less(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(REGISTRY, "toy-seq", ToySeq)
    code, _, err = run_cli(capsys, "train", "--type", "toy-seq", "-o", tmp_path / "short", "--max-len", "5", "-q")
    assert code == 1 and "shorter than the longest item of the data (15 characters)" in err
    assert not (tmp_path / "short").exists()
    code, _, _ = run_cli(capsys, "train", "--type", "toy-seq", "-o", tmp_path / "long", "--max-len", "20", "-q")
    assert code == 0 and checkpoint.load(tmp_path / "long" / checkpoint.BEST).model.length_limit == 20


def test_a_preset_flag_and_explicit_flags_reach_the_configs(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(REGISTRY, "toy", Toy)
    code, _, err = run_cli(
        capsys, "train", "--type", "toy", "--preset", "wide", "--max-steps", "30", "-o", tmp_path / "w", "-q"
    )
    saved = checkpoint.load(tmp_path / "w" / checkpoint.BEST)
    assert code == 0 and saved.model.config.n_embd == 16 and saved.train_config.max_steps == 30, err


@pytest.mark.parametrize(
    "recipe, why",
    [
        (dict(train_defaults=dict(max_step=10)), "unknown option"),
        (dict(presets={"best": dict(n_emdb=32)}), "unknown option"),
        (dict(presets={"best": dict(learning_rate=-1.0)}), "--learning-rate"),
        (dict(presets={"best": dict(n_embd=0)}), "--n-embd must be >= 1"),
        (dict(train_defaults=dict(n_embd=4)), "holds model options"),
    ],
)
def test_a_recipe_with_a_typo_or_a_bad_value_is_refused_when_registered(recipe, why):
    broken = type("Broken", (Toy,), recipe)
    with pytest.raises(MakemoreError, match=why):
        check_recipes(broken)


@pytest.mark.parametrize("model_type", list(REGISTRY))
def test_a_character_embedding_is_one_of_the_models_own_parameters(model_type):
    """char_embedding() is the (V, E) table the model learns, not a copy; models without one do not
    declare the ability."""
    cls = REGISTRY[model_type]
    model = cls(cls.Config(vocab_size=27, **({"max_len": 15} if issubclass(cls, SequenceModel) else {})))
    assert model.can("embedding") == (model_type not in ("bigram", "bigram-nn"))
    if model.can("embedding"):
        table = model.char_embedding()
        assert table.shape[0] == 27 and any(table is p for p in model.parameters())


@pytest.mark.parametrize(
    "declared, methods, why",
    [
        (frozenset({"teleport"}), {}, "unknown abilities teleport"),
        (frozenset({"attention"}), {}, "does not implement attention\\(\\) but declares the ability 'attention'"),
        (frozenset(), {"penalty": lambda self: 0}, "implements penalty\\(\\) but does not declare"),
    ],
)
def test_a_model_declares_exactly_the_abilities_it_implements(declared, methods, why):
    from makemore.models import check_abilities

    slipped = type("Slipped", (Toy,), {"abilities": declared, **methods})
    with pytest.raises(MakemoreError, match=why):
        check_abilities(slipped)


@pytest.mark.parametrize("model_type", [t for t in REGISTRY if REGISTRY[t].can("probes")])
def test_probe_points_are_the_activations_forward_offers_and_change_nothing(model_type):
    cls = REGISTRY[model_type]
    torch.manual_seed(0)
    model = cls(cls.Config(vocab_size=27, **({"max_len": 15} if issubclass(cls, SequenceModel) else {}))).train()
    X = torch.randint(1, 27, (8, 15 if issubclass(cls, SequenceModel) else model.config.context_size))
    seen = []
    torch.manual_seed(1)
    with model.probing(lambda out, pre: seen.append((out, pre))):
        probed = model(X)
    torch.manual_seed(1)
    assert torch.equal(model(X), probed) and len(seen) == len(model.probe_points())
    assert all(torch.equal(out, torch.tanh(pre)) for out, pre in seen)


@pytest.mark.parametrize("model_type", list(REGISTRY))
def test_hidden_matrices_are_the_models_own_inner_weights_and_muon_lowers_the_loss(model_type):
    """hidden_matrices() (what --optimizer muon orthogonalises) are distinct 2-D parameters of the
    model, never its character embedding; where there are some, Muon's steps lower the loss."""
    from makemore.config import TrainConfig
    from makemore.optim import make_optimizer
    from makemore.train import batch_loss

    cls = REGISTRY[model_type]
    torch.manual_seed(0)
    model = cls(cls.Config(vocab_size=27, **({"max_len": 15} if issubclass(cls, SequenceModel) else {})))
    hidden = model.hidden_matrices()
    if model_type in ("transformer", "rnn", "gru", "lstm", "bow"):
        assert hidden
    if not hidden:
        return
    assert len({id(p) for p in hidden}) == len(hidden) and all(p.dim() == 2 for p in hidden)
    assert all(any(p is q for q in model.parameters()) for p in hidden)
    assert not any(p is model.char_embedding() for p in hidden)
    gen = torch.Generator().manual_seed(0)
    X = torch.randint(1, 27, (32, 15 if issubclass(cls, SequenceModel) else model.config.context_size), generator=gen)
    Y = torch.randint(1, 27, X.shape if issubclass(cls, SequenceModel) else X.shape[:1], generator=gen)
    opt = make_optimizer(model, TrainConfig(optimizer="muon", learning_rate=3e-3), torch.device("cpu"))
    model.eval()  # no dropout: the same batch, the same function
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = batch_loss(model, X, Y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(model_type, "loss", losses[0], "->", losses[-1])
    assert losses[-1] < losses[0] - 0.1


def test_a_config_field_of_a_type_without_a_flag_is_refused_when_registered():
    """tuple and optional fields have no one flag and JSON form: refused when the model is registered
    (they crashed building the parser before)."""

    @dataclass
    class TupleConfig(ToyConfig):
        widths: tuple[int, ...] = (8, 8)

    broken = type("Tupled", (Toy,), {"Config": TupleConfig})
    with pytest.raises(MakemoreError, match="config field widths: type .* is not one of int, float, str, bool"):
        check_recipes(broken)
