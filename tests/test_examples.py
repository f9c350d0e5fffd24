"""The Part 1 example reproduces its golden output exactly (counting is deterministic everywhere)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_part1_example_matches_its_golden_output(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", ROOT / "examples" / "part1_bigram.sh", tmp_path / "run"], capture_output=True, text=True, env=env, check=True)
    golden = (ROOT / "examples" / "golden" / "part1_bigram.txt").read_text()
    assert out.stdout == golden
