"""Part 4: "becoming a backprop ninja". The mlp-bn network's backward pass written by hand.

Three layers of the same idea:

1. `forward_steps` runs the network broken into the lecture's atomic steps (every
   intermediate a named tensor) and `backward_steps` walks them back, one chain-rule line
   per step, with no autograd. `gradcheck` holds every one of the 26 gradients against
   autograd's (run on the very same atomic forward), in float32 and float64.
2. The fused forms: cross-entropy's backward in one expression (softmax minus one-hot,
   over n) and BatchNorm's backward in one expression (with the same n/(n-1) Bessel
   correction as the forward's variance).
The fused forms are also what `MLPBN.manual_grad` (models/mlp_bn.py) trains with under
`makemore train --type mlp-bn --manual-grad`; `makemore gradcheck` (gradcheck.py) prints the
tables. This module is pure tensor math: it imports nothing from the rest of makemore.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# the order of the lecture's cmp(...) table: from the loss back to the embedding table
ORDER = (
    "logprobs",
    "probs",
    "counts_sum_inv",
    "counts_sum",
    "counts",
    "norm_logits",
    "logit_maxes",
    "logits",
    "h",
    "W2",
    "b2",
    "hpreact",
    "bngain",
    "bnbias",
    "bnraw",
    "bnvar_inv",
    "bnvar",
    "bndiff2",
    "bndiff",
    "bnmeani",
    "hprebn",
    "embcat",
    "W1",
    "b1",
    "emb",
    "C",
)
PARAMS = ("C", "W1", "b1", "bngain", "bnbias", "W2", "b2")


# --- 1. atomic forward and its hand-written backward --------------------------------------------
def forward_steps(p: dict, Xb: torch.Tensor, Yb: torch.Tensor, eps: float = 1e-5) -> dict:
    """The training-mode forward, one elementary operation per line; returns every tensor by name.

    p holds C, W1, b1, bngain, bnbias, W2, b2. b1 is the lecture's (useless under BatchNorm,
    which subtracts it again) bias; mlp-bn has none, so manual_grad below leaves it out.
    """
    n = Xb.shape[0]
    t = {}
    t["emb"] = p["C"][Xb]  # (n, context_size, n_embd)
    t["embcat"] = t["emb"].view(n, -1)  # (n, context_size * n_embd)
    t["hprebn"] = t["embcat"] @ p["W1"] + p["b1"]  # (n, H)
    t["bnmeani"] = 1 / n * t["hprebn"].sum(0, keepdim=True)  # (1, H)
    t["bndiff"] = t["hprebn"] - t["bnmeani"]
    t["bndiff2"] = t["bndiff"] ** 2
    t["bnvar"] = 1 / (n - 1) * t["bndiff2"].sum(0, keepdim=True)  # Bessel: n-1, as the model's var(unbiased=True)
    t["bnvar_inv"] = (t["bnvar"] + eps) ** -0.5
    t["bnraw"] = t["bndiff"] * t["bnvar_inv"]
    t["hpreact"] = p["bngain"] * t["bnraw"] + p["bnbias"]
    t["h"] = torch.tanh(t["hpreact"])
    t["logits"] = t["h"] @ p["W2"] + p["b2"]  # (n, V)
    # cross-entropy written out; subtracting the row max keeps exp() from overflowing
    t["logit_maxes"] = t["logits"].max(1, keepdim=True).values
    t["norm_logits"] = t["logits"] - t["logit_maxes"]
    t["counts"] = t["norm_logits"].exp()
    t["counts_sum"] = t["counts"].sum(1, keepdim=True)
    t["counts_sum_inv"] = t["counts_sum"] ** -1
    t["probs"] = t["counts"] * t["counts_sum_inv"]
    t["logprobs"] = t["probs"].log()
    t["loss"] = -t["logprobs"][range(n), Yb].mean()
    return t


def backward_steps(p: dict, t: dict, Xb: torch.Tensor, Yb: torch.Tensor, eps: float = 1e-5) -> dict:
    """d loss / d x for every intermediate and parameter x of forward_steps, by the chain rule alone."""
    n, V = t["logits"].shape
    d = {}
    # loss = -mean of the picked log-probabilities: each picked one gets -1/n, the rest 0
    d["logprobs"] = torch.zeros_like(t["logprobs"])
    d["logprobs"][range(n), Yb] = -1.0 / n
    d["probs"] = (1.0 / t["probs"]) * d["logprobs"]  # log'(x) = 1/x
    # probs = counts * counts_sum_inv: counts_sum_inv was broadcast across the row, so its grad sums it
    d["counts_sum_inv"] = (t["counts"] * d["probs"]).sum(1, keepdim=True)
    d["counts"] = t["counts_sum_inv"] * d["probs"]
    d["counts_sum"] = -(t["counts_sum"] ** -2) * d["counts_sum_inv"]
    d["counts"] = d["counts"] + torch.ones_like(t["counts"]) * d["counts_sum"]  # second branch: the row sum
    d["norm_logits"] = t["counts"] * d["counts"]  # exp'(x) = exp(x), which is counts itself
    d["logit_maxes"] = (-d["norm_logits"]).sum(1, keepdim=True)  # ~0: the max shift does not change probs
    d["logits"] = d["norm_logits"] + F.one_hot(t["logits"].max(1).indices, V).to(t["logits"].dtype) * d["logit_maxes"]
    # logits = h @ W2 + b2: matrix products backward are products with the transposes
    d["h"] = d["logits"] @ p["W2"].T
    d["W2"] = t["h"].T @ d["logits"]
    d["b2"] = d["logits"].sum(0)
    d["hpreact"] = (1.0 - t["h"] ** 2) * d["h"]  # tanh'(x) = 1 - tanh(x)^2
    # hpreact = bngain * bnraw + bnbias: gain and bias were broadcast over the batch, so sum over it
    d["bngain"] = (t["bnraw"] * d["hpreact"]).sum(0, keepdim=True)
    d["bnraw"] = p["bngain"] * d["hpreact"]
    d["bnbias"] = d["hpreact"].sum(0, keepdim=True)
    d["bndiff"] = t["bnvar_inv"] * d["bnraw"]
    d["bnvar_inv"] = (t["bndiff"] * d["bnraw"]).sum(0, keepdim=True)
    d["bnvar"] = -0.5 * (t["bnvar"] + eps) ** -1.5 * d["bnvar_inv"]
    d["bndiff2"] = 1.0 / (n - 1) * torch.ones_like(t["bndiff2"]) * d["bnvar"]
    d["bndiff"] = d["bndiff"] + 2 * t["bndiff"] * d["bndiff2"]  # second branch: through the variance
    d["bnmeani"] = (-d["bndiff"]).sum(0, keepdim=True)
    d["hprebn"] = d["bndiff"] + 1.0 / n * torch.ones_like(t["hprebn"]) * d["bnmeani"]
    d["embcat"] = d["hprebn"] @ p["W1"].T
    d["W1"] = t["embcat"].T @ d["hprebn"]
    d["b1"] = d["hprebn"].sum(0)
    d["emb"] = d["embcat"].view(t["emb"].shape)
    d["C"] = embedding_backward(p["C"], Xb, d["emb"])
    return d


def embedding_backward(C: torch.Tensor, Xb: torch.Tensor, demb: torch.Tensor) -> torch.Tensor:
    """emb = C[Xb] copies rows of C; the gradient adds each copy's gradient back into its row."""
    dC = torch.zeros_like(C)
    return dC.index_add_(0, Xb.reshape(-1), demb.reshape(-1, C.shape[1]))


