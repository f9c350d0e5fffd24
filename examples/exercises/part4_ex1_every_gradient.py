"""Part 4, exercise 1 (the lecture's numbering): backpropagate through the whole network by hand.

`forward` below is the lecture's network -- an embedding, a hidden layer with BatchNorm and tanh,
and cross-entropy written out one elementary step at a time -- and it keeps every intermediate
tensor by name. Fill in `backward`: each line d["x"] = ... is d loss / d x, written with the
chain rule from the lines above it, from the loss back to the embedding table C. No autograd.
Then run

    python examples/exercises/part4_ex1_every_gradient.py

It runs the forward on a batch of 32 windows of the bundled names in float64, lets autograd
compute the same 26 gradients, and prints one line per gradient: `exact` (bitwise equal to
autograd's), `approx` (equal up to rounding: max |difference| <= 1e-10), `wrong`, `wrong shape`,
or `blank` (still None). It exits 0 when all 26 are right. A wrong line makes every line after it
wrong too, so fix the first one first. `--solution` checks makemore's own answer
(makemore.backprop.backward_steps). Chapter: docs/part4-gradients.md.
"""

import argparse
import sys
import traceback

import torch

TOLERANCE = 1e-10  # float64: a correct gradient differs from autograd's only by rounding
BATCH, CONTEXT, N_EMBD, N_HIDDEN, VOCAB = 32, 3, 10, 64, 27  # the lecture's sizes
EPS = 1e-5


def forward(p, Xb, Yb):
    """The training-mode forward, one elementary operation a line; returns every tensor by name."""
    n = Xb.shape[0]
    t = {}
    t["emb"] = p["C"][Xb]  # (n, CONTEXT, N_EMBD): one row of C per character of the context
    t["embcat"] = t["emb"].view(n, -1)  # (n, CONTEXT * N_EMBD)
    t["hprebn"] = t["embcat"] @ p["W1"] + p["b1"]  # (n, N_HIDDEN)
    t["bnmeani"] = 1 / n * t["hprebn"].sum(0, keepdim=True)  # (1, N_HIDDEN)
    t["bndiff"] = t["hprebn"] - t["bnmeani"]
    t["bndiff2"] = t["bndiff"] ** 2
    t["bnvar"] = 1 / (n - 1) * t["bndiff2"].sum(0, keepdim=True)  # Bessel's correction: n - 1
    t["bnvar_inv"] = (t["bnvar"] + EPS) ** -0.5
    t["bnraw"] = t["bndiff"] * t["bnvar_inv"]
    t["hpreact"] = p["bngain"] * t["bnraw"] + p["bnbias"]
    t["h"] = torch.tanh(t["hpreact"])
    t["logits"] = t["h"] @ p["W2"] + p["b2"]  # (n, VOCAB)
    t["logit_maxes"] = t["logits"].max(1, keepdim=True).values  # (n, 1)
    t["norm_logits"] = t["logits"] - t["logit_maxes"]  # subtracting the max keeps exp() finite
    t["counts"] = t["norm_logits"].exp()
    t["counts_sum"] = t["counts"].sum(1, keepdim=True)  # (n, 1)
    t["counts_sum_inv"] = t["counts_sum"] ** -1
    t["probs"] = t["counts"] * t["counts_sum_inv"]
    t["logprobs"] = t["probs"].log()
    t["loss"] = -t["logprobs"][range(n), Yb].mean()
    return t


def backward(p, t, Xb, Yb):
    """d loss / d x for every tensor x of `forward`. p: the parameters, t: forward's tensors (as
    plain values: no autograd), Xb (n, CONTEXT) and Yb (n,) the batch. Each gradient has its
    tensor's shape: a (1, N_HIDDEN) one for bngain, not (N_HIDDEN,) nor (n, N_HIDDEN).
    Hints: a tensor used twice (counts, bndiff) sums the gradients of both uses; a tensor
    broadcast across an axis sums its gradient over that axis; tanh'(x) = 1 - tanh(x)**2."""
    n = Xb.shape[0]  # noqa: F841 (the batch size, for your lines)
    d = {}
    d["logprobs"] = None  # loss = -mean of the n picked log-probabilities
    d["probs"] = None
    d["counts_sum_inv"] = None
    d["counts_sum"] = None
    d["counts"] = None  # counts is used twice: in probs and in counts_sum
    d["norm_logits"] = None
    d["logit_maxes"] = None
    d["logits"] = None  # logits is used twice: in norm_logits and in logit_maxes
    d["h"] = None
    d["W2"] = None
    d["b2"] = None
    d["hpreact"] = None
    d["bngain"] = None
    d["bnbias"] = None
    d["bnraw"] = None
    d["bnvar_inv"] = None
    d["bnvar"] = None
    d["bndiff2"] = None
    d["bndiff"] = None  # bndiff is used twice: in bnraw and in bndiff2
    d["bnmeani"] = None
    d["hprebn"] = None
    d["embcat"] = None
    d["W1"] = None
    d["b1"] = None
    d["emb"] = None
    d["C"] = None  # emb = C[Xb] copied rows of C: each copy's gradient goes back into its row
    return d


