"""The run directory: nobody can redirect its writes, one writer at a time, and a failed start
leaves nothing behind."""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys

import pytest

from makemore import checkpoint, files

from conftest import run_cli, snapshot, wait_for

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
    """A link where a run writes: a new run is refused (makemore replaces nothing it did not write),
    and a run that goes on opens its log with O_NOFOLLOW."""
    run_dir, target = tmp_path / "run", tmp_path / "elsewhere" / "victim.txt"
    run_dir.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (run_dir / "metrics.jsonl").symlink_to(target)  # dangling: append mode would create the target
    code, _, err = run_cli(capsys, "train", "-o", run_dir, *QUICK)
    assert code == 1 and "holds files a run would write (metrics.jsonl)" in err and "Traceback" not in err
    assert not target.exists()
    (run_dir / "metrics.jsonl").unlink()
    assert run_cli(capsys, "train", "-o", run_dir, *QUICK)[0] == 0
    (run_dir / "metrics.jsonl").unlink()
    (run_dir / "metrics.jsonl").symlink_to(target)  # planted between two commands of a run
    code, _, err = run_cli(capsys, "train", "-o", run_dir, "--resume", "--max-steps", "40", "-q")
    assert code == 1 and "is a symbolic link" in err and "Traceback" not in err
    assert not target.exists()


def test_a_planted_symlink_for_the_plot_is_replaced_not_followed(capsys, tmp_path):
    run_dir, victim = tmp_path / "run", tmp_path / "victim.txt"
    victim.write_text("precious")
    assert run_cli(capsys, "train", "-o", run_dir, *QUICK)[0] == 0
    (run_dir / "loss.png").unlink()
    (run_dir / "loss.png").symlink_to(victim)  # planted between two commands of a run
    assert run_cli(capsys, "train", "-o", run_dir, "--resume", "--max-steps", "40", "-q")[0] == 0
    assert victim.read_text() == "precious"
    assert not (run_dir / "loss.png").is_symlink() and (run_dir / "loss.png").read_bytes().startswith(b"\x89PNG")


def test_a_run_directory_owned_by_someone_else_is_refused(capsys, tmp_path, monkeypatch):
    run_dir = tmp_path / "theirs"
    run_dir.mkdir()
    monkeypatch.setattr(files.os, "geteuid", lambda: os.stat(run_dir).st_uid + 1)
    code, _, err = run_cli(capsys, "train", "-o", run_dir, *QUICK)
    assert code == 1 and "belongs to another user" in err
    assert list(run_dir.iterdir()) == []


@pytest.mark.slow
def test_one_writer_at_a_time_and_the_lock_dies_with_its_holder(capsys, tmp_path, small_names):
    """The holder is a real process (SIGKILL gives it no chance to clean up); the commands that meet
    its lock run here, another process all the same."""
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([*SLOW, "-i", small_names, "-o", run_dir], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (run_dir / checkpoint.LAST).exists())
        for argv in (["train", "-o", run_dir, "--resume", "-q"], ["diagnose", "-o", run_dir, "--steps", "1"]):
            code, _, err = run_cli(capsys, *argv)
            print(err.strip())
            assert code == 1 and f"in use by process {holder.pid}" in err and err.count("\n") == 1
        holder.send_signal(signal.SIGKILL)  # no chance to clean up: the kernel drops the lock
        holder.wait()
    finally:
        holder.kill()
    code, _, err = run_cli(capsys, "train", "-o", run_dir, "--resume", "--max-steps", "10", "-q")
    assert "in use" not in err, err


@pytest.mark.parametrize(
    "argv, why",
    [
        (["--device", "cuda"], "CUDA is not available"),
        (["--type", "mlp", "--manual-grad"], "no hand-written backward pass"),
        (["-l", "1e30", "--optimizer", "sgd", "--warmup-steps", "0"], "loss became nan at step"),
        (["-b", "10000000000"], "needs at least 42,766.3 GiB to train and evaluate"),
        (["--type", "transformer", "--n-embd", "100000"], "GiB to train"),
        (["--type", "transformer", "--n-embd", "1000000000"], "too large to build"),
        (["--seed", str(2**70)], "--seed must be in"),
        (["--type", "transformer", "--max-len", "3"], "shorter than the longest item"),
        (["--type", "mlp-bn", "-b", "1"], "needs at least 2 examples"),
    ],
)
def test_a_failed_start_leaves_nothing_and_can_be_run_again(capsys, tmp_path, argv, why):
    run_dir = tmp_path / "new"
    for _attempt in range(2):  # the same command, again: the same error, never "already holds a run"
        code, _, err = run_cli(capsys, "train", "-o", run_dir, *argv, *QUICK)
        assert code == 1 and why in err and "already holds" not in err, err
        assert not run_dir.exists()


@pytest.mark.slow
def test_running_out_of_memory_mid_start_is_one_line_and_leaves_nothing(tmp_path):
    """A batch that passes the estimate but not the allocator: a 4 GB address-space limit."""
    run_dir = tmp_path / "new"
    argv = [*SLOW[:-4], "--max-steps", "2", "-b", "2000000", "-o", str(run_dir)]
    limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # noqa: E731
    result = subprocess.run(argv, capture_output=True, text=True, preexec_fn=limit)
    assert result.returncode == 1 and "error: out of memory" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not run_dir.exists()


