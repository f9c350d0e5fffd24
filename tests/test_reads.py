"""Reading a run directory: only regular files are read (a FIFO never hangs a command), a data cache
is used only when its checksum holds, sampling memory follows what is drawn, and what `sample` and
`score` print cannot drive the terminal."""

import json
import os
import random
import shutil
import subprocess
import sys
import threading

import pytest
import torch
from safetensors.torch import save

from makemore.data import CacheError, Dataset
from makemore.errors import MakemoreError
from makemore.sample import filter_logits

from conftest import PRINT_PEAK_RSS_KB, run_cli

QUICK = ["--max-steps", "20", "--eval-interval", "20", "--threads", "1", "-q"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, small_names):
    """A 20-step mlp on 500 names; tests copy it before changing it."""
    from makemore.cli import main

    run_dir = tmp_path_factory.mktemp("reads") / "mlp"
    assert main(["train", "--type", "mlp", "-i", str(small_names), "-o", str(run_dir), *QUICK]) == 0
    return run_dir


def _copy(run_dir, tmp_path, name="run"):
    shutil.copytree(run_dir, tmp_path / name)
    return tmp_path / name


def _cli(*argv, timeout=120):
    """`makemore ARGV` in a real process, with a limit: a read that blocks fails the test, not the suite."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "makemore", *map(str, argv)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


# --- 1. only regular files: a FIFO never hangs a command -----------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    "name, command",  # each command and each file once: they all read through data.open_regular
    [
        ("input.txt", ["eval"]),
        ("data.safetensors", ["sample", "-n", "3", "--seed", "1"]),
        ("data.safetensors", ["train", "--resume", "--max-steps", "40", "--threads", "1", "-q"]),
    ],
    ids=["eval-input", "sample-cache", "resume-cache"],
)
def test_a_fifo_in_the_run_directory_is_refused_in_one_line(tiny_run, tmp_path, name, command):
    run_dir = _copy(tiny_run, tmp_path)
    (run_dir / name).unlink()
    os.mkfifo(run_dir / name)
    proc = _cli(*command, "-o", run_dir, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{name} is not a regular file" in proc.stderr


@pytest.mark.parametrize("name", ["input.txt", "data.safetensors"])
def test_serve_does_not_hang_on_a_fifo_in_a_run(tiny_run, tmp_path, name):
    from makemore.serve import load_runs

    run_dir = _copy(tiny_run, tmp_path)
    (run_dir / name).unlink()
    os.mkfifo(run_dir / name)
    outcome = []

    def load():
        try:
            load_runs([str(run_dir)])
        except MakemoreError as e:
            outcome.append(str(e))

    loading = threading.Thread(target=load, daemon=True)
    loading.start()
    loading.join(timeout=60)
    if loading.is_alive():  # blocked on the FIFO: give it a writer that closes at once, so the thread ends
        os.close(os.open(run_dir / name, os.O_RDWR | os.O_NONBLOCK))
        loading.join(timeout=10)
        pytest.fail("loading a run blocked reading a FIFO")
    assert outcome and f"{name} is not a regular file" in outcome[0]


@pytest.mark.parametrize("name", ["input.txt", "data.safetensors", "metrics.jsonl"])
def test_a_link_in_the_run_directory_is_not_read_through(capsys, tiny_run, tmp_path, name):
    """makemore writes regular files there; a link (even to the very same bytes) was planted."""
    run_dir = _copy(tiny_run, tmp_path)
    (tmp_path / "elsewhere").write_bytes((run_dir / name).read_bytes())
    (run_dir / name).unlink()
    (run_dir / name).symlink_to(tmp_path / "elsewhere")
    command = (
        ["plot", "loss", "-o", run_dir, "--out", tmp_path / "out.png"]
        if name == "metrics.jsonl"
        else ["eval", "-o", run_dir]
    )
    code, _, err = run_cli(capsys, *command)
    assert code == 1 and err.count("\n") == 1 and f"{name} is a symbolic link" in err, err


def test_the_input_file_is_opened_without_blocking_and_checked_once_open(tmp_path, monkeypatch):
    """The -i file: a FIFO that replaces a regular file between the first look and the open is still
    refused (the check is on the open file, which O_NONBLOCK opened without waiting for a writer)."""
    import makemore.data as data

    source, fifo = tmp_path / "items.txt", tmp_path / "fifo"
    source.write_text("emma\nolivia\nava\n")
    os.mkfifo(fifo)
    monkeypatch.setattr(data, "_check_input", lambda *args: None)  # the first look, passed
    with pytest.raises(MakemoreError, match="not a regular file"):
        Dataset.read(fifo)
    assert len(Dataset.read(tmp_path / "items.txt")) == 3


# --- 2. a forged data cache is not used ----------------------------------------------------------
def _forge(path):
    """The cache with its train items' tokens reversed: a valid header and valid arrays."""
    data, meta = Dataset.load(path)
    tokens = data.tokens.clone()
    end = int(data.offsets[data.sizes[0]])
    tokens[:end] = tokens[:end].flip(0)
    path.write_bytes(save({"tokens": tokens, "offsets": data.offsets}, metadata=meta))


