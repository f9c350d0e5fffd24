"""The fast examples reproduce their golden output exactly (counting and a fixed-seed gradient check
are deterministic). The examples that train for minutes are run by hand; their golden files record
the output of that run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("example", ["part1_bigram", "part4_gradients"])
def test_example_matches_its_golden_output(tmp_path, example):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", ROOT / "examples" / f"{example}.sh", tmp_path / "run"], capture_output=True, text=True, env=env, check=True)
    golden = (ROOT / "examples" / "golden" / f"{example}.txt").read_text()
    assert out.stdout == golden
