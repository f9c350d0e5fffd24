"""The model contract: two kinds of model, and the abilities a model may declare.

A **window model** sees a fixed context of `context_size` characters and gives the logits of
the next one: forward(idx (B, context_size)) -> (B, V). Training examples are one window per
predicted character (data.Windows).

A **sequence model** reads whole items of up to `max_len` characters and predicts at every
position at once: forward(idx (B, T)) -> (B, T, V), T <= max_len + 1 (the boundary, then the
characters). `max_len` is measured on the data before the config is built.

Each kind owns how its batches are shaped, how next-character logits are taken for sampling
and scoring, and its length limit; nothing outside models/ and the data layer asks which kind a
model is.

Optional abilities are declared one way: a model lists them in `abilities`, and the rest of the
package asks `model.can(name)`. Registering a model checks that it declares exactly the
abilities whose methods it implements (models/__init__.py):

    decode        decode(idx, state) continues from cached state (KV cache, hidden state);
                  select_rows(state, rows) keeps some rows of it (the batch first, by default)
    pack          forward(idx, pos) takes rows packed with several items (data.pack)
    manual_grad   manual_grad(X, Y): a hand-written backward pass (Part 4), for `train --manual-grad`
    fit           fit(examples): closed-form training (the bigram counts) instead of gradient descent
    penalty       penalty(): a term added to the NLL while training (a regulariser)
    embedding     char_embedding(): the table each character's vector is looked up in
    attention     attention(idx): attention weights over one row
    bigram        bigram_table(): P(next | previous), for a model of the previous character only
    probes        probe_points(): the activations forward() hands to diagnostics through probe()
                  (`makemore diagnose`, `plot tanh`), e.g. each tanh layer's output and input

Named recipes (`presets`), the weight matrices Muon orthogonalises (`hidden_matrices()`) and the
layers whose BatchNorm statistics are measured again under averaged weights (`batchnorms()`)
are not abilities: every model has them, possibly none.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..config import Checked, field_type, flag, option
from ..data import BOUNDARY, ITEM_LEN_LIMIT, TEXT_BLOCK, Blocks, Dataset, Rows, Split, TextWindows, Windows, pack
from ..errors import MakemoreError
from .batchnorm import BatchNorm

# Scaling a float tensor by a number keeps its shape: what initialisations do (randn(...) / fan_in**0.5).
_SCALINGS = {"mul", "div", "__mul__", "__rmul__", "__truediv__", "mul_", "div_", "__imul__", "__itruediv__"}


class _NoRandomFills(TorchFunctionMode):
    """Weight initialisation (normal_, randn) and its scaling by a number skipped while only shapes
    are built: on the meta device their kernels first import torch's compiler, 1.5-2 s added to
    every command that builds one."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", None)
        if name == "normal_":  # nn.init.normal_(tensor=...) or Tensor.normal_
            return args[0] if args else kwargs["tensor"]
        if name == "randn" and torch.get_default_device().type == "meta":  # the draw: its shape only
            return torch.empty(*args, **{k: v for k, v in kwargs.items() if k != "generator"})
        if name in _SCALINGS and len(args) == 2 and not kwargs and _scaled_by_a_number(*args):
            return args[0]
        return func(*args, **kwargs)


def _scaled_by_a_number(tensor, by) -> bool:
    return (
        isinstance(tensor, torch.Tensor) and tensor.is_meta and tensor.is_floating_point() and type(by) in (int, float)
    )


@contextmanager
def shapes_only():
    """Models built within are shapes only (the meta device): nothing is allocated, whatever the sizes."""
    with torch.device("meta"), _NoRandomFills():
        yield


# ability -> the method that provides it (None: a form of forward); see the module's docstring
ABILITIES = {
    "decode": "decode",
    "pack": None,
    "manual_grad": "manual_grad",
    "fit": "fit",
    "penalty": "penalty",
    "embedding": "char_embedding",
    "attention": "attention",
    "bigram": "bigram_table",
    "probes": "probe_points",
}
PACK_WIDTH = 16  # tokens per packed row (or the model's positions, if fewer): what names use