@pytest.mark.slow
def test_two_fresh_runs_into_one_directory_one_wins_and_the_other_says_so(tmp_path, small_names):
    """Started at the same moment, a few times over: never two writers, never a mixed run."""
    from makemore.runs import evaluate

    for attempt in range(2):
        run_dir = tmp_path / f"same{attempt}"
        argv = [*SLOW[:-4], "-i", str(small_names), "--max-steps", "60", "--eval-interval", "30", "-o", str(run_dir)]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(p.wait(), *p.communicate()) for p in procs]  # (code, stdout, stderr)
        winners = [r for r in results if r[0] == 0]
        losers = [r for r in results if r[0] != 0]
        assert len(winners) == 1 and len(losers) == 1, results
        print(losers[0][2].strip().splitlines()[-1])
        assert "in use by process" in losers[0][2] or "already holds a run" in losers[0][2], losers[0][2]
        assert "Traceback" not in losers[0][2]
        steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert steps == sorted(steps) and steps[-1] == 60  # one writer's log, in order
        assert f"dev {evaluate(run_dir)['dev']:.4f}" in winners[0][1]  # the winner reports its own model


def test_a_failed_start_in_an_existing_directory_keeps_the_directory_and_its_other_files(capsys, tmp_path):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("keep me")
    code, _, err = run_cli(capsys, "train", "-o", run_dir, "--device", "cuda", *QUICK)
    assert code == 1 and sorted(p.name for p in run_dir.iterdir()) == ["notes.txt"]


def test_a_disk_too_small_for_the_input_and_its_cache_is_one_line_before_writing(capsys, tmp_path, monkeypatch):
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1 << 30, (1 << 30) - 4096, 4096))
    run_dir = tmp_path / "new"
    code, _, err = run_cli(capsys, "train", "-o", run_dir, *QUICK)
    assert code == 1 and "not enough disk space" in err and "MB are free" in err, err
    assert not run_dir.exists()


NAMES = "\n".join(["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail"] * 5)
TINY = ["--type", "mlp", "--max-steps", "20", "--eval-interval", "10", "--threads", "1", "-q"]


def test_a_refused_train_never_deletes_the_users_files(capsys, tmp_path, monkeypatch):
    """`train -i input.txt -o .` in the user's own folder: refused, and input.txt is still there."""
    for name in ("input.txt", "metrics.jsonl", "loss.png", "data.safetensors"):
        (tmp_path / name).write_text(NAMES if name == "input.txt" else f"the user's {name}")
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "train", "-i", "input.txt", "-o", ".", *TINY)
    assert code == 1 and "holds files a run would write" in err and "Traceback" not in err, err
    assert {k: v for k, v in snapshot(tmp_path).items() if k != ".lock"} == before


@pytest.mark.parametrize("name", ["loss.png", "data.safetensors", "input.txt", "metrics.jsonl"])
def test_train_replaces_no_file_it_did_not_write(capsys, tmp_path, name):
    data, run_dir = tmp_path / "names.txt", tmp_path / "mine"
    data.write_text(NAMES)
    run_dir.mkdir()
    (run_dir / name).write_text("the user's own")
    code, _, err = run_cli(capsys, "train", "-i", data, "-o", run_dir, *TINY)
    assert code == 1 and name in err and "choose another -o" in err, err
    assert (run_dir / name).read_text() == "the user's own"
    assert sorted(p.name for p in run_dir.iterdir()) == sorted([name, ".lock"])


def test_a_run_whose_first_resumable_save_failed_names_its_way_forward(capsys, tmp_path, monkeypatch):
    """Disk full at the first checkpoint: model.safetensors written, last.safetensors not. Neither
    `train -o` nor `--resume` may send the user to the other; eval still works."""
    data, run_dir = tmp_path / "names.txt", tmp_path / "run"
    data.write_text(NAMES)
    write = checkpoint.atomic_write_bytes

    def disk_full_for_last(path, payload):
        if path.name == checkpoint.LAST:
            raise files.MakemoreError(f"cannot write {path}: No space left on device")
        write(path, payload)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", disk_full_for_last)
    code, _, err = run_cli(capsys, "train", "-i", data, "-o", run_dir, *TINY)
    assert code == 1 and "No space left" in err
    monkeypatch.setattr(checkpoint, "atomic_write_bytes", write)
    assert (run_dir / checkpoint.BEST).exists() and not (run_dir / checkpoint.LAST).exists()
    for argv in (["train", "-i", data, "-o", run_dir, *TINY], ["train", "-o", run_dir, "--resume", "-q"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 1 and "start a new run with another -o" in err and "use --resume" not in err, err
    assert run_cli(capsys, "eval", "-o", run_dir)[0] == 0


def test_resuming_a_run_that_never_saved_says_what_to_do(capsys, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "input.txt").write_text(NAMES)  # killed before its first checkpoint
    code, _, err = run_cli(capsys, "train", "-o", run_dir, "--resume", "-q")
    assert code == 1 and "before its first checkpoint" in err and "another -o" in err, err
