"""Part 3: write the BatchNorm1d layer.

Fill in the class `BatchNorm1d` below, the layer of the lecture's "PyTorch-ifying" section:

- a gain `gamma` (ones) and a bias `beta` (zeros), both of shape (dim,), trained by backprop,
  and returned by `parameters()`;
- running estimates `running_mean` (zeros) and `running_var` (ones), not trained;
- called on a batch x of shape (n, dim): in training mode (`self.training` True) it normalises
  each column by the batch's mean and unbiased variance, x.var(0) as the lecture, then scales by
  gamma and shifts by beta; it also moves the running estimates towards the batch's,
  running = (1 - momentum) * running + momentum * batch, without building a graph;
- in eval mode (`self.training` False) it normalises by the running estimates instead and
  changes nothing.

Then run

    python examples/exercises/part3_batchnorm_layer.py

It holds your layer against torch.nn.BatchNorm1d on random batches, in both modes and after
several training steps, and prints one line per property, `ok` or `wrong` with what differs. It
exits 0 when all are ok. `--solution` checks makemore's own layer
(makemore.models.batchnorm.BatchNorm). Chapter: docs/part3-batchnorm.md.
"""

import argparse
import sys

import torch
import torch.nn.functional as F


class BatchNorm1d:
    def __init__(self, dim, eps=1e-5, momentum=0.1):
        self.eps = eps
        self.momentum = momentum
        self.training = True
        raise NotImplementedError("your turn: create gamma, beta, running_mean and running_var")

    def __call__(self, x):
        raise NotImplementedError("your turn: normalise x (training or eval mode) and return the output")

    def parameters(self):
        raise NotImplementedError("your turn: return the trained tensors, [gamma, beta]")


# --- the checker ---------------------------------------------------------------------------------
DIM, N, STEPS, EPS, MOMENTUM = 8, 32, 5, 1e-5, 0.1
TOL = dict(rtol=1e-4, atol=1e-5)  # float32 rounding