def lecture_recipe(step_at: float, **model) -> dict:
    """The lectures' own training loop as a preset: plain SGD on batches of 32 for 200,000 steps, lr 0.1
    then 0.01 after `step_at` of them (Part 2: 0.5; Part 5: 0.75), no warmup, no weight decay."""
    recipe = dict(optimizer="sgd", batch_size=32, learning_rate=0.1, schedule="step", step_at=step_at)
    return recipe | dict(max_steps=200000, warmup_steps=0, weight_decay=0.0, eval_interval=10000) | model


@dataclass
class ModelConfig(Checked):
    vocab_size: int = option(27, "tokens in the vocabulary (set from the data)")

    def problems(self) -> list[str]:
        """Every size is a whole number from 1 to 2**31 (beyond it a tensor's shape overflows before any
        memory check can say how much it needs), and a block is repeated at most 1,000 times (the model
        holds a module per block: a million take minutes to build even as shapes only)."""
        size_limit, repeats_limit = 2**31, 1000
        problems = super().problems()
        for f in fields(self):
            value = getattr(self, f.name)
            if field_type(f) is int and value < 1:
                problems.append(f"{flag(f.name)} must be >= 1")
            elif field_type(f) is int and f.metadata.get("repeats") and value > repeats_limit:
                problems.append(f"{flag(f.name)} must be at most {repeats_limit:,} (blocks of the model)")
            elif field_type(f) is int and value > size_limit:
                problems.append(f"{flag(f.name)} must be at most 2**31 ({size_limit:,})")
            if field_type(f) is float and not 0 <= value < float("inf"):
                problems.append(f"{flag(f.name)} must be a finite number >= 0")
        return problems


