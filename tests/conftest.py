import hashlib
import time
from pathlib import Path

import pytest

from makemore.cli import main


def run_cli(capsys, *argv):
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse exits on bad flags and --help
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def wait_for(predicate, timeout: float = 120) -> None:
    """Poll until predicate() holds (a subprocess reaching a state); a bounded wait, not a speed test."""
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"still waiting after {timeout} s")


def snapshot(directory: Path) -> dict:
    """Name -> sha256 of every file in a directory: to prove nothing was overwritten."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(directory).iterdir()) if p.is_file()
    }


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory):
    """A small MLP run on the bundled names, trained once and shared by the read-only tests."""
    run_dir = tmp_path_factory.mktemp("runs") / "mlp"
    code = main(["train", "--type", "mlp", "-o", str(run_dir), "--max-steps", "600", "--eval-interval", "300", "-q"])
    assert code == 0
    return run_dir


# Peak RSS of a child process, printed as its last line of output. VmHWM belongs to the process's own
# memory map, which exec replaces; ru_maxrss would carry over the forking parent's (pytest's) peak.
PRINT_PEAK_RSS_KB = "print(next(line for line in open('/proc/self/status') if line.startswith('VmHWM')).split()[1])"