# --- 2. the fused forms ------------------------------------------------------------------------
def cross_entropy_backward(logits: torch.Tensor, Yb: torch.Tensor) -> torch.Tensor:
    """d mean-cross-entropy / d logits in one line: (softmax - one_hot(Y)) / n."""
    n = logits.shape[0]
    dlogits = F.softmax(logits, 1)
    dlogits[range(n), Yb] -= 1
    return dlogits / n


def batchnorm_backward(
    dhpreact: torch.Tensor, bngain: torch.Tensor, bnraw: torch.Tensor, bnvar_inv: torch.Tensor
) -> torch.Tensor:
    """d loss / d hprebn through the whole BatchNorm in one expression.

    The forward's variance divides by n-1 (Bessel), so the term that flows back through the
    variance carries n/(n-1): with 1/n there, the gradient would be of a different forward.
    """
    n = dhpreact.shape[0]
    return bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))


# --- the check against autograd ----------------------------------------------------------------
def compare(p: dict, Xb: torch.Tensor, Yb: torch.Tensor, eps: float = 1e-5) -> tuple[list[dict], list[dict], dict]:
    """Rows (name, shape, exact, approx, maxdiff) for the 26 atomic gradients and the 2 fused ones."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    t = forward_steps(leaves, Xb, Yb, eps)
    for name in ORDER:
        if name not in PARAMS:
            t[name].retain_grad()
    t["loss"].backward()
    reference = {name: (leaves[name] if name in PARAMS else t[name]).grad for name in ORDER}
    values = {k: v.detach() for k, v in {**t, **leaves}.items()}
    mine = backward_steps(p, values, Xb, Yb, eps)
    fused = {
        "logits": cross_entropy_backward(values["logits"], Yb),
        "hprebn": batchnorm_backward(mine["hpreact"], p["bngain"], values["bnraw"], values["bnvar_inv"]),
    }

    def row(name, grad):
        ref = reference[name]
        return {
            "tensor": name,
            "shape": list(ref.shape),
            "exact": bool(torch.equal(grad, ref)),
            "approx": bool(torch.allclose(grad, ref)),
            "maxdiff": (grad - ref).abs().max().item(),
            "shape_ok": grad.shape == values[name].shape,
        }

    return [row(n, mine[n]) for n in ORDER], [row(n, g) for n, g in fused.items()], mine


def format_table(rows: list[dict]) -> str:
    lines = [f"{'tensor':15s} {'shape':12s} {'exact':6s} {'approx':6s} maxdiff"]
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        lines.append(f"{r['tensor']:15s} {shape:12s} {str(r['exact']):6s} {str(r['approx']):6s} {r['maxdiff']:.3g}")
    return "\n".join(lines)
