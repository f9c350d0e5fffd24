"""The model registry: type name -> class. Adding a model is one file and one line here."""

from .base import Model, ModelConfig
from .bigram import BigramCounts, BigramNN
from .mlp import MLP
from .wavenet import WaveNet, WaveNetConv
from .transformer import Transformer
from .rnn import GRU, LSTM, RNN
from .bow import BoW
from .mlp_bn import MLPBN, MLPBNDeep

REGISTRY: dict[str, type[Model]] = {
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
}

__all__ = ["REGISTRY", "Model", "ModelConfig"]
