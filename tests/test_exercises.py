"""The learners' exercise scripts in examples/exercises/: each checker accepts the reference answer,
rejects plausible wrong ones with a line that says what is wrong, and ships blank, exiting
non-zero until the learner fills it in. All in-process: a fresh interpreter would spend seconds
importing torch, and main() is what each script's `sys.exit(main())` returns."""

import importlib.util
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from makemore.backprop import backward_steps, batchnorm_backward

EXERCISES = Path(__file__).resolve().parent.parent / "examples" / "exercises"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXERCISES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(exercise, capsys, *argv) -> tuple[int, str]:
    code = exercise.main(list(argv))
    out = capsys.readouterr().out
    print(out)
    return code, out


@pytest.mark.parametrize(
    "name",
    [
        "part2_overfit_one_batch",
        "part3_batchnorm_layer",
        "part4_ex1_every_gradient",
        "part4_ex3_batchnorm_backward",
        "part6_attention_head",
    ],
)
def test_each_shipped_blank_exits_non_zero_with_your_turn(name, capsys):
    code, out = run(load(name), capsys)
    assert code == 1
    assert "your turn" in out.splitlines()[-1]
    text = (EXERCISES / f"{name}.py").read_text()
    assert "sys.exit(main())" in text and f"python examples/exercises/{name}.py" in text


# --- Part 4, exercise 1: every intermediate gradient ----------------------------------------------
def test_every_gradient_accepts_makemores_backward_steps(capsys):
    code, out = run(load("part4_ex1_every_gradient"), capsys, "--solution")
    assert code == 0 and out.rstrip().endswith("ok")
    lines = out.splitlines()[:-1]
    assert [line.split()[0] for line in lines] == load("part4_ex1_every_gradient").ORDER
    assert all(line.split()[1] in ("exact", "approx") for line in lines)


def test_every_gradient_reports_each_wrong_one_by_name(capsys):
    exercise = load("part4_ex1_every_gradient")

    def with_mistakes(p, t, Xb, Yb):
        d = backward_steps(p, t, Xb, Yb)
        n = Xb.shape[0]
        d["counts"] = t["counts_sum_inv"] * d["probs"]  # forgot the second use, in counts_sum
        d["bndiff2"] = d["bndiff2"] * (n - 1) / n  # 1/n where the forward's variance has 1/(n-1)
        d["bngain"] = d["bngain"].squeeze(0)  # (H,) for a (1, H) tensor
        d["C"] = None
        return d

    exercise.backward = with_mistakes
    code, out = run(exercise, capsys)
    assert code == 1
    said = {line.split()[0]: line.split(maxsplit=1)[1] for line in out.splitlines()[:-1]}
    assert said["counts"].startswith("wrong ") and said["bndiff2"].startswith("wrong ")
    assert said["bngain"].startswith("wrong shape") and said["C"].startswith("blank")
    assert said["probs"].startswith("exact") and said["hprebn"].startswith(("exact", "approx"))
    assert out.splitlines()[-1] == "22 of 26 right, 1 blank; the first wrong one is d['counts']"


def test_every_gradient_says_where_the_learners_code_failed(tmp_path, capsys):
    # the learner filled d["probs"] but not d["logprobs"], which it uses
    source = (EXERCISES / "part4_ex1_every_gradient.py").read_text()
    filled = source.replace('d["probs"] = None', 'd["probs"] = (1.0 / t["probs"]) * d["logprobs"]')
    (tmp_path / "part4_ex1_every_gradient.py").write_text(filled)
    spec = importlib.util.spec_from_file_location("filled", tmp_path / "part4_ex1_every_gradient.py")
    exercise = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exercise)
    code, out = run(exercise, capsys)
    line = filled.splitlines().index('    d["probs"] = (1.0 / t["probs"]) * d["logprobs"]') + 1
    assert code == 1
    assert out.startswith("your backward raised TypeError")
    assert f'(line {line}: d["probs"] = (1.0 / t["probs"]) * d["logprobs"])' in out and "still None" in out


# --- Part 4, exercise 3: BatchNorm's backward in one formula --------------------------------------
def test_batchnorm_backward_accepts_the_reference(capsys):
    exercise = load("part4_ex3_batchnorm_backward")
    code, out = run(exercise, capsys, "--solution")
    assert code == 0 and out.rstrip().endswith("ok")
    assert exercise.check(batchnorm_backward) < exercise.TOLERANCE


