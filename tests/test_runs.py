"""What the commands do with a run: --resume continues the run it was given, as it was."""

import json
import shutil

import pytest

from makemore.data import bundled_names

from conftest import run_cli, snapshot

COMMAND = ["train", "--type", "mlp", "--n-hidden", "64", "--max-steps", "30", "--eval-interval", "30", "-q"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 30-step mlp run; tests copy it before changing it."""
    from makemore.cli import main

    run_dir = tmp_path_factory.mktemp("runs") / "mlp"
    assert main([*COMMAND, "-o", str(run_dir)]) == 0
    return run_dir


def _copy(run, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def test_the_same_command_with_resume_appended_continues_the_run(capsys, run, tmp_path):
    run_dir = _copy(run, tmp_path)
    argv = [*COMMAND, "-o", run_dir, "-i", bundled_names(), "--resume", "--max-steps", "60"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and "best step 60" in out, err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--n-hidden", "65"], "--n-hidden 65 conflicts with this run's 64"),
        (["--max-item-len", "3"], "--max-item-len 3 conflicts with this run's 1000"),
        (["--type", "bigram"], "--type bigram conflicts with this run's mlp"),
        (["--optimizer", "sgd"], "--optimizer sgd conflicts with this run's adamw"),
        (["--seed", "7"], "--seed 7 conflicts with this run's 42"),
        (["--type", "transformer", "--n-layer", "2"], "--type transformer conflicts"),
    ],
)
def test_resume_refuses_what_would_change_the_run_naming_both_values(capsys, run, flags, message):
    before = snapshot(run)
    code, _, err = run_cli(capsys, "train", "-o", run, "--resume", *flags, "-q")
    assert code == 1 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert snapshot(run) == before


def test_resume_refuses_another_input_file(capsys, run, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("anna\nbob\n")
    code, _, err = run_cli(capsys, "train", "-o", run, "--resume", "-i", other, "-q")
    assert code == 1 and "is not what this run trained on" in err


def test_a_torn_last_log_line_is_dropped_on_resume(capsys, run, tmp_path):
    run_dir = _copy(run, tmp_path)
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 31, "lo')  # what a crash in the middle of an append leaves
    code, _, err = run_cli(capsys, "train", "-o", run_dir, "--resume", "--max-steps", "40", "-q")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert code == 0 and rows[-1]["step"] == 40, err


def test_a_damaged_log_is_one_line(capsys, run, tmp_path):
    run_dir = _copy(run, tmp_path)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    (run_dir / "metrics.jsonl").write_text("\n".join(['{"loss": 1.0}', *lines]) + "\n")
    code, _, err = run_cli(capsys, "train", "-o", run_dir, "--resume", "--max-steps", "40", "-q")
    assert code == 1 and "line 1 has no step" in err and "Traceback" not in err


def test_an_input_edited_after_training_is_refused(capsys, run, tmp_path):
    run_dir = _copy(run, tmp_path)
    with open(run_dir / "input.txt", "a") as f:
        f.write("zyx\n")
    for argv in (["eval", "-o", run_dir], ["sample", "-o", run_dir], ["train", "-o", run_dir, "--resume", "-q"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 1 and "input.txt has changed since the run trained on it" in err, (argv, err)


def test_a_model_that_never_ends_an_item_samples_within_the_length_bound(capsys, run, tmp_path):
    """The end token made impossible: every item stops at twice the longest training item."""
    from safetensors.torch import save_file

    from makemore import checkpoint

    run_dir = _copy(run, tmp_path)
    meta, tensors = checkpoint._read(run_dir / checkpoint.BEST)
    tensors["model.b2"][0] = -1e4  # the boundary's logit
    save_file(tensors, str(run_dir / checkpoint.BEST), metadata={"makemore": json.dumps(meta)})
    code, out, err = run_cli(capsys, "sample", "-o", run_dir, "-n", "3", "--seed", "0", "--json")
    lengths = [len(s["item"]) for s in json.loads(out)["samples"]]
    assert code == 0 and lengths == [2 * meta["max_len"]] * 3, err


def test_the_data_cache_is_reused_and_rebuilt_when_damaged_or_missing(capsys, run, tmp_path):
    """eval reads the run's encoded items from data.safetensors; a damaged, foreign or missing
    cache is encoded again from input.txt, with the same numbers."""
    run_dir = _copy(run, tmp_path)
    cache = run_dir / "data.safetensors"
    code, want, err = run_cli(capsys, "eval", "-o", run_dir, "--json")
    assert code == 0 and err == "", err
    written = cache.stat().st_mtime_ns
    run_cli(capsys, "eval", "-o", run_dir)
    assert cache.stat().st_mtime_ns == written  # read, not rebuilt
    other = tmp_path / "other"
    assert run_cli(capsys, "train", "-i", _items(tmp_path, 40), "-o", other, "--max-steps", "1", "-q")[0] == 0
    cases = {
        "damaged": lambda: cache.write_bytes(cache.read_bytes()[:100]),
        "foreign": lambda: shutil.copy(other / "data.safetensors", cache),
        "missing": lambda: cache.unlink(),
    }
    for case, damage in cases.items():
        damage()
        code, out, err = run_cli(capsys, "eval", "-o", run_dir, "--json")
        print(f"{case}: {err.strip()}")
        assert code == 0 and json.loads(out) == json.loads(want), err
        assert ("encoding" in err and "again" in err) == (case != "missing")  # an older run's: silently
        assert run_cli(capsys, "eval", "-o", run_dir)[2] == ""  # cached again


def test_a_touched_input_is_checked_by_its_hash_and_a_missing_one_is_one_line(capsys, run, tmp_path):
    run_dir = _copy(run, tmp_path)
    (run_dir / "input.txt").touch()  # same bytes, new time: still the run's input
    assert run_cli(capsys, "eval", "-o", run_dir)[0] == 0
    (run_dir / "input.txt").unlink()
    code, _, err = run_cli(capsys, "sample", "-o", run_dir)
    assert code == 1 and "input.txt is missing" in err and "Traceback" not in err


def test_resume_accepts_the_same_items_written_differently(capsys, run, tmp_path):
    """--input-file on --resume must hold the run's items; its bytes may differ (CRLF, blank lines)."""
    run_dir = _copy(run, tmp_path)
    same = tmp_path / "names-crlf.txt"
    same.write_bytes(bundled_names().read_bytes().replace(b"\n", b"\r\n\r\n"))
    argv = [*COMMAND, "-o", run_dir, "-i", same, "--resume", "--max-steps", "40"]
    assert run_cli(capsys, *argv)[0] == 0
    code, _, err = run_cli(capsys, *argv[:-1], "50", "-i", _items(tmp_path, 40))
    assert code == 1 and "is not what this run trained on" in err


def _items(tmp_path, n):
    path = tmp_path / f"items{n}.txt"
    path.write_text("".join(f"item{i}\n" for i in range(n)))
    return path
