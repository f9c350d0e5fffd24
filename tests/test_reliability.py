"""Interrupted, crashed, fed garbage: the run survives, nothing is lost, nothing is trusted blindly."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from makemore import checkpoint, files
from makemore.data import Dataset

from conftest import run_cli, snapshot, wait_for

TRAIN = [
    sys.executable,
    "-m",
    "makemore",
    "train",
    "--type",
    "mlp",
    "-q",
    "--threads",
    "1",
    "-b",
    "32",
    "--eval-interval",
    "500",
]


def _log(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "train_seconds"} for row in rows]


def _weights(path):
    _, tensors = checkpoint._read(path)
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "optim."))}


def test_ctrl_c_and_sigterm_share_one_handler_that_asks_the_loop_to_stop():
    """So one real signal in a real process (below) tests both."""
    from makemore.train import StopOnSignal

    class Loop:
        stop = None

        def request_stop(self, reason):
            self.stop = reason

    before = signal.getsignal(signal.SIGINT)  # Python's handler, or SIG_IGN where the shell ignores ^C
    hook, loop = StopOnSignal(), Loop()
    hook.on_start(loop)
    try:
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        assert handlers[signal.SIGINT] is handlers[signal.SIGTERM]
        handlers[signal.SIGINT](signal.SIGINT, None)
        assert loop.stop == "SIGINT"
    finally:
        hook.close()
    assert signal.getsignal(signal.SIGINT) is before  # put back as it was


@pytest.mark.slow
def test_interrupt_then_resume_equals_an_uninterrupted_run(capsys, tmp_path, small_names, sig=signal.SIGTERM):
    steps = ["--max-steps", "1500", "-i", small_names]  # the signal lands after the first checkpoint (500)
    subprocess.run([*TRAIN, *steps, "-o", tmp_path / "straight"], check=True, capture_output=True)
    interrupted = tmp_path / "interrupted"
    proc = subprocess.Popen([*TRAIN, *steps, "-o", interrupted], stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (interrupted / checkpoint.LAST).exists())
    proc.send_signal(sig)
    err = proc.communicate()[1]
    assert proc.returncode == 1 and "Resume with: makemore train -o" in err and "Traceback" not in err, err
    stopped_at = checkpoint._read(interrupted / checkpoint.LAST)[0]["step"]
    print(f"{sig.name} stopped the run at step {stopped_at}")
    assert 0 < stopped_at < 1500
    assert run_cli(capsys, "train", "-o", interrupted, "--resume", "-q")[0] == 0  # resumed in this process
    assert _log(interrupted) == _log(tmp_path / "straight")
    a, b = _weights(interrupted / checkpoint.LAST), _weights(tmp_path / "straight" / checkpoint.LAST)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bitwise


@pytest.mark.slow
def test_sigkill_during_saves_leaves_loadable_checkpoints(capsys, tmp_path, small_names):
    run_dir = tmp_path / "run"
    argv = [*TRAIN[:-2], "--eval-interval", "1", "--max-steps", "100000", "-i", small_names, "-o", run_dir]
    # it evaluates and saves every step
    proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    wait_for(lambda: (run_dir / checkpoint.LAST).exists())
    rng = random.Random(0)
    for _ in range(5):  # kill at random moments while it keeps rewriting both files
        time.sleep(rng.uniform(0.05, 0.3))
        for name in (checkpoint.BEST, checkpoint.LAST):
            checkpoint.load(run_dir / name)  # loadable at every moment
    proc.kill()
    proc.wait()
    step = checkpoint._read(run_dir / checkpoint.LAST)[0]["step"]
    checkpoint.load(run_dir / checkpoint.BEST)
    resume = ["train", "-o", run_dir, "--resume", "--max-steps", step + 5, "--eval-interval", 1000, "-q"]
    code, _, err = run_cli(capsys, *resume)  # in this process: the killed one is gone
    assert code == 0, err
    assert not list(run_dir.glob(".*.tmp"))
    assert all(row["step"] <= step + 5 for row in _log(run_dir))


def test_failed_write_mid_run_is_one_line_and_keeps_the_checkpoint(capsys, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    assert run_cli(capsys, "train", "-o", run_dir, "--max-steps", "200", "--eval-interval", "100", "-q")[0] == 0
    before = snapshot(run_dir)
    real_replace = os.replace

    def denied(src, dst):
        if str(dst).endswith(".safetensors"):
            raise PermissionError(13, "Permission denied")
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", denied)
    code, _, err = run_cli(capsys, "train", "-o", run_dir, "--resume", "--max-steps", "400", "-q")
    errors = [line for line in err.splitlines() if "error" in line]
    assert code == 1 and len(errors) == 1 and "Permission denied" in errors[0] and "Traceback" not in err
    assert snapshot(run_dir)["last.safetensors"] == before["last.safetensors"]
    checkpoint.load(run_dir / checkpoint.LAST)


def test_skip_nonfinite_skips_instead_of_stopping(capsys, tmp_path):
    code, _, err = run_cli(
        capsys,
        "train",
        "-o",
        tmp_path / "a",
        "--max-steps",
        "50",
        "-l",
        "1e30",
        "--optimizer",
        "sgd",
        "--warmup-steps",
        "0",
        "-q",
    )
    errors = [line for line in err.splitlines() if "error" in line]
    assert code == 1 and len(errors) == 1 and "at step" in errors[0] and "Traceback" not in err
    for lr, why in (("1e20", None), ("1e30", "the weights became infinite by step")):
        code, _, err = run_cli(
            capsys,
            "train",
            "-o",
            tmp_path / f"b{lr}",
            "--max-steps",
            "50",
            "-l",
            lr,
            "--optimizer",
            "sgd",
            "--warmup-steps",
            "0",
            "--skip-nonfinite",
            "-q",
        )
        assert "Traceback" not in err
        if why is None:  # non-finite steps skipped, training went on to the end
            assert code == 0 and [row for row in _log(tmp_path / f"b{lr}") if "skipped" in row], err
        else:  # an update that overflowed float32 reaches no checkpoint: one line, nothing left behind
            errors = [line for line in err.splitlines() if "error" in line]
            assert code == 1 and len(errors) == 1 and why in errors[0], err
            assert not (tmp_path / f"b{lr}").exists()


def _write(path, content):
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


HOSTILE_RUNS = {  # input -> runs correctly (the item count it trains on)
    "two items": ("solo\nduo\n", 2),
    "duplicates": ("anna\n" * 50 + "bob\n" * 50, 100),
    "emoji and combining": ("🙂ana\ne\u0301lodie\nzoe\u0308\n👩‍👩‍👧x\n" * 5, 20),
    "crlf and bom": ("\ufeffann\r\nbo\r\n\r\ncy\r\n", 3),
    "one megabyte line": ("a" * 1_000_000 + "\nkim\nlee\n", 2),
}


@pytest.mark.parametrize("case", list(HOSTILE_RUNS))
def test_odd_data_trains(capsys, tmp_path, case):
    content, n_items = HOSTILE_RUNS[case]
    source = _write(tmp_path / "items.txt", content)
    code, out, err = run_cli(
        capsys, "train", "-i", source, "-o", tmp_path / "run", "--max-steps", "20", "--eval-interval", "10", "-q"
    )
    assert code == 0, err
    assert (tmp_path / "run" / "input.txt").read_bytes() == source.read_bytes()  # the run's own copy
    assert sum(Dataset.load(tmp_path / "run" / "data.safetensors")[0].sizes) == n_items
    if case == "one megabyte line":
        assert "skipped 1 items longer than 1000" in err
    code, out, err = run_cli(capsys, "sample", "-o", tmp_path / "run", "-n", "3", "--seed", "0")
    assert code == 0, err


def test_hostile_inputs_are_one_line_errors(capsys, tmp_path):
    many = "\n".join(chr(c) for c in range(0x4E00, 0x4E00 + 12000))  # 12,000 distinct CJK characters
    cases = {
        "cp1252": ("caf\xe9 na\xefve\n".encode("cp1252"), "not valid UTF-8"),
        "nul": (b"ab\ncd\x00\n", "NUL bytes"),
        "huge vocabulary": (many, "distinct characters"),
        "all too long": ("x" * 2000 + "\n", "longer than --max-item-len"),
        "one item": ("solo\n", "leave nothing for training"),
    }
    for name, (content, why) in cases.items():
        source = _write(tmp_path / f"{name}.txt", content)
        code, _, err = run_cli(capsys, "train", "-i", source, "-o", tmp_path / name, "--max-steps", "5", "-q")
        assert code == 1 and why in err and err.count("\n") == 1 and "Traceback" not in err, (name, err)
        assert not (tmp_path / name).exists()  # failed before creating anything


@pytest.mark.slow
def test_fifo_input_does_not_hang(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [sys.executable, "-m", "makemore", "train", "-i", fifo, "-o", tmp_path / "run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "not a regular file" in proc.stderr


def test_run_dir_that_is_a_file(capsys, tmp_path):
    target = _write(tmp_path / "occupied", "x")
    code, _, err = run_cli(capsys, "train", "-o", target, "--max-steps", "5", "-q")
    assert code == 1 and "not a directory" in err and target.read_text() == "x"
    code, _, err = run_cli(capsys, "train", "-o", target / "sub", "--max-steps", "5", "-q")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