# --- the checker ---------------------------------------------------------------------------------
# From the loss back to C: the order of the lecture's table.
ORDER = (
    "logprobs probs counts_sum_inv counts_sum counts norm_logits logit_maxes logits h W2 b2 hpreact bngain bnbias "
    "bnraw bnvar_inv bnvar bndiff2 bndiff bnmeani hprebn embcat W1 b1 emb C"
).split()
PARAMS = ("C", "W1", "b1", "bngain", "bnbias", "W2", "b2")


def parameters(seed: int = 0) -> dict:
    """Random float64 parameters of the lecture's shapes. No bias starts at exactly 0 nor gain at 1,
    so a gradient that forgot a factor cannot pass by luck."""
    g = torch.Generator().manual_seed(seed)
    randn = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)
    return {
        "C": randn(VOCAB, N_EMBD),
        "W1": randn(CONTEXT * N_EMBD, N_HIDDEN) * (5 / 3) / (CONTEXT * N_EMBD) ** 0.5,
        "b1": randn(N_HIDDEN) * 0.1,
        "bngain": 1 + 0.1 * randn(1, N_HIDDEN),
        "bnbias": 0.1 * randn(1, N_HIDDEN),
        "W2": randn(N_HIDDEN, VOCAB) * 0.1,
        "b2": randn(VOCAB) * 0.1,
    }


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """BATCH random (context, next character) windows of the first 1,000 bundled names."""
    from makemore.data import bundled_names

    stoi = {c: i + 1 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")}  # 0 is '.', the boundary
    X, Y = [], []
    for name in bundled_names().read_text().split()[:1000]:
        context = [0] * CONTEXT
        for ch in name + ".":
            X.append(context)
            Y.append(stoi.get(ch, 0))
            context = context[1:] + [Y[-1]]
    pick = torch.randint(0, len(X), (BATCH,), generator=torch.Generator().manual_seed(seed))
    return torch.tensor(X)[pick], torch.tensor(Y)[pick]


def autograd_gradients(p: dict, Xb, Yb) -> tuple[dict, dict]:
    """forward's tensors (detached) and autograd's gradient of the loss for each name in ORDER."""
    leaves = {k: v.clone().requires_grad_() for k, v in p.items()}
    t = forward(leaves, Xb, Yb)
    for name in ORDER:
        if name not in PARAMS:
            t[name].retain_grad()
    t["loss"].backward()
    grads = {name: (leaves[name] if name in PARAMS else t[name]).grad for name in ORDER}
    return {k: v.detach() for k, v in t.items()}, grads


def verdict(mine, tensor: torch.Tensor, reference: torch.Tensor) -> tuple[str, str]:
    """(verdict, detail) for one gradient."""
    if mine is None:
        return "blank", ""
    if not isinstance(mine, torch.Tensor) or mine.shape != tensor.shape:
        shape = tuple(mine.shape) if isinstance(mine, torch.Tensor) else type(mine).__name__
        return "wrong shape", f"got {shape}, the tensor is {tuple(tensor.shape)}"
    diff = (mine - reference).abs().max().item()
    if torch.equal(mine, reference):
        return "exact", f"maxdiff {diff:.3g}"
    return ("approx" if diff <= TOLERANCE else "wrong"), f"maxdiff {diff:.3g}"


def where_it_failed(error: Exception) -> str:
    """'line N: <source>' of the deepest frame of this file in the error's traceback."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == __file__]
    return f"line {frames[-1].lineno}: {frames[-1].line}" if frames else ""


def check(backward_fn, seed: int = 0) -> list[tuple[str, str, str]]:
    """(name, verdict, detail) for the 26 gradients of backward_fn, in ORDER."""
    p = parameters(seed)
    Xb, Yb = batch(seed)
    t, reference = autograd_gradients(p, Xb, Yb)
    mine = backward_fn(p, t, Xb, Yb)
    rows = []
    for name in ORDER:
        tensor = p[name] if name in PARAMS else t[name]
        rows.append((name, *verdict(mine.get(name), tensor, reference[name])))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Check every intermediate gradient of the lecture's network against autograd (float64)."
    )
    parser.add_argument("--solution", action="store_true", help="check makemore.backprop.backward_steps instead")
    args = parser.parse_args(argv)
    if args.solution:
        from makemore.backprop import backward_steps as backward_fn
    else:
        backward_fn = backward
    try:
        rows = check(backward_fn)
    except Exception as e:  # the learner's code: say where, in one line, rather than a traceback
        print(f"your backward raised {type(e).__name__}: {e}  ({where_it_failed(e)})")
        if isinstance(e, TypeError) and "NoneType" in str(e):
            print("a gradient it uses is still None: fill the lines in order, from d['logprobs'] down")
        return 1
    for name, said, detail in rows:
        print(f"{name:15s} {said:12s} {detail}")
    right = sum(said in ("exact", "approx") for _, said, _ in rows)
    blank = sum(said == "blank" for _, said, _ in rows)
    if right == len(rows):
        print(f"all {len(rows)} gradients match autograd: ok")
        return 0
    first_wrong = next((name for name, said, _ in rows if said.startswith("wrong")), None)
    if blank == len(rows):
        print(f"your turn: all {blank} gradients are still blank; write d['logprobs'] first")
    else:
        hint = f"; the first wrong one is d['{first_wrong}']" if first_wrong else ""
        print(f"{right} of {len(rows)} right, {blank} blank{hint}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