class Model(nn.Module):
    """What every model shares. A new model subclasses WindowModel or SequenceModel."""

    Config: type[ModelConfig] = ModelConfig
    train_defaults: dict = {}  # this model's recommended recipe (TrainConfig overrides)
    presets: dict[str, dict] = {}  # named recipes: TrainConfig and Config overrides
    abilities: frozenset[str] = frozenset()  # of ABILITIES: what this model can do beyond forward()

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.probe_hook = None  # diagnostics listening to probe() (see `probing`)

    @classmethod
    def can(cls, ability: str) -> bool:
        """Whether the model declares this ability (one of ABILITIES)."""
        if ability not in ABILITIES:
            raise ValueError(f"unknown ability {ability!r}")
        return ability in cls.abilities

    @property
    def device(self) -> torch.device:
        return next(itertools.chain(self.parameters(), self.buffers())).device

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # --- optional abilities, with their defaults ------------------------------------------------
    def fit(self, examples: Rows | Windows) -> None:
        """Closed-form training on all of a split's examples (ability "fit"): a model without parameters."""
        raise NotImplementedError

    def decode(self, idx: torch.Tensor, state=None):
        """(logits (B, T, V) of the new tokens idx, the state after them): ability "decode"."""
        raise NotImplementedError

    def select_rows(self, state, rows: torch.Tensor):
        """The decode() state of the batch's rows `rows` only (sampling drops the items that have
        ended). Every tensor of a state has the batch as its first dimension."""
        if isinstance(state, torch.Tensor):
            return state.index_select(0, rows)
        if isinstance(state, (tuple, list)):
            return type(state)(self.select_rows(s, rows) for s in state)
        return state  # a number: the tokens seen so far

    def manual_grad(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """Fill every p.grad by hand and return the loss: ability "manual_grad"."""
        raise NotImplementedError

    def hidden_matrices(self) -> list[nn.Parameter]:
        """The weight matrices between the input lookup and the output layer, which `--optimizer
        muon` orthogonalises; none by default (the model then trains with adamw or sgd only)."""
        return []

    def penalty(self) -> torch.Tensor:
        """A regularisation term the training objective adds to the NLL (bigram-nn's mean of W**2)."""
        raise NotImplementedError

    @property
    def min_batch_size(self) -> int:
        """The smallest training batch the model can learn from."""
        return 1

    def batchnorms(self) -> list[BatchNorm]:
        return [m for m in self.modules() if isinstance(m, BatchNorm)]

    @torch.no_grad()
    def recompute_batchnorm(self, examples: Rows | Windows, chunk: int = 4096) -> None:
        """Set every BatchNorm's running mean and variance to their average over the examples under
        the current weights. Averaged weights need this: running statistics describe only the
        weights they were collected with."""
        norms = self.batchnorms()
        if not norms:
            return
        momenta, was_training = [m.momentum for m in norms], self.training
        self.train()
        for k, start in enumerate(range(0, len(examples), chunk)):
            for m in norms:
                m.momentum = 1 / (k + 1)  # the k-th chunk's statistics enter a plain mean
            self(examples[start : start + chunk][0])
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        self.train(was_training)

    # --- what the views (`makemore serve`, `plot`, `diagnose`) can show of the inside ------------
    def char_embedding(self) -> torch.Tensor:
        """The table (V, E) the model looks each character's vector up in."""
        raise NotImplementedError

    def attention(self, idx: torch.Tensor) -> torch.Tensor:
        """Attention weights (layers, heads, T, T) over one row of tokens idx (1, T): row i holds how
        much query i takes from each key."""
        raise NotImplementedError

    def bigram_table(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """For a model of the previous character only: P(next | previous) (V, V), and the counts
        it came from when it counted."""
        raise NotImplementedError

    def probe_points(self) -> list[str]:
        """The names of the activations forward() hands to probe(), in the order it hands them."""
        raise NotImplementedError

    def probe(self, out: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        """forward() offers an activation to diagnostics: a layer's output and its input (a tanh's
        pre-activation). Returns out unchanged; costs nothing unless something listens."""
        if self.probe_hook is not None:
            self.probe_hook(out, pre)
        return out

    @contextmanager
    def probing(self, hook):
        """Call hook(out, pre) for every probe() of forward() within the block."""
        self.probe_hook = hook
        try:
            yield
        finally:
            self.probe_hook = None

    def diagnostic_variants(self) -> list[tuple[str, ModelConfig]]:
        """Configs `makemore diagnose` replays side by side: by default only the run's own."""
        return [("run config", self.config)]

    @classmethod
    def upgrade(cls, config: dict, state: dict) -> None:
        """Map a checkpoint written by an older makemore (format version 1) to today's names, in place."""

    # --- the kind's contract ------------------------------------------------------------------
    @classmethod
    def config_for(cls, data: Dataset, block: int | None = None, **options) -> ModelConfig:
        """The config for this data (vocabulary size, lengths) with the user's options, validated.
        block: text mode's --block-size, where the user gave it."""
        raise NotImplementedError

    def examples(self, split: Split) -> Rows | Windows | Blocks:
        """A split's examples as this model trains and evaluates on them: examples[ix] -> (X, Y)
        gives forward's input and the targets, item after item (padding targets are IGNORE); in
        text mode, along the stream."""
        raise NotImplementedError

    def shape_batch(
        self, X: torch.Tensor, Y: torch.Tensor, packed: bool, in_order: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """A batch cut from examples() as forward takes it -> (X, Y, pos): pos marks packed rows. The
        one place that decides packing: training asks for it with `packed` (--pack), evaluation with
        `in_order` too (the targets then read item after item, as the examples list them)."""
        return X, Y, None

    def next_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) for the token after each row of tokens (B, t), which start with the boundary."""
        raise NotImplementedError

    @property
    def length_limit(self) -> int | None:
        """The longest item (in characters) this model can read; None: any length."""
        return None

    @property
    def tokens_per_example(self) -> int:
        """Positions one training example predicts at, at most (a window: 1; a row: its positions)."""
        return 1

    @property
    def input_width(self) -> int:
        """Input tokens of one example, at most: a window's context, a row's positions."""
        raise NotImplementedError

    def decodes(self, tokens: int) -> bool:
        """Whether decode() can take a row of this many tokens."""
        return False

    def max_sample_len(self, longest_item: int) -> int:
        """How many characters sampling may draw for one item."""
        return self.length_limit if self.length_limit is not None else 2 * longest_item


def _build(cls, options: dict, **from_data) -> ModelConfig:
    config = cls.Config(**{**options, **from_data})
    config.validate()
    return config


@dataclass
class WindowConfig(ModelConfig):
    context_size: int = option(3, "characters of context the model sees")


class WindowModel(Model):
    """forward(idx (B, context_size)) -> logits (B, V) of the next character."""

    Config = WindowConfig

    @property
    def context_size(self) -> int:
        return self.config.context_size

    @property
    def input_width(self) -> int:
        return self.context_size

    @property
    def min_batch_size(self) -> int:
        return 2 if self.batchnorms() else 1  # a batch variance needs two windows

    @classmethod
    def config_for(cls, data: Dataset, block: int | None = None, **options) -> ModelConfig:
        if block is not None:
            raise MakemoreError(
                f"--block-size is the block a sequence model reads in text mode; {cls.__name__} is a window model, "
                "which reads --context-size characters"
            )
        return _build(cls, options, vocab_size=len(data.vocab))

    def examples(self, split):
        return TextWindows(split, self.context_size) if split.text else Windows(split, self.context_size)

    def next_logits(self, tokens):
        n = self.context_size
        return self(F.pad(tokens, (max(0, n - tokens.size(1)), 0), value=BOUNDARY)[:, -n:])

    @classmethod
    def upgrade(cls, config, state):
        if "block_size" in config:  # version 1 called the context block_size
            config["context_size"] = config.pop("block_size")


@dataclass
class SequenceConfig(ModelConfig):
    max_len: int = option(15, "longest item in characters the model reads", from_data=True)

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.max_len > ITEM_LEN_LIMIT:
            problems.append(f"--max-len must be at most {ITEM_LEN_LIMIT:,}")
        return problems

    @property
    def positions(self) -> int:
        """Tokens in the longest row: the boundary, then max_len characters."""
        return self.max_len + 1


class SequenceModel(Model):
    """forward(idx (B, T)) -> logits (B, T, V), T <= max_len + 1: a prediction at every position."""

    Config = SequenceConfig

    @classmethod
    def config_for(cls, data: Dataset, block: int | None = None, **options) -> ModelConfig:
        if data.text:  # rows of block_size characters, no boundary: positions = block_size
            if "max_len" in options:
                raise MakemoreError("in text mode a sequence model reads --block-size characters; leave --max-len out")
            block = TEXT_BLOCK if block is None else block
            if not 2 <= block <= ITEM_LEN_LIMIT:
                raise MakemoreError(f"--block-size must be in [2, {ITEM_LEN_LIMIT:,}], got {block}")
            return _build(cls, options, vocab_size=len(data.vocab), max_len=block - 1)
        if block is not None:
            raise MakemoreError("--block-size is for text mode (--text); items set --max-len")
        max_len = options.pop("max_len", data.max_len)
        if max_len < data.max_len:
            raise MakemoreError(
                f"--max-len {max_len} is shorter than the longest item of the data "
                f"({data.max_len} characters); leave it out to use the data's"
            )
        return _build(cls, options, vocab_size=len(data.vocab), max_len=max_len)

    def examples(self, split):
        return Blocks(split, self.config.positions) if split.text else Rows(split)

    def shape_batch(self, X, Y, packed, in_order=False):
        if packed and self.can("pack"):  # rows of several items each: less padding still
            # as wide as the model's positions, but attention grows with the row's width: a data set
            # with one long item packs its short ones into rows of PACK_WIDTH (wider only for that item)
            width = max(X.size(1), min(self.config.positions, PACK_WIDTH))
            return pack(X, Y, width, in_order=in_order)
        return X, Y, None

    def next_logits(self, tokens):
        return self(tokens[:, -self.config.positions :])[:, -1]

    def check_length(self, tokens: int) -> None:
        if tokens > self.config.positions:
            raise MakemoreError(
                f"a row of {tokens} tokens is longer than this model's {self.config.positions} "
                f"positions (max_len {self.config.max_len} + the boundary)"
            )

    @property
    def length_limit(self) -> int:
        return self.config.max_len

    @property
    def tokens_per_example(self) -> int:
        return self.config.positions

    @property
    def input_width(self) -> int:
        return self.config.positions

    def decodes(self, tokens: int) -> bool:
        return self.can("decode") and tokens <= self.config.positions

    @classmethod
    def upgrade(cls, config, state):
        if "block_size" in config:  # version 1 stored the positions, max_len + 1
            config["max_len"] = config.pop("block_size") - 1