def test_batchnorm_backward_rejects_a_wrong_answer(capsys):
    exercise = load("part4_ex3_batchnorm_backward")
    exercise.batchnorm_backward = lambda *args: batchnorm_backward(*args) * 1.01
    code, out = run(exercise, capsys)
    assert code == 1 and out.rstrip().endswith("wrong")
    # the formula for a biased (1/n) variance: the trap this exercise sets
    exercise.batchnorm_backward = lambda d, g, r, vi: g * vi / len(d) * (len(d) * d - d.sum(0) - r * (d * r).sum(0))
    code, out = run(exercise, capsys)
    assert code == 1 and out.rstrip().endswith("wrong")
    # a gradient of the wrong shape (summed over the batch) is one clear line, not a broadcast
    exercise.batchnorm_backward = lambda dhpreact, bngain, bnraw, bnvar_inv: (bngain * dhpreact).sum(0)
    code, out = run(exercise, capsys)
    assert code == 1 and "shape" in out


# --- Part 3: the BatchNorm1d layer ----------------------------------------------------------------
class LearnersBatchNorm:
    """A learner's layer in the lecture's style; each flag is one plausible mistake."""

    def __init__(self, dim, eps=1e-5, momentum=0.1, biased=False, swapped_momentum=False, eval_updates=False):
        self.eps, self.momentum, self.training = eps, momentum, True
        self.biased, self.swapped_momentum, self.eval_updates = biased, swapped_momentum, eval_updates
        self.gamma, self.beta = torch.ones(dim, requires_grad=True), torch.zeros(dim, requires_grad=True)
        self.running_mean, self.running_var = torch.zeros(dim), torch.ones(dim)

    def __call__(self, x):
        if self.training or self.eval_updates:
            mean, var = x.mean(0), x.var(0, unbiased=not self.biased)
            m = 1 - self.momentum if self.swapped_momentum else self.momentum
            with torch.no_grad():
                self.running_mean = (1 - m) * self.running_mean + m * mean
                self.running_var = (1 - m) * self.running_var + m * var
        if not self.training:
            mean, var = self.running_mean, self.running_var
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta

    def parameters(self):
        return [self.gamma, self.beta]


def wrong_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("wrong")]


def wrong_properties(out: str) -> list[str]:
    """The property of each `wrong` line, without what differed."""
    return [line.removeprefix("wrong  ").split("  -- ")[0] for line in wrong_lines(out)]


def test_batchnorm_layer_accepts_makemores_layer_and_a_lecture_style_one(capsys):
    exercise = load("part3_batchnorm_layer")
    code, out = run(exercise, capsys, "--solution")
    assert code == 0 and out.rstrip().endswith("all ok")
    exercise.BatchNorm1d = LearnersBatchNorm
    assert run(exercise, capsys)[0] == 0


EVAL_OUTPUTS = ["eval mode: normalises by the running statistics", "eval mode: one example alone gets the output"]


@pytest.mark.parametrize(
    "mistake, wrong",
    [
        ("biased", ["training mode: gamma * (x - mean)", "running_var after", *EVAL_OUTPUTS]),
        ("swapped_momentum", ["running_mean after", "running_var after", *EVAL_OUTPUTS]),
        ("eval_updates", [*EVAL_OUTPUTS, "eval mode: the running statistics stay"]),
    ],
)
@pytest.mark.filterwarnings("ignore:var\\(\\). degrees of freedom")  # eval_updates: the variance of one example
def test_batchnorm_layer_rejects_a_plausible_mistake(mistake, wrong, capsys):
    exercise = load("part3_batchnorm_layer")
    exercise.BatchNorm1d = lambda dim, eps, momentum: LearnersBatchNorm(dim, eps, momentum, **{mistake: True})
    code, out = run(exercise, capsys)
    assert code == 1
    said = wrong_properties(out)
    assert len(said) == len(wrong) and all(line.startswith(w) for w, line in zip(wrong, said))
    if mistake == "biased":
        assert "that is the 1/n variance" in wrong_lines(out)[0]


def test_batchnorm_layer_running_stats_kept_in_a_graph_are_wrong(capsys):
    class GraphKeeping(LearnersBatchNorm):
        def __call__(self, x):
            if self.training:  # the running update outside torch.no_grad(): x requires grad here
                self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * x.mean(0)
                self.running_var = (1 - self.momentum) * self.running_var + self.momentum * x.var(0)
                return self.gamma * (x - x.mean(0)) / torch.sqrt(x.var(0) + self.eps) + self.beta
            return super().__call__(x)

    exercise = load("part3_batchnorm_layer")
    exercise.BatchNorm1d = GraphKeeping
    code, out = run(exercise, capsys)
    assert code == 1 and wrong_properties(out) == ["running statistics updated without a graph (torch.no_grad())"]


