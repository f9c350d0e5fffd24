"""Part 6 ("Let's build GPT"): write one head of causal self-attention.

Fill in the class `Head` below, the lecture's single head:

- `__init__`: three linear maps without bias from n_embd to head_size, named `key`, `query` and
  `value` (nn.Linear(n_embd, head_size, bias=False)), and whatever you need for the causal mask
  of sequences up to block_size long;
- `forward(x)`, x of shape (B, T, n_embd) with T <= block_size: each token's key, query and value;
  the scores q k^T, scaled by 1 / sqrt(head_size) so that softmax does not saturate at init; the
  causal mask, so that token t sees tokens 0..t only (-inf above the diagonal); softmax over the
  keys; and the weighted sum of the values. Return (B, T, head_size). No dropout here.

Then run

    python examples/exercises/part6_attention_head.py

It compares your head with PyTorch's attention (F.scaled_dot_product_attention, causal) computed
from your own key/query/value weights, on random input, and prints one line per property, `ok` or
`wrong` with what differs -- among them that changing a future token leaves every earlier output
as it was. It exits 0 when all are ok. `--solution` checks the reference answer in
examples/exercises/solutions.py. Chapter: docs/part6-transformer.md.
"""

import argparse
import importlib.util
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class Head(nn.Module):
    """One head of causal self-attention."""

    def __init__(self, n_embd, head_size, block_size):
        super().__init__()
        raise NotImplementedError("your turn: create key, query and value, and the causal mask")

    def forward(self, x):
        raise NotImplementedError("your turn: scores, causal mask, softmax, weighted sum of the values")


# --- the checker ---------------------------------------------------------------------------------
B, N_EMBD, HEAD_SIZE, BLOCK_SIZE = 4, 32, 8, 16
TOL = dict(rtol=1e-4, atol=1e-5)  # float32 rounding


def projections(head) -> str:
    """'' when key, query and value are bias-free (n_embd -> head_size) linear maps."""
    for name in ("key", "query", "value"):
        layer = getattr(head, name, None)
        if not isinstance(layer, nn.Linear):
            return f"head.{name} is {type(layer).__name__}, expected nn.Linear"
        if tuple(layer.weight.shape) != (HEAD_SIZE, N_EMBD) or layer.bias is not None:
            return f"head.{name} is {layer}, expected Linear({N_EMBD} -> {HEAD_SIZE}, bias=False)"
    return ""


def attention(head, x, scale=None, causal=True):
    """PyTorch's attention over the head's own keys, queries and values (scale None: 1/sqrt(head_size))."""
    return F.scaled_dot_product_attention(head.query(x), head.key(x), head.value(x), is_causal=causal, scale=scale)


def compared(got, want) -> str:
    if not isinstance(got, torch.Tensor):
        return f"got {type(got).__name__}, expected a tensor"
    if got.shape != want.shape:
        return f"shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    if torch.allclose(got, want, **TOL):
        return ""
    return f"max |difference| {(got - want).abs().max().item():.3g}"


def diagnosis(head, x, out) -> str:
    """Which common slip `out` matches, if any."""
    slips = {
        "the scores are not scaled: divide q k^T by sqrt(head_size)": dict(scale=1.0),
        "scaled by 1/sqrt(n_embd): q . k sums head_size products, so divide by sqrt(head_size)": dict(
            scale=N_EMBD**-0.5
        ),
        "no causal mask: every token sees the future": dict(causal=False),
    }
    return next((slip for slip, how in slips.items() if not compared(out, attention(head, x, **how))), "")


def outcome(compare) -> str:
    """compare()'s verdict, or the error the head raised on the way, so that one failing property
    does not hide the others."""
    try:
        return compare()
    except NotImplementedError:
        raise
    except Exception as e:
        return f"raised {type(e).__name__}: {e}"


def check(head_class) -> list[tuple[str, str]]:
    """(property, '' or what is wrong) for each thing the head must do."""
    torch.manual_seed(0)
    head = head_class(N_EMBD, HEAD_SIZE, BLOCK_SIZE).eval()
    results = [("key, query, value: nn.Linear(n_embd, head_size, bias=False)", projections(head))]
    if results[0][1]:
        return results  # the other checks use them
    x = torch.randn(B, BLOCK_SIZE, N_EMBD)
    t = BLOCK_SIZE // 2
    changed = torch.cat([x[:, :t], torch.randn(B, BLOCK_SIZE - t, N_EMBD)], dim=1)

    def whole():
        out = head(x)
        wrong = compared(out, attention(head, x))
        if wrong and isinstance(out, torch.Tensor) and out.shape == x.shape[:2] + (HEAD_SIZE,):
            slip = diagnosis(head, x, out)
            wrong += f": {slip}" if slip else ""
        return wrong

    with torch.no_grad():
        results += [
            ("output = softmax(causal(q k^T / sqrt(head_size))) v, (B, T, head_size)", outcome(whole)),
            (
                f"changing tokens {t}.. leaves the outputs at 0..{t - 1} as they were",
                outcome(lambda: compared(head(changed)[:, :t], head(x)[:, :t])),
            ),
            (
                "a sequence shorter than block_size (T = 5)",
                outcome(lambda: compared(head(x[:, :5]), attention(head, x[:, :5]))),
            ),
        ]
    return results


def solution_class():
    """The reference answer, from solutions.py beside this file."""
    spec = importlib.util.spec_from_file_location("solutions", Path(__file__).with_name("solutions.py"))
    solutions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(solutions)
    return solutions.Head


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check one head of causal self-attention against PyTorch's.")
    parser.add_argument("--solution", action="store_true", help="check the reference answer in solutions.py")
    args = parser.parse_args(argv)
    head_class = solution_class() if args.solution else Head
    try:
        results = check(head_class)
    except NotImplementedError as e:
        print(e)
        return 1
    except Exception as e:  # the learner's code: one line, not a traceback
        print(f"your head raised {type(e).__name__}: {e}")
        return 1
    for name, wrong in results:
        print(f"{'ok   ' if not wrong else 'wrong'}  {name}" + (f"  -- {wrong}" if wrong else ""))
    ok = not any(wrong for _, wrong in results)
    print("all ok" if ok else f"{sum(bool(w) for _, w in results)} of {len(results)} wrong")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
