"""Data-parallel training (torch.distributed, gloo): 2 ranks x 1 thread take the same steps as one
process on the same global batch, resume across a change of rank count, and stop together."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from makemore import checkpoint

from conftest import run_cli, wait_for

pytestmark = [pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="two ranks need two cores"), pytest.mark.slow]

MAKEMORE = [sys.executable, "-m", "makemore"]
STEPS = ["--max-steps", "20", "--eval-interval", "10", "--threads", "1", "--seed", "3", "-b", "64", "-q"]
MODELS = {
    "mlp": ["--type", "mlp"],
    "transformer": [
        "--type",
        "transformer",
        "--n-layer",
        "1",
        "--n-embd",
        "16",
        "--dropout",
        "0",
        "--emb-dropout",
        "0",
    ],
}


def _launch(*argv) -> subprocess.CompletedProcess:
    """`makemore train ARGV --nproc 2` as typed: the launcher and its ranks, real processes."""
    result = subprocess.run([*MAKEMORE, "train", *map(str, argv)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    _, tensors = checkpoint._read(run_dir / checkpoint.LAST)
    return {k: v for k, v in tensors.items() if k.startswith("model.")}


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def _train_here(capsys, *argv) -> None:
    """One process, this one: the reference the ranks are compared with, or a resume."""
    code, _, err = run_cli(capsys, "train", *argv)
    assert code == 0, err


def test_two_ranks_take_the_same_steps_as_one_process(capsys, tmp_path):
    """The transformer on the default schedule; the mlp's pair, on a constant one, also resumes below."""
    _train_here(capsys, *MODELS["transformer"], *STEPS, "-o", tmp_path / "one")
    two = _launch(*MODELS["transformer"], *STEPS, "--nproc", "2", "-o", tmp_path / "two")
    difference = _max_difference(_weights(tmp_path / "one"), _weights(tmp_path / "two"))
    print(f"transformer: 20 steps, batch 64: max |1 process - 2 ranks| over the weights = {difference:.1e}")
    assert difference < 1e-5
    assert "dev" in two.stdout and two.stdout.count("\n") == 1  # rank 0 reports, once


def test_an_mlp_on_two_ranks_takes_the_same_steps_and_resumes_on_one_process(capsys, tmp_path):
    """A constant learning rate, so that 20 steps then 20 more are the steps of 40 straight."""
    constant = ["--schedule", "constant", "--warmup-steps", "0"]
    _train_here(capsys, *MODELS["mlp"], *STEPS, *constant, "-o", tmp_path / "one")
    two = _launch(*MODELS["mlp"], *STEPS, *constant, "--nproc", "2", "-o", tmp_path / "split")
    difference = _max_difference(_weights(tmp_path / "one"), _weights(tmp_path / "split"))
    print(f"mlp: 20 steps, batch 64: max |1 process - 2 ranks| over the weights = {difference:.1e}")
    assert difference < 1e-5
    assert "dev" in two.stdout and two.stdout.count("\n") == 1  # rank 0 reports, once
    straight = [*STEPS[:1], "40", *STEPS[2:], *constant]
    _train_here(capsys, *MODELS["mlp"], *straight, "-o", tmp_path / "straight")
    _train_here(capsys, "-o", tmp_path / "split", "--resume", "--max-steps", "40", "-q")  # now one process
    difference = _max_difference(_weights(tmp_path / "straight"), _weights(tmp_path / "split"))
    print(f"40 steps straight vs 20 on 2 ranks + 20 resumed on 1: max difference {difference:.1e}")
    assert difference < 1e-5


def _ranks(launcher: int) -> dict[int, int]:
    """{rank: pid} of the processes torchrun started under the launcher."""
    found = {}
    for task in Path(f"/proc/{launcher}/task").iterdir():
        for pid in (task / "children").read_text().split():
            env = dict(
                line.split("=", 1) for line in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in line
            )
            if "RANK" in env:
                found[int(env["RANK"])] = int(pid)
    return found


def _endless(data: Path) -> list[str]:
    """Training on 2 ranks that goes on until stopped, a checkpoint every 200 steps."""
    return [
        *MAKEMORE,
        "train",
        "--type",
        "mlp",
        "-i",
        str(data),
        "--nproc",
        "2",
        "--max-steps",
        "1000000",
        "--eval-interval",
        "200",
    ]


def _signal_rank_1(run_dir: Path, data: Path, sig: signal.Signals) -> tuple[int, str]:
    """Train on 2 ranks until the first checkpoint, send `sig` to rank 1: (launcher exit code, stderr)."""
    argv = _endless(data)
    launcher = subprocess.Popen(
        [*argv, "--threads", "1", "-q", "-o", str(run_dir)], stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_for(lambda: (run_dir / checkpoint.LAST).exists())
        wait_for(lambda: len(_ranks(launcher.pid)) == 2)
        os.kill(_ranks(launcher.pid)[1], sig)
        _, err = launcher.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)  # the ranks too, whatever happened
    return launcher.returncode, err


