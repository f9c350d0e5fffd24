import json
import os
import shutil
import subprocess
import sys
from dataclasses import fields

import pytest

from makemore import cli
from makemore.cli import COMMANDS
from makemore.models import REGISTRY, SequenceModel, WindowModel

from conftest import run_cli, snapshot

OWN_FLAG = {
    "train": "--work-dir",
    "eval": "--work-dir",
    "sample": "--num-samples",
    "score": "ITEM",
    "diagnose": "--steps",
    "gradcheck": "--batch-size",
    "gradcode": "--out",
    "compare": "--force",
    "plot": "--item",
    "serve": "--host",
    "export": "--format",
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_explains_itself(capsys, command):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0 and OWN_FLAG[command] in out and out.startswith(f"usage: makemore {command}")
    if command == "train":
        assert "--n-hidden" in out and "--learning-rate" in out and "20000" in out


def test_top_level_help_lists_every_command(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and all(command in out for command in COMMANDS)


@pytest.mark.parametrize("model_type", list(REGISTRY))
def test_train_help_shows_the_types_own_options_and_recipe(capsys, model_type):
    cls = REGISTRY[model_type]
    code, out, _ = run_cli(capsys, "train", "--type", model_type, "--help")
    options = {f.name for f in fields(cls.Config)} - {"vocab_size"}
    assert code == 0 and (f"model: {model_type}" in out) == bool(options) and "--text" in out
    assert ("--context-size" in out) == ("context_size" in options)
    assert ("--max-len" in out) == issubclass(cls, SequenceModel) and (
        issubclass(cls, WindowModel) or "measured on the data" in out
    )
    flat = " ".join(out.split())  # argparse wraps help lines
    assert f"(default: {cls.train_defaults.get('max_steps', 10000)})" in flat  # the type's own recipe


def test_model_flags_follow_the_type(capsys):
    code, out, _ = run_cli(capsys, "train", "--type", "bigram", "--help")
    assert code == 0 and "--alpha" in out and "--n-hidden" not in out


def test_eval_json_is_one_object(capsys, mlp_run):
    code, out, _ = run_cli(capsys, "eval", "-o", mlp_run, "--json")
    report = json.loads(out)
    assert code == 0 and out.count("\n") == 1
    assert {"train", "dev", "test"} <= report.keys() and all(2.0 < report[s] < 3.0 for s in ("train", "dev", "test"))


def test_sample_is_repeatable_and_marked(capsys, mlp_run):
    _, first, _ = run_cli(capsys, "sample", "-o", mlp_run, "-n", "30", "--seed", "5", "--json")
    _, again, _ = run_cli(capsys, "sample", "-o", mlp_run, "-n", "30", "--seed", "5", "--json")
    _, other, _ = run_cli(capsys, "sample", "-o", mlp_run, "-n", "30", "--seed", "6", "--json")
    samples = json.loads(first)["samples"]
    assert first == again and first != other and len(samples) == 30
    assert all(s["split"] in ("train", "dev", "test", "new") and s["item"] for s in samples)


def test_sample_options(capsys, mlp_run):
    _, out, _ = run_cli(
        capsys,
        "sample",
        "-o",
        mlp_run,
        "-n",
        "10",
        "--seed",
        "1",
        "--prefix",
        "mar",
        "--new-only",
        "--temperature",
        "0.8",
        "--top-k",
        "5",
        "--top-p",
        "0.9",
        "--json",
    )
    samples = json.loads(out)["samples"]
    assert len(samples) == 10
    assert all(s["item"].startswith("mar") and s["split"] == "new" for s in samples)


def test_score_totals_its_characters(capsys, mlp_run):
    code, out, _ = run_cli(capsys, "score", "-o", mlp_run, "emma", "xqzzq", "--json")
    emma, odd = json.loads(out)["items"]
    assert code == 0 and [c for c, _ in emma["chars"]] == ["e", "m", "m", "a", "."]
    assert emma["nll"] == pytest.approx(sum(n for _, n in emma["chars"]))
    assert emma["nll_per_char"] == pytest.approx(emma["nll"] / 5)
    assert odd["nll_per_char"] > emma["nll_per_char"]


def _bad_inputs(tmp_path, mlp_run):
    files = {"empty": b"", "blank": b"\n \n", "latin1": b"caf\xe9\n", "nul": b"a\x00b\n"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(mlp_run, corrupt)
    (corrupt / "model.safetensors").write_bytes((corrupt / "model.safetensors").read_bytes()[:100])
    (tmp_path / "norun").mkdir()
    fresh = tmp_path / "fresh"
    return [
        (["train", "-i", tmp_path / "missing.txt", "-o", fresh], "not found"),
        *[
            (["train", "-i", tmp_path / name, "-o", fresh], why)
            for name, why in [("empty", "no items"), ("blank", "no items"), ("latin1", "UTF-8"), ("nul", "NUL")]
        ],
        (["train", "-i", tmp_path, "-o", fresh], "not a regular file"),
        (["train", "-o", mlp_run, "--max-steps", "5"], "already holds a run"),
        (["train", "-o", fresh, "--max-steps", "-1"], "max-steps"),
        (["train", "-o", fresh, "-b", "0"], "batch-size"),
        (["train", "-o", fresh, "--n-hidden", "0"], "n-hidden"),
        (["train", "-o", fresh, "--n-hidden", "lots"], "invalid int"),
        (["train", "--type", "nope"], "unknown --type"),
        (["train", "-o", fresh, "--block-size", "8"], "--context-size (window models) or --max-len"),
        (
            ["train", "-o", fresh, "--type", "transformer", "--max-len", "10"],
            "shorter than the longest item of the data (15",
        ),
        (["train", "-o", fresh, "--type", "wavenet", "--context-size", "6"], "power of 2"),
        (["eval", "-o", tmp_path / "norun"], "is neither a run directory"),
        (["eval", "-o", tmp_path / "nowhere"], "not found"),
        (["eval", "-o", corrupt], "truncated or corrupted"),
        (["score", "-o", mlp_run, "ann3"], "not in the vocabulary: '3'"),
        (["sample", "-o", mlp_run, "--prefix", "Zo"], "not in the vocabulary: 'Z'"),
        (["sample", "-o", mlp_run, "--temperature", "0"], "must be > 0"),
        (["sample", "-o", mlp_run, "--top-k", "0"], "must be > 0"),
        (["sample", "-o", mlp_run, "-n", "-3"], "must be > 0"),
        (["sample", "-o", mlp_run, "--seed", str(2**70)], "must be in [0, 2**63)"),
        (["train", "-o", fresh, "--seed", str(2**70)], "--seed must be in [0, 2**63)"),
        (["gradcheck", "--seed", "-1"], "must be in [0, 2**63)"),
        (["train", "--type"], "expected one argument"),
        (["train", "-o", fresh, "--type", "mlp-bn", "-b", "1"], "needs at least 2 examples"),
        (["train", "-o", fresh, "--device", "cuda"], "CUDA is not available"),
        (["train", "-o", tmp_path / "bad\udcffname"], "not a valid UTF-8 name"),
        (["train", "-o", fresh, "--max-item-len", "1000000"], "--max-item-len must be in [1, 100,000]"),
        (["sample", "-o", mlp_run, "-n", "1000000000"], "more than one call samples (1,000,000)"),
        (["gradcheck", "-b", "100000000"], "--batch-size must be in [2, 10,000]"),
        (["diagnose", "-o", mlp_run, "-b", "1000000000"], "at most 100,000"),
        (["score", "-o", mlp_run, "a" * 100_001], "longer than 100,000 characters"),
        (["score", "-o", mlp_run, "ann3" * 1000], "'ann3ann3ann3ann3ann3ann3ann3ann3ann3ann3...'"),
    ]


def test_bad_input_is_one_line_and_overwrites_nothing(capsys, tmp_path, mlp_run):
    before = snapshot(mlp_run)
    for argv, why in _bad_inputs(tmp_path, mlp_run):
        code, out, err = run_cli(capsys, *argv)
        assert code != 0, argv
        assert err.count("\n") == 1 and why in err and "Traceback" not in err, (argv, err)
        assert not (tmp_path / "fresh").exists(), argv  # checked before anything is written
    assert snapshot(mlp_run) == before


@pytest.mark.slow
def test_real_process_prints_no_traceback(tmp_path):
    for argv in (
        ["-m", "makemore", "train", "-i", str(tmp_path / "missing.txt")],
        ["-m", "makemore", "eval", "-o", str(tmp_path)],
    ):
        proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    console = shutil.which("makemore", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert console and subprocess.run([console, "--help"], capture_output=True).returncode == 0


def test_threads_are_capped_at_the_cores(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "-o", tmp_path / "t", "--threads", "10000", "--max-steps", "1", "-q")
    assert code == 0 and f"this machine has {os.cpu_count()} cores; using {os.cpu_count()}" in err


def test_score_json_is_strict_json_when_a_character_has_probability_zero(capsys, tmp_path):
    assert run_cli(capsys, "train", "--type", "bigram", "--alpha", "0", "-o", tmp_path / "b", "-q")[0] == 0
    code, out, _ = run_cli(capsys, "score", "-o", tmp_path / "b", "qq", "--json")

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    item = json.loads(out, parse_constant=refuse)["items"][0]
    assert code == 0 and item["nll"] is None and ("q", None) in [tuple(c) for c in item["chars"]]


def test_sampled_control_characters_are_escaped_on_a_terminal(monkeypatch):
    class Terminal:
        def isatty(self):
            return True

    monkeypatch.setattr(cli.sys, "stdout", Terminal())
    assert cli._shown("an\x1b[31mred") == "an\\x1b[31mred"
    monkeypatch.setattr(cli.sys, "stdout", type("Pipe", (), {"isatty": lambda self: False})())
    assert cli._shown("an\x1b[31mred") == "an\x1b[31mred"  # a pipe gets the items as they are
