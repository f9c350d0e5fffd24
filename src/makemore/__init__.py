"""makemore: autoregressive character-level language models, from bigrams to Transformers."""

__version__ = "0.1.0"
