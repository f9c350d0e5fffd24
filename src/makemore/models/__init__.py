"""The model registry: type name -> class. Adding a model is one file and one line here.

Building the registry checks every model: its recipes (`train_defaults` names TrainConfig fields,
each preset names TrainConfig or model Config fields with valid values) and its abilities (it
declares exactly those whose methods it implements), so a slip fails at import (and in the
tests), never as a traceback in front of a user.
"""

from dataclasses import fields

from ..config import TrainConfig, check_fields
from ..errors import MakemoreError
from .base import ABILITIES, Model, ModelConfig, SequenceConfig, SequenceModel, WindowConfig, WindowModel
from .bigram import BigramCounts, BigramNN
from .bow import BoW
from .mlp import MLP
from .mlp_bn import MLPBN, MLPBNDeep
from .rnn import GRU, LSTM, RNN
from .transformer import Transformer
from .wavenet import WaveNet, WaveNetConv


def split_recipe(cls: type[Model], recipe: dict) -> tuple[dict, dict]:
    """A preset's options -> (TrainConfig overrides, model Config overrides); unknown names raise."""
    train_keys = {f.name for f in fields(TrainConfig)}
    model_keys = {f.name for f in fields(cls.Config)} - {"vocab_size"}
    unknown = sorted(set(recipe) - train_keys - model_keys)
    if unknown:
        raise MakemoreError(f"{cls.__name__}: unknown option(s) {', '.join(unknown)} in a recipe")
    return {k: v for k, v in recipe.items() if k in train_keys}, {k: v for k, v in recipe.items() if k in model_keys}


def check_recipes(cls: type[Model]) -> type[Model]:
    """The model's train_defaults and presets, each built into the configs and validated."""
    check_fields(cls.Config)
    train, model = split_recipe(cls, cls.train_defaults)
    if model:
        raise MakemoreError(f"{cls.__name__}.train_defaults holds model options: {', '.join(model)}")
    for preset in cls.presets.values():
        train, model = split_recipe(cls, preset)
        TrainConfig(**{**cls.train_defaults, **train}).validate()
        cls.Config(**model).validate()
    TrainConfig(**cls.train_defaults).validate()
    return cls


def check_abilities(cls: type[Model]) -> type[Model]:
    """The model declares known abilities, and implements the method of each one it declares and
    of no other (a method without its ability would never be called; the reverse, a traceback)."""
    unknown = sorted(set(cls.abilities) - set(ABILITIES))
    if unknown:
        raise MakemoreError(f"{cls.__name__}: unknown abilities {', '.join(unknown)} (known: {', '.join(ABILITIES)})")
    for ability, method in ABILITIES.items():
        if method is None:
            continue
        implemented = getattr(cls, method) is not getattr(Model, method)
        if implemented != (ability in cls.abilities):
            has = "implements" if implemented else "does not implement"
            raise MakemoreError(
                f"{cls.__name__} {has} {method}() but {'does not declare' if implemented else 'declares'} "
                f"the ability {ability!r}"
            )
    return cls


REGISTRY: dict[str, type[Model]] = {
    name: check_abilities(check_recipes(cls))
    for name, cls in {
        "bigram": BigramCounts,
        "bigram-nn": BigramNN,
        "mlp": MLP,
        "wavenet": WaveNet,
        "wavenet-conv": WaveNetConv,
        "transformer": Transformer,
        "rnn": RNN,
        "gru": GRU,
        "lstm": LSTM,
        "bow": BoW,
        "mlp-bn": MLPBN,
        "mlp-bn-deep": MLPBNDeep,
    }.items()
}

__all__ = [
    "REGISTRY",
    "Model",
    "ModelConfig",
    "SequenceConfig",
    "SequenceModel",
    "WindowConfig",
    "WindowModel",
    "check_abilities",
    "check_recipes",
    "split_recipe",
]
