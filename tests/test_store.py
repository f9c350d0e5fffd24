"""The run directory: nobody can redirect its writes, one writer at a time, and a failed start
leaves nothing behind."""

import os
import signal
import subprocess
import sys

import pytest

from makemore import checkpoint, files

from conftest import run_cli, wait_for

QUICK = ["--max-steps", "30", "--eval-interval", "30", "-q"]
SLOW = [
    sys.executable,
    "-m",
    "makemore",
    "train",
    "--type",
    "mlp",
    "--threads",
    "1",
    "-q",
    "--max-steps",
    "1000000",
    "--eval-interval",
    "200",
]


def test_a_planted_symlink_cannot_redirect_the_log(capsys, tmp_path):
    run_dir, target = tmp_path / "run", tmp_path / "elsewhere" / "victim.txt"
    run_dir.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (run_dir / "metrics.jsonl").symlink_to(target)  # dangling: append mode would create the target
    code, _, err = run_cli(capsys, "train", "-o", run_dir, *QUICK)
    assert code == 1 and "is a symbolic link" in err and "Traceback" not in err
    assert not target.exists()


def test_a_planted_symlink_for_the_plot_is_replaced_not_followed(capsys, tmp_path):
    run_dir, victim = tmp_path / "run", tmp_path / "victim.txt"
    run_dir.mkdir()
    victim.write_text("precious")
    (run_dir / "loss.png").symlink_to(victim)
    assert run_cli(capsys, "train", "-o", run_dir, *QUICK)[0] == 0
    assert victim.read_text() == "precious"
    assert not (run_dir / "loss.png").is_symlink() and (run_dir / "loss.png").read_bytes().startswith(b"\x89PNG")


def test_a_run_directory_owned_by_someone_else_is_refused(capsys, tmp_path, monkeypatch):
    run_dir = tmp_path / "theirs"
    run_dir.mkdir()
    monkeypatch.setattr(files.os, "geteuid", lambda: os.stat(run_dir).st_uid + 1)
    code, _, err = run_cli(capsys, "train", "-o", run_dir, *QUICK)
    assert code == 1 and "belongs to another user" in err
    assert list(run_dir.iterdir()) == []


def test_one_writer_at_a_time_and_the_lock_dies_with_its_holder(tmp_path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([*SLOW, "-o", run_dir], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (run_dir / checkpoint.LAST).exists())
        for argv in (["train", "-o", run_dir, "--resume", "-q"], ["diagnose", "-o", run_dir, "--steps", "1"]):
            second = subprocess.run([sys.executable, "-m", "makemore", *map(str, argv)], capture_output=True, text=True)
            print(second.stderr.strip())
            assert second.returncode == 1 and f"in use by process {holder.pid}" in second.stderr
            assert "Traceback" not in second.stderr
        holder.send_signal(signal.SIGKILL)  # no chance to clean up: the kernel drops the lock
        holder.wait()
    finally:
        holder.kill()
    resumed = subprocess.run(
        [sys.executable, "-m", "makemore", "train", "-o", str(run_dir), "--resume", "--max-steps", "10", "-q"],
        capture_output=True,
        text=True,
    )
    assert "in use" not in resumed.stderr, resumed.stderr


@pytest.mark.parametrize(
    "argv, why",
    [
        (["--device", "cuda"], "CUDA is not available"),
        (["--type", "mlp", "--manual-grad"], "no hand-written backward pass"),
        (["-l", "1e30", "--optimizer", "sgd", "--warmup-steps", "0"], "loss became nan at step"),
    ],
)
def test_a_failed_start_leaves_nothing_and_can_be_run_again(capsys, tmp_path, argv, why):
    run_dir = tmp_path / "new"
    for _attempt in range(2):  # the same command, again: the same error, never "already holds a run"
        code, _, err = run_cli(capsys, "train", "-o", run_dir, *argv, *QUICK)
        assert code == 1 and why in err and "already holds" not in err, err
        assert not run_dir.exists()


def test_a_failed_start_in_an_existing_directory_keeps_the_directory_and_its_other_files(capsys, tmp_path):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("keep me")
    code, _, err = run_cli(capsys, "train", "-o", run_dir, "--device", "cuda", *QUICK)
    assert code == 1 and sorted(p.name for p in run_dir.iterdir()) == ["notes.txt"]
