"""`makemore compare`: runs side by side in a table and a plot, with the numbers `eval` gives."""

import pytest

from makemore.compare import compare, markdown
from makemore.runs import evaluate

from conftest import run_cli, snapshot


def test_each_row_is_the_runs_own_evaluation_best_dev_first(served_runs):
    rows = compare([str(served_runs)])
    assert [r["dev"] for r in rows] == sorted(r["dev"] for r in rows)
    assert {r["run"] for r in rows} == {"mlp", "bigram", "transformer"}
    for r in rows:
        report = evaluate(served_runs / r["run"])
        assert {k: r[k] for k in report} == report
    table = markdown(rows).splitlines()
    assert len(table) == 2 + 3 and table[2].startswith(f"| {rows[0]['run']} |")
    assert "| `mlp` | 11,897 |" in markdown(rows)


def test_two_runs_with_one_name_are_told_apart_by_their_paths(served_runs, tmp_path):
    import shutil

    for group in ("a", "b"):
        shutil.copytree(served_runs / "bigram", tmp_path / group / "bigram")
    assert sorted(r["run"] for r in compare([str(tmp_path)])) == [str(tmp_path / g / "bigram") for g in ("a", "b")]


def test_the_command_prints_the_table_and_writes_it_with_the_plot(capsys, served_runs, tmp_path):
    code, out, err = run_cli(capsys, "compare", served_runs / "mlp", served_runs / "bigram", "--out", tmp_path)
    assert code == 0 and out.startswith("| run | model |") and len(out.splitlines()) == 4
    assert (tmp_path / "compare.md").read_text() == out
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "compare", served_runs / "mlp", "--out", tmp_path)
    assert code == 1 and "already exist; --force replaces them" in err and snapshot(tmp_path) == before
    code, _, _ = run_cli(capsys, "compare", served_runs / "mlp", "--out", tmp_path, "--force")
    assert code == 0 and len((tmp_path / "compare.md").read_text().splitlines()) == 3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nowhere"], "nowhere is not a run directory or a folder of runs"),
        (["."], "no runs"),
        (["RUNS", "--out", "missing-dir"], "--out missing-dir is not a directory"),
    ],
)
def test_bad_arguments_are_one_line(capsys, served_runs, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "compare", *[str(served_runs) if a == "RUNS" else a for a in argv])
    assert code == 1 and message in err and len(err.splitlines()) == 1


def test_a_sweep_plots_nll_against_the_one_option_each_types_runs_differ_in(capsys, tmp_path):
    from makemore.compare import sweep

    for alpha in ("1", "1000", "0.1"):
        assert (
            run_cli(capsys, "train", "--type", "bigram", "--alpha", alpha, "-o", tmp_path / f"a{alpha}", "-q")[0] == 0
        )
    (panel,) = sweep([str(tmp_path)])
    assert (panel["type"], panel["option"], panel["values"]) == ("bigram", "alpha", [0.1, 1.0, 1000.0])
    for i, alpha in enumerate(panel["values"]):  # each point is that run's own evaluation
        report = evaluate(tmp_path / f"a{alpha:g}")
        assert (panel["train"][i], panel["dev"][i]) == (report["train"], report["dev"])
    assert panel["dev"][0] < panel["dev"][2] < panel["uniform"]  # heavy smoothing: toward ln V, the uniform guess
    out = tmp_path / "sweep.png"
    assert run_cli(capsys, "plot", "sweep", "-o", tmp_path, "--out", out)[0] == 0 and out.stat().st_size > 0
    # a folder whose runs differ in no option (or in two) is no sweep: one line, nothing written
    code, _, err = run_cli(capsys, "plot", "sweep", "-o", tmp_path / "a1", "--out", tmp_path / "x.png")
    assert code == 1 and "do not differ in any model option" in err and not (tmp_path / "x.png").exists()