def lecture_train_output(ref: torch.nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """The lecture's training-mode output, from PyTorch's batch norm. PyTorch normalises a training
    batch by the biased (1/n) variance, the lecture by x.var(0) (1/(n-1)); since
    (x - mean) / sqrt(var_unbiased + eps) = sqrt((n-1)/n) (x - mean) / sqrt(var_biased + eps (n-1)/n),
    it is PyTorch's with eps scaled by (n-1)/n and the result scaled by sqrt((n-1)/n)."""
    n = x.shape[0]
    normalised = F.batch_norm(x, None, None, training=True, eps=EPS * (n - 1) / n)
    return ref.weight * normalised * ((n - 1) / n) ** 0.5 + ref.bias


def compared(got, want) -> str:
    """'' when got matches want, else what differs."""
    if not isinstance(got, torch.Tensor):
        return f"got {type(got).__name__}, expected a tensor"
    got = got.detach()
    if got.shape != want.shape:
        return f"shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    if torch.allclose(got.float(), want.float(), **TOL):
        return ""
    return f"max |difference| {(got.float() - want.float()).abs().max().item():.3g}"


def fresh_layer(layer) -> list[tuple[str, str]]:
    params = list(layer.parameters())
    if len(params) != 2:
        wrong = f"got {len(params)} tensors, expected [gamma, beta]"
    else:
        wrong = compared(params[0], torch.ones(DIM)) or compared(params[1], torch.zeros(DIM))
        if not wrong and not all(p.requires_grad for p in params):
            wrong = "gamma and beta need requires_grad=True to be trained"
    start = compared(layer.running_mean, torch.zeros(DIM)) or compared(layer.running_var, torch.ones(DIM))
    return [
        ("parameters(): [gamma, beta], ones and zeros of shape (dim,), trainable", wrong),
        ("running_mean starts at zeros, running_var at ones", start),
    ]


def training_mode(layer, ref, batches) -> list[tuple[str, str]]:
    x = batches[0].clone().requires_grad_()
    got = layer(x)
    want = lecture_train_output(ref, batches[0])
    wrong = compared(got, want)
    if wrong and not compared(got, F.batch_norm(batches[0], None, None, ref.weight, ref.bias, training=True, eps=EPS)):
        wrong += ": that is the 1/n variance; the lecture's layer normalises by x.var(0), 1/(n-1)"
    connected = isinstance(got, torch.Tensor) and got.requires_grad
    if connected:
        got.sum().backward()
        connected = all(t.grad is not None for t in (x, layer.gamma, layer.beta))
    ref(batches[0])  # the step `layer` took above
    for b in batches[1:]:
        layer(b), ref(b)
    no_graph = not any(t.requires_grad for t in (layer.running_mean, layer.running_var))
    return [
        ("training mode: gamma * (x - mean) / sqrt(var + eps) + beta, the batch's statistics", wrong),
        (
            "training mode: gradients reach x, gamma and beta",
            "" if connected else "the output is not connected to them",
        ),
        (f"running_mean after {STEPS} steps (momentum {MOMENTUM})", compared(layer.running_mean, ref.running_mean)),
        (f"running_var after {STEPS} steps (unbiased batch variance)", compared(layer.running_var, ref.running_var)),
        (
            "running statistics updated without a graph (torch.no_grad())",
            "" if no_graph else "they require grad: each step would keep every earlier step's graph alive",
        ),
    ]


def eval_mode(layer, ref, test) -> list[tuple[str, str]]:
    layer.training, ref.training = False, False
    before = (layer.running_mean.clone(), layer.running_var.clone())
    with torch.no_grad():
        out, alone, want = layer(test), layer(test[:1]), ref(test)
    return [
        ("eval mode: normalises by the running statistics", compared(out, want)),
        ("eval mode: one example alone gets the output it gets in a batch", compared(alone, want[:1])),
        (
            "eval mode: the running statistics stay as they were",
            compared(layer.running_mean, before[0]) or compared(layer.running_var, before[1]),
        ),
    ]


def check(layer_class) -> list[tuple[str, str]]:
    """(property, '' or what is wrong) for each thing the layer must do."""
    g = torch.Generator().manual_seed(0)
    layer, ref = layer_class(DIM, eps=EPS, momentum=MOMENTUM), torch.nn.BatchNorm1d(DIM, eps=EPS, momentum=MOMENTUM)
    results = fresh_layer(layer)
    with torch.no_grad():  # gain and bias away from 1 and 0, so that the output checks see them
        gamma, beta = torch.randn(DIM, generator=g) + 1, torch.randn(DIM, generator=g)
        layer.gamma.copy_(gamma), layer.beta.copy_(beta)
        ref.weight.copy_(gamma), ref.bias.copy_(beta)
    batches = [3 * torch.randn(N, DIM, generator=g) + torch.arange(DIM) for _ in range(STEPS)]
    results += training_mode(layer, ref, batches)
    results += eval_mode(layer, ref, 2 * torch.randn(N, DIM, generator=g))
    return results


def solution_class():
    """makemore's layer, called the way the exercise calls the lecture's."""
    from makemore.models.batchnorm import BatchNorm

    return lambda dim, eps, momentum: BatchNorm(dim, momentum=momentum, eps=eps)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check a BatchNorm1d layer against torch.nn.BatchNorm1d.")
    parser.add_argument("--solution", action="store_true", help="check makemore.models.batchnorm.BatchNorm instead")
    args = parser.parse_args(argv)
    layer_class = solution_class() if args.solution else BatchNorm1d
    try:
        results = check(layer_class)
    except NotImplementedError as e:
        print(e)
        return 1
    except Exception as e:  # the learner's code: one line, not a traceback
        print(f"your layer raised {type(e).__name__}: {e}")
        return 1
    for name, wrong in results:
        print(f"{'ok   ' if not wrong else 'wrong'}  {name}" + (f"  -- {wrong}" if wrong else ""))
    ok = not any(wrong for _, wrong in results)
    print("all ok" if ok else f"{sum(bool(w) for _, w in results)} of {len(results)} wrong")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