# --- Part 6: one head of causal self-attention ----------------------------------------------------
class LearnersHead(nn.Module):
    """A learner's head in the lecture's style; each flag is one plausible mistake."""

    def __init__(self, n_embd, head_size, block_size, scale="head_size", masked=True, sliced=True):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
        self.scale = {"head_size": head_size**-0.5, "n_embd": n_embd**-0.5, "none": 1.0}[scale]
        self.masked, self.sliced = masked, sliced

    def forward(self, x):
        T = x.shape[1]
        scores = self.query(x) @ self.key(x).transpose(-2, -1) * self.scale
        if self.masked:
            mask = self.tril[:T, :T] if self.sliced else self.tril
            scores = scores.masked_fill(mask == 0, float("-inf"))
        return F.softmax(scores, dim=-1) @ self.value(x)


def test_attention_head_accepts_the_reference_and_a_lecture_style_one(capsys):
    exercise = load("part6_attention_head")
    code, out = run(exercise, capsys, "--solution")
    assert code == 0 and out.rstrip().endswith("all ok")
    exercise.Head = LearnersHead
    assert run(exercise, capsys)[0] == 0


@pytest.mark.parametrize(
    "mistake, said",
    [
        (dict(scale="none"), "not scaled"),
        (dict(scale="n_embd"), "1/sqrt(n_embd)"),
        (dict(masked=False), "no causal mask"),
    ],
)
def test_attention_head_names_a_plausible_mistake(mistake, said, capsys):
    exercise = load("part6_attention_head")
    exercise.Head = lambda n_embd, head_size, block_size: LearnersHead(n_embd, head_size, block_size, **mistake)
    code, out = run(exercise, capsys)
    assert code == 1
    assert said in wrong_lines(out)[0]
    if "masked" in mistake:  # the future check fails on its own, whatever the diagnosis
        assert any("leaves the outputs" in line for line in wrong_lines(out))


def test_attention_head_with_a_mask_for_block_size_only_fails_on_shorter_input(capsys):
    exercise = load("part6_attention_head")
    exercise.Head = lambda n_embd, head_size, block_size: LearnersHead(n_embd, head_size, block_size, sliced=False)
    code, out = run(exercise, capsys)
    assert code == 1 and wrong_properties(out) == ["a sequence shorter than block_size (T = 5)"]
    assert "raised RuntimeError" in wrong_lines(out)[0]


def test_attention_head_with_biased_projections_stops_at_the_first_line(capsys):
    class Biased(LearnersHead):
        def __init__(self, n_embd, head_size, block_size):
            super().__init__(n_embd, head_size, block_size)
            self.key = nn.Linear(n_embd, head_size)

    exercise = load("part6_attention_head")
    exercise.Head = Biased
    code, out = run(exercise, capsys)
    assert code == 1 and out.startswith("wrong  key, query, value") and "bias=False" in out


# --- Part 2: overfit one batch --------------------------------------------------------------------
def learners_step(exercise, sign=-1.0, zero_grad=True):
    """A learner's training step in the lecture's style; the keywords are plausible mistakes."""

    def step(parameters, X, Y, lr):
        loss = F.cross_entropy(exercise.forward(parameters, X), Y)
        if zero_grad:
            for p in parameters:
                p.grad = None
        loss.backward()
        for p in parameters:
            p.data += sign * lr * p.grad
        return loss.item()

    return step


def test_overfit_one_batch_reaches_the_floor_with_the_reference(capsys):
    exercise = load("part2_overfit_one_batch")
    code, out = run(exercise, capsys, "--solution")
    assert code == 0 and out.rstrip().endswith("all ok")
    X, Y = exercise.examples(exercise.NAMES)
    assert len(Y) == 32 and abs(exercise.floor(X, Y) - 5 * math.log(5) / 32) < 1e-12
    final = float(re.search(r"after the last step ([0-9.]+) \(1000 steps in ", out).group(1))
    assert exercise.floor(X, Y) < final <= exercise.floor(X, Y) + exercise.MARGIN


@pytest.mark.parametrize(
    "mistake, said",
    [
        (dict(zero_grad=False), "reset it each step"),
        (dict(sign=1.0), "moved up the gradient"),
    ],
)
def test_overfit_one_batch_rejects_a_plausible_mistake(mistake, said, capsys):
    exercise = load("part2_overfit_one_batch")
    exercise.train_step = learners_step(exercise, **mistake)
    code, out = run(exercise, capsys)
    assert code == 1
    assert said in out and wrong_lines(out)[-1].startswith("wrong  train NLL after")


def test_overfit_one_batch_refuses_a_names_file_it_cannot_read(tmp_path, capsys):
    exercise = load("part2_overfit_one_batch")
    bad = tmp_path / "names.txt"
    bad.write_text("Emma\nolivia\n")
    assert exercise.main(["--solution", "--names", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and "lowercase a-z" in err and err.count("\n") == 1
    assert exercise.main(["--solution", "--names", str(tmp_path / "missing.txt")]) == 1
    assert capsys.readouterr().err.startswith("error: ")