def test_a_signal_to_one_rank_stops_every_rank_with_the_state_saved_once(capsys, tmp_path, small_names):
    run_dir = tmp_path / "run"
    code, err = _signal_rank_1(run_dir, small_names, signal.SIGTERM)
    print(err.strip())
    assert code == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "interrupted by a signal on another rank" in last and "Resume with" in last and err.count("error:") == 1
    step = checkpoint._read(run_dir / checkpoint.LAST)[0]["step"]
    assert f"at step {step};" in err  # the state was saved at the step where every rank stopped
    _train_here(capsys, "-o", run_dir, "--resume", "--max-steps", step + 10, "-q")


def test_a_rank_that_dies_stops_the_run_in_one_line_and_keeps_the_checkpoint(tmp_path, small_names):
    run_dir = tmp_path / "run"
    code, err = _signal_rank_1(run_dir, small_names, signal.SIGKILL)
    print(err.strip().splitlines()[-1])
    assert code == 1 and "Traceback" not in err and err.count("error:") == 1
    assert "lost another rank" in err or "rank 1 stopped (signal SIGKILL)" in err
    assert checkpoint.load(run_dir / checkpoint.LAST).step > 0


def test_nproc_beyond_the_cores_and_batches_that_do_not_split_are_one_line(tmp_path, capsys):
    """The first is refused by the launching command (in-process here), the others by the ranks."""
    code, _, err = run_cli(capsys, "train", "--nproc", (os.cpu_count() or 1) + 1, "-o", tmp_path / "run", "-q")
    assert code == 1 and "each rank needs one" in err and err.count("\n") == 1, err
    for argv, why in [
        (["--nproc", "2", "-b", "63"], "does not split evenly over 2 ranks"),
        (["--nproc", "2", "--type", "mlp-bn", "--manual-grad"], "train it in one process"),
    ]:
        result = subprocess.run(
            [*MAKEMORE, "train", *argv, "-o", str(tmp_path / "run"), "-q"], capture_output=True, text=True
        )
        assert result.returncode == 1 and why in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert not (tmp_path / "run").exists()


def _alive(pid: int) -> bool:
    """Whether a process still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.slow
def test_ranks_stop_when_their_launcher_is_killed_and_the_run_resumes(capsys, tmp_path, small_names):
    """SIGKILL to `train --nproc` left its ranks training (torchrun puts each in a session of its own)
    and holding the run's lock; now each rank gets SIGTERM when the launcher dies: rank 0 saves the
    state and releases the lock, and --resume goes on from it."""
    run_dir = tmp_path / "run"
    argv = _endless(small_names)
    with open(tmp_path / "stderr.txt", "w") as err:
        launcher = subprocess.Popen(
            [*argv, "--threads", "1", "-q", "-o", str(run_dir)], stderr=err, start_new_session=True
        )
    ranks = {}
    try:
        wait_for(lambda: (run_dir / checkpoint.LAST).exists())
        wait_for(lambda: len(_ranks(launcher.pid)) == 2)
        ranks = _ranks(launcher.pid)
        launcher.kill()
        launcher.wait()
        wait_for(lambda: not any(_alive(pid) for pid in ranks.values()), timeout=60)
    finally:
        for pid in ranks.values():  # whatever happened, no rank outlives the test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    print((tmp_path / "stderr.txt").read_text().strip())
    step = checkpoint._read(run_dir / checkpoint.LAST)[0]["step"]
    _train_here(capsys, "-o", run_dir, "--resume", "--max-steps", step + 10, "--threads", "1", "-q")


def test_a_rank_that_fails_without_a_word_is_one_line_from_the_launcher(tmp_path, capsys, monkeypatch):
    """The launcher's own error came after its temporary folder was gone, and reporting it there
    (a file in that folder) raised a second error with a traceback."""
    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    def aborted_rank(args):
        failure = ProcessFailure(local_rank=1, pid=1, exitcode=-signal.SIGABRT, error_file="")
        raise ChildFailedError("makemore", {1: failure})

    monkeypatch.setattr(torchrun, "run", aborted_rank)
    code, _, err = run_cli(capsys, "train", "--nproc", "2", "-o", tmp_path / "run", "-q")
    assert code == 1 and err == "makemore train: error: rank 1 stopped (signal SIGABRT); the last checkpoint is kept\n"
    assert "MAKEMORE_REPORTED" not in os.environ and "MAKEMORE_LAUNCHER" not in os.environ
