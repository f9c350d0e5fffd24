"""Every benchmark subcommand runs in --quick mode and writes the one result layout with sensible
rows, so that none can silently rot (bench_wavenet.py once failed at its first line while the README
cited it). The subcommands run in this process, on runs trained here for a few steps; one runs as a
user types it, `python -m benchmarks ...` from the repository root."""

from __future__ import annotations

import contextlib
import io
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def harness():
    """The benchmarks package, imported as `python -m benchmarks` finds it: from the repository root."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(ROOT))
        from benchmarks import __main__ as harness
        from benchmarks import common

        yield harness, common


@pytest.fixture(scope="module")
def runs(harness, tmp_path_factory):
    """transformer, mlp and bigram runs trained for a few steps on a few hundred names."""
    threads = torch.get_num_threads()
    try:
        return harness[1].train_tiny_runs(tmp_path_factory.mktemp("runs"), ["transformer", "mlp", "bigram"], 1)
    finally:
        torch.set_num_threads(threads)


def positive(rows: list[dict], key: str) -> None:
    values = [r[key] for r in rows if r.get(key) is not None]
    assert values, f"no row holds {key}"
    assert all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values), (key, values)


def check_speed(rows):
    models = {r["type"]: r for r in rows if r["kind"] == "model"}
    assert {"bigram", "mlp", "transformer"} <= set(models)
    positive([models["mlp"]["training"], models["transformer"]["training"]], "tokens_per_s")
    positive([models["transformer"]["training"]], "flops_per_step")
    run = models["transformer"]["run"]
    assert run is not None and run["best_dev"] > 0
    positive([run["sample_items_per_s"]], "1")
    positive([run], "score_items_per_s")
    positive(rows[:1], "peak_rss_mib")
    baseline = [r for r in rows if r["kind"] == "baseline"]
    assert [r["loop"] for r in baseline][0] == "plain PyTorch loop"
    positive(baseline, "tokens_per_s_vs_baseline")


def check_models(rows):
    assert [r["type"] for r in rows] == ["bigram", "mlp"]
    assert rows[1]["steps"] == 3 and rows[1]["params"] > 0
    positive(rows, "dev")


def check_leaderboard(rows):
    rows, (ensemble,) = rows[:-1], rows[-1:]
    assert [(r["type"], r["split"]) for r in rows] == [("mlp", "lectures"), ("mlp", "makemore")]
    assert all(r["seeds"] == [42, 1] and len(r["test"]) == 2 for r in rows)
    assert rows[0]["test"][0] != rows[0]["test"][1]  # two seeds, two models
    assert rows[0]["test_std"] == pytest.approx(statistics.stdev(rows[0]["test"]))
    positive(rows, "dev_mean")
    positive(rows[1:], "makemore_test_mean")
    # the two seeds on our split as one mixture: never above their mean (Jensen), and its best member is one of them
    assert ensemble["members"] == ["mlp (defaults) seed 42", "mlp (defaults) seed 1"]
    assert ensemble["dev"] <= rows[0]["dev_mean"] + 1e-6 and ensemble["test"] <= rows[0]["test_mean"] + 1e-6
    assert ensemble["best_member_dev"] == min(rows[0]["dev"])
    assert ensemble["train_seconds"] == pytest.approx(sum(rows[0]["train_seconds"]), abs=0.1)  # both members' time


def check_step(rows):
    steps = [r for r in rows if r["measure"] == "step"]
    assert {r["rows"] for r in steps} == {"padded", "packed"}
    positive(steps, "ms_per_step")
    positive([r for r in rows if "dropout" in r], "us")


def check_sampling(rows):
    assert rows and all(r["same_items"] for r in rows)  # cached and recomputed draws agree
    positive(rows, "items_per_s_cache")
    positive(rows, "items_per_s_recompute")


def check_wavenet(rows):
    assert {r["measure"] for r in rows} == {"train", "eval_dev", "sample"}
    positive([r for r in rows if r["measure"] == "train"], "examples_per_s")
    tree, conv = (r["nll"] for r in rows if r["measure"] == "eval_dev")
    assert tree == pytest.approx(conv, abs=1e-5)  # the same weights in both forms
    samples = [r for r in rows if r["measure"] == "sample"]
    positive(samples, "items_per_s")
    assert len({tuple(r["first"]) for r in samples if r["items"] > 1}) == 1  # every form draws the same


def check_data(rows):
    encode, command, train = rows
    assert encode["items"] == 2000 and encode["max_len"] == 1000
    assert command["code"] == 0
    positive([train["names"], train["10M"]], "steps_per_s")
    positive(rows, "peak_rss")


def check_ddp(rows):
    assert [r["ranks"] for r in rows] == [1, 2]
    assert rows[0]["dev"] == pytest.approx(rows[1]["dev"], abs=1e-3)  # mlp: one process and two ranks agree
    positive(rows, "dev")


def check_serve(rows):
    assert {r["type"] for r in rows} == {"transformer"}
    assert all(r["errors"] == 0 and r["requests"] > 0 for r in rows)
    positive(rows, "requests_per_s")
    positive(rows, "p50_ms")


def check_versus(rows):
    assert {r["measure"] for r in rows} >= {"transformer: scoring items/s", "mlp: scoring items/s"}
    positive(rows, "before")
    positive(rows, "ratio")


def check_threads(rows):
    assert {r["load"] for r in rows} == {"idle", "1 busy process"} and len({r["type"] for r in rows}) == 1
    positive(rows, "ms/step, 1 thread")


# subcommand -> (its options beyond --quick --threads 1 --out FILE, given the trained runs; the check)
CASES = {
    "speed": (lambda runs: ["--runs", runs], check_speed),
    "models": (lambda runs: ["--runs", runs, "--types", "mlp", "bigram"], check_models),
    "leaderboard": (lambda runs: ["--splits", "lectures", "makemore", "--lock", runs / "cpu.lock"], check_leaderboard),
    "step": (lambda runs: [], check_step),
    "sampling": (lambda runs: [], check_sampling),
    "wavenet": (lambda runs: [], check_wavenet),
    "data": (lambda runs: [], check_data),
    "ddp": (lambda runs: [], check_ddp),
    "serve": (lambda runs: [runs / "transformer"], check_serve),
    "versus": (lambda runs: ["--runs", runs], check_versus),
    "threads": (lambda runs: ["--steps", "5"], check_threads),
}


def test_every_subcommand_is_checked(harness):
    assert set(CASES) == set(harness[0].SUBCOMMANDS)


def _trained_here(args: list[str], check: bool = True) -> None:
    """The threads benchmark's child `makemore train`, run in this process: the rows' layout is what
    is checked here, and four more starts of Python and torch (two beside a busy core) cost seconds."""
    from makemore.cli import main as makemore_main

    threads = torch.get_num_threads()  # its --threads, put back as a child's would leave this process's
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert makemore_main(args) == 0 or not check
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(CASES))
def test_quick_run_writes_the_layout_with_sensible_rows(name, harness, runs, tmp_path, monkeypatch):
    main, common = harness
    options, check = CASES[name]
    if name == "threads":
        from benchmarks import threads

        monkeypatch.setattr(threads, "makemore", _trained_here)
    out = tmp_path / f"{name}.json"
    threads = torch.get_num_threads()
    try:
        returned = main.main([name, "--quick", "--threads", "1", "--out", str(out), *map(str, options(runs))])
    finally:
        torch.set_num_threads(threads)  # the rest of the session keeps its own
    res = json.loads(out.read_text())
    assert res == json.loads(json.dumps(returned))
    assert common.problems(res) == []
    assert list(res) == ["date", "command", "machine", "rows"]
    assert res["machine"]["threads"] == 1 and res["machine"]["cpu"]
    assert f"-m benchmarks {name} --quick" in res["command"]
    check(res["rows"])


def test_the_leaderboard_reuses_finished_runs(harness, tmp_path):
    argv = ["leaderboard", "--quick", "--seeds", "42", "--runs", str(tmp_path), "--out", str(tmp_path / "lb.json")]
    threads = torch.get_num_threads()
    try:
        first = harness[0].main(argv)
        trained = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("last.safetensors")}
        again = harness[0].main(argv)
    finally:
        torch.set_num_threads(threads)
    # seed 42 for the row, seed 1 for the quick ensemble's other member; neither trained again
    assert len(trained) == 2 and {p: p.stat().st_mtime_ns for p in trained} == trained
    assert again["rows"] == first["rows"]
    page = (tmp_path / "leaderboard-page.md").read_text()
    assert "| `mlp` | defaults |" in page and "| two mlps | mlp (defaults) seed 42; mlp (defaults) seed 1 |" in page


def test_the_harness_runs_as_typed_from_the_repository_root(tmp_path):
    out = tmp_path / "step.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "step", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "| step |" in done.stdout
    assert json.loads(out.read_text())["machine"]["threads"] == 1  # the default thread policy


def test_the_stored_results_have_the_layout(harness):
    files = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    assert files
    for path in files:
        assert harness[1].problems(json.loads(path.read_text())) == [], path.name
