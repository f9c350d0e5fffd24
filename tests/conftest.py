import contextlib
import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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
def small_names(tmp_path_factory) -> Path:
    """The first 500 of the bundled names: for tests of what a command does rather than how well a
    model learns, whose final evaluation of three whole splits would otherwise dominate their time."""
    from makemore.data import bundled_names

    path = tmp_path_factory.mktemp("data") / "names500.txt"
    path.write_text("\n".join(bundled_names().read_text().split()[:500]) + "\n")
    return path


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


@pytest.fixture(scope="session")
def served_runs(tmp_path_factory):
    """A folder of three small runs for `makemore serve`: an mlp, a counted bigram, a tiny transformer."""
    root = tmp_path_factory.mktemp("served")
    mlp = ["--type", "mlp", "--max-steps", "200", "--eval-interval", "100"]
    assert main(["train", *mlp, "-o", str(root / "mlp"), "-q"]) == 0
    assert main(["train", "--type", "bigram", "-o", str(root / "bigram"), "-q"]) == 0
    small = ["--n-layer", "1", "--n-embd", "16", "--max-steps", "20", "-q"]
    assert main(["train", "--type", "transformer", *small, "-o", str(root / "transformer")]) == 0
    return root


def get_json(url: str):
    """GET url's JSON, or None while nothing answers there."""
    try:
        return json.loads(urllib.request.urlopen(url, timeout=5).read())
    except OSError:
        return None


@contextlib.contextmanager
def serving(*paths):
    """`makemore serve PATHS` in a real process on a free localhost port: yields (its URL, the process),
    then stops it with Ctrl-C (SIGINT) and keeps what it printed in process.stderr_text."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "makemore", "serve", *map(str, paths), "--port", str(port)]
    server = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get_json(url + "/api/runs") is not None or server.poll() is not None, timeout=60)
        yield url, server
    finally:
        server.send_signal(signal.SIGINT)
        server.stderr_text = server.communicate(timeout=30)[1]
