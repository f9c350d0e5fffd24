"""Part 2: overfit one batch.

Before a long training run, make sure the model and its training loop can learn at all: on a
handful of examples a network with thousands of parameters should drive the training loss down
to about the lowest any model can reach on them. Here: the lecture's MLP (a 2-dimensional
embedding of 3 characters of context, 100 tanh units; 3,481 parameters) on five names, the
32 (context, next character) examples of five_names.txt.

`forward` is given. Fill in `train_step`: one step of gradient descent on the whole batch --
the cross-entropy loss of forward's logits, the gradients of that loss alone, and every
parameter moved by -lr times its gradient. Then run

    python examples/exercises/part2_overfit_one_batch.py

It takes 1,000 steps at the lecture's learning rate 0.1 and prints one line per property, `ok` or
`wrong` with what differs: the loss your step returns, the update of one step, that the second
step uses only its own gradient, and the final training NLL, which must come within 0.05 of the
floor. The floor is not 0: the context "..." (a name's start) is followed by e, o, a, i and s once
each, and no model can predict which, so these five names cannot go below 5 ln 5 / 32 = 0.2515.
It exits 0 when all are ok. `--names FILE` overfits other names (lowercase a-z, one a line);
`--solution` checks the reference answer in examples/exercises/solutions.py.
Chapter: docs/part1-2-bigram-mlp.md.
"""

import argparse
import math
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F

CONTEXT, N_EMBD, N_HIDDEN = 3, 2, 100  # the lecture's first MLP
CHARS = ".abcdefghijklmnopqrstuvwxyz"  # '.' marks both ends of a name


def forward(parameters, X):
    """Logits (n, 27) for contexts X (n, CONTEXT)."""
    C, W1, b1, W2, b2 = parameters
    emb = C[X]  # (n, CONTEXT, N_EMBD)
    h = torch.tanh(emb.view(-1, CONTEXT * N_EMBD) @ W1 + b1)  # (n, N_HIDDEN)
    return h @ W2 + b2


def train_step(parameters, X, Y, lr):
    """One step of gradient descent on the batch (X, Y); return the loss (a float) before the step."""
    raise NotImplementedError("your turn: the loss, its gradients, the update")


# --- the checker ---------------------------------------------------------------------------------
STEPS, LR, MARGIN = 1000, 0.1, 0.05
NAMES = Path(__file__).with_name("five_names.txt")


