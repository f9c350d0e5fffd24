"""Part 4, exercise 3 (the lecture's numbering): BatchNorm's backward pass in one formula.

Fill in `batchnorm_backward` below, then run

    python examples/exercises/part4_ex3_batchnorm_backward.py

It runs mlp-bn's BatchNorm forward on a random batch in float64, lets autograd compute the
gradient of the loss with respect to the BatchNorm's input, and compares yours with it.
`--solution` checks makemore's own answer (makemore.backprop.batchnorm_backward) instead.
Chapter: docs/part4-gradients.md.
"""

import argparse
import sys

import torch

TOLERANCE = 1e-10  # float64: a correct formula differs from autograd only by rounding


def batchnorm_backward(dhpreact, bngain, bnraw, bnvar_inv):
    """d loss / d hprebn, given d loss / d hpreact. The forward, per hidden unit, over n examples:

    bnmeani   = hprebn.mean(0)
    bnvar     = ((hprebn - bnmeani) ** 2).sum(0) / (n - 1)    # Bessel's correction, as makemore
    bnvar_inv = (bnvar + eps) ** -0.5
    bnraw     = (hprebn - bnmeani) * bnvar_inv
    hpreact   = bngain * bnraw + bnbias

    Shapes: dhpreact and bnraw (n, H); bngain and bnvar_inv (1, H). Return an (n, H) tensor.
    """
    raise NotImplementedError("your turn: write dhprebn from dhpreact, bngain, bnraw and bnvar_inv")


def check(backward, n: int = 32, hidden: int = 64, eps: float = 1e-5, seed: int = 0) -> float:
    """Max |difference| between backward(...) and autograd's gradient on one random batch."""
    g = torch.Generator().manual_seed(seed)
    randn = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)
    hprebn = (2 * randn(n, hidden) + 0.5).requires_grad_()
    bngain, bnbias = 1 + 0.1 * randn(1, hidden), 0.1 * randn(1, hidden)
    bnmeani = hprebn.mean(0, keepdim=True)
    bnvar = hprebn.var(0, keepdim=True)  # divides by n - 1
    bnvar_inv = (bnvar + eps) ** -0.5
    bnraw = (hprebn - bnmeani) * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    upstream = randn(n, hidden)
    loss = (hpreact * upstream).sum()  # any loss will do; this one's d loss / d hpreact is `upstream`
    loss.backward()
    mine = backward(upstream, bngain, bnraw.detach(), bnvar_inv.detach())
    if mine.shape != hprebn.shape:
        raise ValueError(f"the gradient has shape {tuple(mine.shape)}, hprebn has {tuple(hprebn.shape)}")
    return (mine - hprebn.grad).abs().max().item()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check a BatchNorm backward pass against autograd.")
    parser.add_argument("--solution", action="store_true", help="check makemore.backprop.batchnorm_backward")
    args = parser.parse_args(argv)
    if args.solution:
        from makemore.backprop import batchnorm_backward as backward
    else:
        backward = batchnorm_backward
    try:
        diff = check(backward)
    except (NotImplementedError, ValueError) as e:
        print(e)
        return 1
    ok = diff < TOLERANCE
    print(f"max |difference| from autograd: {diff:.3g}  {'ok' if ok else 'wrong'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
