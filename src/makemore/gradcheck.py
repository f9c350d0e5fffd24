"""`makemore gradcheck`: Part 4's hand-written gradients (backprop.py) held against autograd.

An mlp-bn with the lecture's sizes, one training batch of the bundled names, every one of the
26 atomic gradients and the 2 fused forms compared in float32 and float64.
"""

from __future__ import annotations

import torch

from .backprop import compare
from .data import Dataset, bundled_names
from .models.mlp_bn import MLPBN


def gradcheck_params(model: MLPBN, dtype: torch.dtype, seed: int) -> dict:
    """mlp-bn's parameters in `dtype` under the lecture's names, plus a b1; gains and biases moved
    off their 1 / 0 init (as in the lecture) so that no gradient row can pass only because a
    factor was exactly 0 or 1."""
    gen = torch.Generator().manual_seed(seed)
    named = {
        "C": model.C,
        "W1": model.W1,
        "bngain": model.bn.gamma,
        "bnbias": model.bn.beta,
        "W2": model.W2,
        "b2": model.b2,
    }
    p = {name: t.detach().to(dtype).clone() for name, t in named.items()}
    H, V = p["W1"].shape[1], p["W2"].shape[1]
    p["b1"] = torch.randn(H, generator=gen, dtype=dtype) * 0.1
    p["bngain"] = p["bngain"] + torch.randn(1, H, generator=gen, dtype=dtype) * 0.1
    p["bnbias"] = p["bnbias"] + torch.randn(1, H, generator=gen, dtype=dtype) * 0.1
    p["W2"] = p["W2"] * 10  # 0.01 init -> 0.1: logits differ enough for a non-trivial softmax
    p["b2"] = p["b2"] + torch.randn(V, generator=gen, dtype=dtype) * 0.1
    return p


def gradcheck(seed: int = 42, batch_size: int = 32, dtypes=(torch.float32, torch.float64)) -> dict:
    """The gradcheck tables for an mlp-bn on a training batch of the bundled names."""
    data = Dataset.read(bundled_names())
    torch.manual_seed(seed)
    model = MLPBN(MLPBN.config_for(data))
    examples = model.examples(data.split("train"))
    X, Y = examples[torch.randint(0, len(examples), (batch_size,), generator=torch.Generator().manual_seed(seed))]
    tables = {}
    for dtype in dtypes:
        atomic, fused, _ = compare(gradcheck_params(model, dtype, seed), X, Y, model.config.bn_eps)
        tables[str(dtype).replace("torch.", "")] = {"atomic": atomic, "fused": fused}
    return {"seed": seed, "batch_size": batch_size, "tables": tables}
