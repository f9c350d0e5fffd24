"""The learners' exercise scripts in examples/exercises/: each checker accepts the package's own
answer, rejects a wrong one, and ships blank, exiting non-zero until the learner fills it in."""

import importlib.util
from pathlib import Path

from makemore.backprop import batchnorm_backward

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "exercises" / "part4_backward.py"


def load():
    spec = importlib.util.spec_from_file_location("part4_backward", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checker_accepts_the_reference(capsys):
    exercise = load()
    assert exercise.main(["--solution"]) == 0
    out = capsys.readouterr().out
    print(out)
    assert out.rstrip().endswith("ok")
    assert exercise.check(batchnorm_backward) < exercise.TOLERANCE


def test_the_checker_rejects_a_wrong_answer(capsys):
    exercise = load()
    exercise.batchnorm_backward = lambda *args: batchnorm_backward(*args) * 1.01
    assert exercise.main([]) == 1
    out = capsys.readouterr().out
    print(out)
    assert out.rstrip().endswith("wrong")
    # the formula for a biased (1/n) variance: the trap this exercise sets
    exercise.batchnorm_backward = lambda d, g, r, vi: g * vi / len(d) * (len(d) * d - d.sum(0) - r * (d * r).sum(0))
    assert exercise.main([]) == 1
    assert capsys.readouterr().out.rstrip().endswith("wrong")
    # a gradient of the wrong shape (summed over the batch) is one clear line, not a broadcast
    exercise.batchnorm_backward = lambda dhpreact, bngain, bnraw, bnvar_inv: (bngain * dhpreact).sum(0)
    assert exercise.main([]) == 1
    assert "shape" in capsys.readouterr().out


def test_the_shipped_blank_exits_non_zero_with_your_turn(capsys):
    """In-process (a fresh interpreter would spend seconds importing torch): main() is what the
    script's `sys.exit(main())` returns."""
    assert load().main([]) == 1
    out = capsys.readouterr().out
    print(out)
    assert out.startswith("your turn")
    assert "sys.exit(main())" in SCRIPT.read_text()
