"""Every example runs and matches its golden transcript, on any x86-64 CPU.

The examples that train run here in their quick mode (MAKEMORE_QUICK=1: a few hundred steps)
against examples/golden/quick/; the full runs' transcripts in examples/golden/ are what the
chapters quote. A transcript is compared line by line and token by token:

- words, and integers (sizes, counts, steps, parameter numbers, exact/approx verdicts), exactly;
- decimals (losses, NLLs) within RTOL of the golden value or one unit of the last printed digit;
- rounding-level diagnostics -- the gradient check's max differences, below 1e-6 -- only against
  a bound for the dtype of the table they are in, never digit for digit: they measure how the
  CPU's kernels round, and differ between AVX2 and AVX-512 machines (3.26e-09 vs 4.19e-09).
"""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # real processes: the suite's slow tier

ROOT = Path(__file__).resolve().parent.parent
RTOL = 1e-3
ROUNDING_LEVEL = 1e-6  # a golden decimal below this measures rounding, not a result
ROUNDING_BOUND = {"float32": 1e-6, "float64": 1e-14}  # what such a value may reach, by table dtype
NUMBER = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*(?:e[-+]?\d+)?|nan|inf)")

EXAMPLES = ["part1_bigram", "part2_mlp", "part3_batchnorm", "part4_gradients", "part5_wavenet", "part6_transformer"]


def _tokens(line: str) -> list[str]:
    """Numbers and the text between them; whitespace runs count as one space."""
    parts, at = [], 0
    for m in NUMBER.finditer(line):
        parts += [" ".join(line[at : m.start()].split()), m.group()]
        at = m.end()
    return parts + [" ".join(line[at:].split())]


def _is_decimal(token: str) -> bool:
    return bool(NUMBER.fullmatch(token)) and ("." in token or "e" in token or token.lstrip("+-") in ("nan", "inf"))


def _unit(token: str) -> float:
    """One unit of the last printed digit of a decimal ('2.41' -> 0.01)."""
    mantissa, _, exponent = token.partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def compare_transcripts(got: str, golden: str) -> list[str]:
    """The differences that matter between two transcripts, one message each (empty: they match)."""
    got_lines, golden_lines = got.splitlines(), golden.splitlines()
    if len(got_lines) != len(golden_lines):
        return [f"{len(got_lines)} lines, golden has {len(golden_lines)}"]
    problems, bound = [], ROUNDING_BOUND["float32"]
    for n, (a, g) in enumerate(zip(got_lines, golden_lines), 1):
        bound = next((b for dtype, b in ROUNDING_BOUND.items() if g.startswith(dtype)), bound)
        ta, tg = _tokens(a), _tokens(g)
        if len(ta) != len(tg):
            problems.append(f"line {n}: {a!r} vs golden {g!r}")
            continue
        for x, y in zip(ta, tg):
            if not (_is_decimal(y) and _is_decimal(x)):
                ok = x == y
            elif 0 < abs(float(y)) < ROUNDING_LEVEL:
                ok = abs(float(x)) <= bound
            elif math.isnan(float(y)):
                ok = math.isnan(float(x))
            else:
                ok = abs(float(x) - float(y)) <= max(RTOL * abs(float(y)), _unit(y) * 1.01)
            if not ok:
                problems.append(f"line {n}: {x!r} vs golden {y!r} in {g.strip()!r}")
    return problems


def test_the_comparison_ignores_rounding_and_catches_results():
    head = "float32: table\nhpreact  32x200  False True "
    golden = head + "4.19e-09\nmlp (11,897 parameters, step 500)\n  dev   2.1032\nemma e:2.41 m:3.01"
    cpu_b = head + "3.26e-09\nmlp (11,897 parameters, step 500)\n  dev   2.1033\nemma e:2.42 m:3.01"
    assert compare_transcripts(cpu_b, golden) == []
    for wrong in [
        cpu_b.replace("3.26e-09", "3.26e-05"),
        cpu_b.replace("2.1033", "2.1100"),
        cpu_b.replace("False True", "True True"),
        cpu_b.replace("11,897", "11,898"),
        cpu_b.replace("emma", "emmy"),
        cpu_b.replace("e:2.42", "e:2.48"),
    ]:
        assert compare_transcripts(wrong, golden), wrong
    assert compare_transcripts("float64: t\nC 27x10 False True 1e-10", "float64: t\nC 27x10 False True 9.11e-18")


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_matches_its_golden_output(tmp_path, example):
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MAKEMORE_QUICK": "1",
    }
    script = ROOT / "examples" / f"{example}.sh"
    out = subprocess.run(["bash", script, tmp_path / "run"], capture_output=True, text=True, env=env, check=True)
    golden_dir = ROOT / "examples" / "golden"
    golden = golden_dir / "quick" / f"{example}.txt"
    golden = golden if golden.exists() else golden_dir / f"{example}.txt"  # examples with no quick mode
    problems = compare_transcripts(out.stdout, golden.read_text())
    assert not problems, "\n".join(problems)


def test_an_example_given_a_bad_run_directory_says_why_on_stderr(tmp_path):
    """Training output is no longer thrown away: a run directory that cannot be made is named."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    (tmp_path / "a-file").write_text("")
    script = ROOT / "examples" / "part1_bigram.sh"
    out = subprocess.run(["bash", script, tmp_path / "a-file" / "run"], capture_output=True, text=True, env=env)
    assert out.returncode != 0 and out.stdout == ""
    assert "cannot create run directory" in out.stderr and "a-file" in out.stderr, out.stderr
