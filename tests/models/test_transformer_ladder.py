"""The ladder of docs/part6-transformer.md (docs/ladder.py): each rung's command builds the model the
table says, each rung adds the piece it names to the one before, and the figure is drawn."""

import importlib.util
import shlex
from dataclasses import fields
from pathlib import Path

import pytest

from makemore.cli import _train_parser
from makemore.data import Dataset
from makemore.models import REGISTRY, split_recipe
from makemore.plots import plot_ladder

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("ladder", ROOT / "docs" / "ladder.py")
ladder = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ladder)
NAMES = Dataset.from_items(["emma", "olivia", "ava", "isabella", "sophia"])


def built(flags: str):
    """The model config and training recipe a `makemore train` command line gives."""
    argv = shlex.split(flags)
    model_type = argv[argv.index("--type") + 1]
    cls = REGISTRY[model_type]
    args = _train_parser(model_type).parse_args(argv)
    given = {f.name: getattr(args, f.name) for f in fields(cls.Config) if getattr(args, f.name, None) is not None}
    _, preset = split_recipe(cls, cls.presets.get(args.preset, {}))
    return cls.config_for(NAMES, **{**preset, **given})


def pieces(config) -> dict:
    return {k: getattr(config, k) for k in ("n_layer", "n_head", "n_embd", "ffn", "residual", "layer_norm", "dropout")}


def test_each_rung_adds_the_piece_it_names():
    rungs = {rung: pieces(built(ladder.command("names", rung))) for rung in ladder.RUNGS if rung != "1-bigram"}
    assert rungs["2-one-head"] == dict(
        n_layer=1, n_head=1, n_embd=32, ffn=False, residual=False, layer_norm=False, dropout=0.0
    )
    changes = [
        ("2-one-head", "3-multi-head", {"n_head": 4}),
        ("3-multi-head", "4-ffn", {"ffn": True}),
        ("4-ffn", "5-residual", {"residual": True, "n_layer": 3}),
        ("5-residual", "6-layernorm", {"layer_norm": True}),
        ("6-layernorm", "7-scaled", {"n_layer": 4, "n_embd": 64, "dropout": 0.2}),
    ]
    for before, after, change in changes:
        assert rungs[after] == {**rungs[before], **change}, (before, after)


@pytest.mark.parametrize("rung", ["2-one-head", "6-layernorm"])
def test_the_shakespeare_rungs_are_the_names_rungs_on_blocks_of_8_characters(rung):
    shakespeare = shlex.split(ladder.command("shakespeare", rung))
    assert shakespeare[-3:] == ["--text", "--block-size", "8"]
    assert " ".join(shakespeare[:-3]) == ladder.command("names", rung)


def test_the_ladder_is_drawn_with_gaps_where_a_series_has_no_number(tmp_path):
    out = tmp_path / "ladder.png"
    plot_ladder(["1. a", "2. b", "3. c"], [("ours", [2.5, 2.3, 2.1]), ("lecture", [None, 2.4, None])], out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
