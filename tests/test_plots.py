"""`makemore plot KIND -o RUN`: each figure drawn from a run as a PNG, nothing overwritten."""

import pytest

from conftest import run_cli, snapshot

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "kind, run",
    [("loss", "mlp"), ("bigram", "bigram"), ("embedding", "mlp"), ("attention", "transformer"), ("dlogits", "mlp")],
)
def test_each_kind_draws_a_png(capsys, served_runs, tmp_path, kind, run):
    out = tmp_path / f"{kind}.png"
    code, stdout, err = run_cli(capsys, "plot", kind, "-o", served_runs / run, "--out", out)
    assert code == 0 and stdout.strip() == str(out), err
    assert out.read_bytes()[:8] == PNG


def test_an_existing_file_is_kept_unless_forced(capsys, served_runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "plot", "embedding", "-o", served_runs / "mlp")[0] == 0  # default: embedding.png here
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "plot", "embedding", "-o", served_runs / "transformer")
    assert code == 1 and "embedding.png already exists; --force replaces it" in err and snapshot(tmp_path) == before
    assert run_cli(capsys, "plot", "embedding", "-o", served_runs / "transformer", "--force")[0] == 0
    assert snapshot(tmp_path) != before


@pytest.mark.parametrize(
    "argv, message",
    [
        (["attention", "-o", "RUNS/mlp"], "a mlp model has no attention"),
        (["bigram", "-o", "RUNS/transformer"], "no bigram table"),
        (["attention", "-o", "RUNS/transformer", "--item", "Emma"], "not in the vocabulary"),
        (["embedding", "-o", "RUNS/mlp", "--out", "nowhere/e.png"], "nowhere is not a directory"),
        (["embedding", "-o", "RUNS/missing"], "run directory not found"),
    ],
)
def test_bad_requests_are_one_line(capsys, served_runs, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "plot", *[a.replace("RUNS", str(served_runs)) for a in argv])
    assert code == 1 and message in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # nothing written