def examples(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (context, next character) pair of the names in `path`."""
    names = path.read_text().split()
    if not names or any(ch not in CHARS[1:] for name in names for ch in name):
        raise ValueError(f"{path}: expected names of lowercase a-z, one a line")
    X, Y = [], []
    for name in names:
        context = [0] * CONTEXT
        for ch in name + ".":
            X.append(context)
            Y.append(CHARS.index(ch))
            context = context[1:] + [Y[-1]]
    return torch.tensor(X), torch.tensor(Y)


def floor(X, Y) -> float:
    """The lowest mean NLL any model can reach on (X, Y): each context predicted by the frequencies
    of the characters that follow it."""
    follows = defaultdict(Counter)
    for x, y in zip(X.tolist(), Y.tolist()):
        follows[tuple(x)][y] += 1
    total = sum(-c * math.log(c / sum(after.values())) for after in follows.values() for c in after.values())
    return total / len(Y)


def init_parameters() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(2147483647)
    shapes = [(len(CHARS), N_EMBD), (CONTEXT * N_EMBD, N_HIDDEN), (N_HIDDEN,), (N_HIDDEN, len(CHARS)), (len(CHARS),)]
    return [torch.randn(shape, generator=g).requires_grad_() for shape in shapes]


def gradients(parameters, X, Y) -> list[torch.Tensor]:
    """The loss's gradients at these parameter values, from fresh copies."""
    copies = [p.detach().clone().requires_grad_() for p in parameters]
    return torch.autograd.grad(F.cross_entropy(forward(copies, X), Y), copies)


def moved(before, after, grads) -> str:
    """'' when after = before - LR * grads for every parameter, else what happened instead."""
    if all(torch.allclose(a, b - LR * g, atol=1e-6) for b, a, g in zip(before, after, grads)):
        return ""
    if all(torch.equal(a, b) for b, a in zip(before, after)):
        return "the parameters did not change: update them in place (p -= ..., under torch.no_grad())"
    if all(torch.allclose(a, b + LR * g, atol=1e-6) for b, a, g in zip(before, after, grads)):
        return "they moved up the gradient (+lr): the loss grows"
    return "they moved, but not by -lr * gradient"


def first_steps(step, parameters, X, Y) -> tuple[list[tuple[str, str]], list[float]]:
    """Two steps, each held against an update computed here from the same parameters; their losses."""
    before = [p.detach().clone() for p in parameters]
    want_loss = F.cross_entropy(forward(before, X), Y).item()
    grads = gradients(before, X, Y)
    loss = step(parameters, X, Y, LR)
    if isinstance(loss, torch.Tensor):
        returned = "returned a tensor: return loss.item(), a float (a tensor would keep its graph alive)"
    elif isinstance(loss, float) and math.isclose(loss, want_loss, rel_tol=1e-5):
        returned = ""
    else:
        returned = f"returned {loss!r}, the batch's loss is {want_loss:.4f}"
    first = moved(before, [p.detach() for p in parameters], grads)
    before = [p.detach().clone() for p in parameters]
    grads = gradients(before, X, Y)
    second_loss = step(parameters, X, Y, LR)
    second = moved(before, [p.detach() for p in parameters], grads)
    if second and not first:
        second = "it used more than its own gradient: .grad adds up across backward calls; reset it each step"
    results = [
        ("train_step returns the batch's loss (before the update)", returned),
        ("one step moves each parameter by -lr * its gradient", first),
        ("the second step uses its own gradient only", second),
    ]
    return results, [loss, second_loss]


def check(step, path: Path = NAMES) -> tuple[list[tuple[str, str]], list[float], float]:
    """(property, '' or what is wrong) for each check, the losses of the STEPS steps and their seconds."""
    X, Y = examples(path)
    parameters = init_parameters()
    start = time.perf_counter()
    results, losses = first_steps(step, parameters, X, Y)
    for _ in range(STEPS - 2):
        losses.append(step(parameters, X, Y, LR))
        if not math.isfinite(losses[-1]):
            break
    with torch.no_grad():
        final = F.cross_entropy(forward(parameters, X), Y).item()
    seconds = time.perf_counter() - start
    target = floor(X, Y) + MARGIN
    name = f"train NLL after {STEPS} steps <= {target:.4f} (the floor {target - MARGIN:.4f} + {MARGIN})"
    results.append((name, "" if final <= target else f"it is {final:.4f}"))
    return results, [*losses, final], seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Overfit one batch: check a training step on five names.")
    parser.add_argument("--names", type=Path, default=NAMES, help="names to overfit, one a line (default: %(default)s)")
    parser.add_argument("--solution", action="store_true", help="check the reference answer in solutions.py")
    args = parser.parse_args(argv)
    step = solution_step() if args.solution else train_step
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a batch of 32: more threads only add overhead (and contend on a busy machine)
    try:
        results, losses, seconds = check(step, args.names)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except NotImplementedError as e:
        print(e)
        return 1
    except Exception as e:  # the learner's code: one line, not a traceback
        print(f"your train_step raised {type(e).__name__}: {e}")
        return 1
    finally:
        torch.set_num_threads(threads)
    for name, wrong in results:
        print(f"{'ok   ' if not wrong else 'wrong'}  {name}" + (f"  -- {wrong}" if wrong else ""))
    seen = ", ".join(f"step {i + 1} {losses[i]:.4f}" for i in (0, 9, 99) if i < len(losses) - 1)
    print(f"loss: {seen}; after the last step {losses[-1]:.4f} ({len(losses) - 1} steps in {seconds:.2f} s, 1 thread)")
    ok = not any(wrong for _, wrong in results)
    print("all ok" if ok else f"{sum(bool(w) for _, w in results)} of {len(results)} wrong")
    return 0 if ok else 1


def solution_step():
    """The reference answer, from solutions.py beside this file, calling this file's forward."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("solutions", Path(__file__).with_name("solutions.py"))
    solutions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(solutions)
    return lambda parameters, X, Y, lr: solutions.train_step(parameters, X, Y, lr, forward)


if __name__ == "__main__":
    sys.exit(main())