def test_a_cache_that_does_not_match_its_checksum_is_rebuilt(tiny_run, tmp_path):
    path = tmp_path / "data.safetensors"
    shutil.copy(tiny_run / "data.safetensors", path)
    data, meta = Dataset.load(path)
    assert len(meta["checksum"]) == 64
    _forge(path)
    with pytest.raises(CacheError, match="does not match its checksum"):
        Dataset.load(path)


def test_a_forged_cache_in_a_run_is_encoded_again_with_one_line(capsys, tiny_run, tmp_path):
    run_dir = _copy(tiny_run, tmp_path)
    code, expected, _ = run_cli(capsys, "eval", "-o", run_dir, "--json")
    assert code == 0
    _forge(run_dir / "data.safetensors")
    code, out, err = run_cli(capsys, "eval", "-o", run_dir, "--json")
    assert code == 0 and json.loads(out) == json.loads(expected)
    assert err.count("\n") == 1 and "does not match its checksum (damaged or edited); encoding" in err, err
    code, out, err = run_cli(capsys, "eval", "-o", run_dir, "--json")  # the cache was written again
    assert code == 0 and json.loads(out) == json.loads(expected) and err == ""


# --- 3. sampling memory follows what is drawn, not the longest training item ----------------------
@pytest.mark.slow
def test_sampling_after_a_52000_character_item_takes_bounded_memory(tmp_path):
    rng = random.Random(0)
    long_item = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(52_000))
    source = tmp_path / "items.txt"
    source.write_text("\n".join(["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", long_item]) + "\n")
    run_dir = tmp_path / "run"
    proc = _cli("train", "--type", "mlp", "-i", source, "-o", run_dir, "--max-item-len", "60000", *QUICK)
    assert proc.returncode == 0, proc.stderr
    code = (
        "import sys; from makemore.cli import main; "
        f"code = main(['sample', '-o', {str(run_dir)!r}, '-n', '1000', '--seed', '1']); "
        f"print(code); {PRINT_PEAK_RSS_KB}"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    *items, exit_code, peak_kb = proc.stdout.splitlines()
    print(f"sample -n 1000 after a 52,000-character item: peak RSS {int(peak_kb) / 1024:.0f} MB")
    assert exit_code == "0" and len(items) == 1000, proc.stderr
    assert int(peak_kb) < 600 * 1024  # was 1.94 GB: a 1000 x 104,001 table of int64, then as Python lists


# --- 4. temperatures below what float32 holds ------------------------------------------------------
@pytest.mark.parametrize("temperature", [1e-46, 5e-324])
def test_a_temperature_that_underflows_float32_is_the_argmax(temperature):
    logits = torch.tensor([[0.5, 0.2, 0.15, 0.1, 0.05]]).log()
    assert torch.equal(filter_logits(logits, temperature, None, None).softmax(-1), torch.tensor([[1.0, 0, 0, 0, 0]]))
    ties = torch.tensor([[1.0, 3.0, 3.0, -2.0]])
    assert torch.allclose(filter_logits(ties, temperature, None, None).softmax(-1), torch.tensor([[0, 0.5, 0.5, 0]]))


def test_sample_at_an_underflowing_temperature_draws_the_argmax_items(capsys, tiny_run):
    code, greedy, _ = run_cli(capsys, "sample", "-o", tiny_run, "-n", "5", "--seed", "1", "--temperature", "1e-30")
    assert code == 0
    for tiny in ("1e-45", "1e-46", "5e-324"):
        code, out, err = run_cli(capsys, "sample", "-o", tiny_run, "-n", "5", "--seed", "1", "--temperature", tiny)
        assert code == 0 and out == greedy, (tiny, out, err)


# --- 5. what reaches the terminal -----------------------------------------------------------------
class Terminal:
    """A stdout that says it is a terminal, and keeps what is written to it."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, s):
        self.text += s

    def flush(self):
        pass


@pytest.fixture(scope="module")
def escape_run(tmp_path_factory):
    """A run whose vocabulary holds ESC: its items can carry terminal escape sequences."""
    from makemore.cli import main

    root = tmp_path_factory.mktemp("escapes")
    source = root / "items.txt"
    source.write_text("\n".join(f"a\x1b[31m{name}" for name in ("emma", "olivia", "ava", "mia", "zoe")) + "\n")
    assert main(["train", "--type", "bigram", "-i", str(source), "-o", str(root / "run"), "-q"]) == 0
    return root / "run"


def test_score_escapes_control_characters_as_sample_does(capsys, monkeypatch, escape_run):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    code, _, err = run_cli(capsys, "score", "-o", escape_run, "a\x1b[31memma")
    assert code == 0, err
    assert "\x1b" not in terminal.text and "a\\x1b[31memma\t" in terminal.text and " \\x1b:" in terminal.text
    terminal.text = ""
    code, _, err = run_cli(capsys, "sample", "-o", escape_run, "-n", "20", "--seed", "1")
    assert code == 0 and "\x1b" not in terminal.text and "\\x1b" in terminal.text, err


def test_score_into_a_pipe_gives_the_items_as_they_are(capsys, escape_run):
    code, out, _ = run_cli(capsys, "score", "-o", escape_run, "a\x1b[31memma")
    assert code == 0 and out.startswith("a\x1b[31memma\t")


def test_escape_sequences_in_run_names_and_forged_fields_do_not_reach_the_terminal(capsys, tiny_run, tmp_path):
    named = tmp_path / "run\x1b]0;owned\x07\x1b[2J"
    code, _, err = run_cli(capsys, "sample", "-o", named)
    assert code == 1 and "\x1b" not in err and "\x07" not in err and "\\x1b[2J" in err, err
    shutil.copytree(tiny_run, named)
    (named / "input.txt").write_text("changed\n")
    code, _, err = run_cli(capsys, "score", "-o", named, "emma")  # score reads no data: still fine
    assert code == 0 and "\x1b" not in err
    code, _, err = run_cli(capsys, "sample", "-o", named, "-n", "2")
    assert code == 1 and err.count("\n") == 1 and "\x1b" not in err and "has changed" in err, err
    # a forged field name in the checkpoint's metadata
    from safetensors import safe_open

    path = named / "model.safetensors"
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    forged = json.loads(meta["makemore"])
    forged["config"]["\x1b[2Jn_hidden\x1b[0m"] = 5
    path.write_bytes(save(tensors, metadata={"makemore": json.dumps(forged)}))
    for command in (["score", "-o", named, "emma"], ["sample", "-o", named]):
        code, _, err = run_cli(capsys, *command)
        assert code == 1 and err.count("\n") == 1 and "\x1b" not in err and "\\x1b[2J" in err, err


# --- 6. one item ------------------------------------------------------------------------------------
def test_one_item_is_refused_with_the_reason(capsys, tmp_path):
    source = tmp_path / "one.txt"
    source.write_text("solo\n")
    code, _, err = run_cli(capsys, "train", "-i", source, "-o", tmp_path / "run", *QUICK)
    assert code == 1 and err.count("\n") == 1
    assert "leave nothing for training" in err and "goes to the test split" in err and "give at least 2" in err, err
    assert not (tmp_path / "run").exists()
