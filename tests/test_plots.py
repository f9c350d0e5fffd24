"""`makemore plot KIND -o RUN`: each figure drawn from a run as a PNG, nothing overwritten."""

import pytest

from conftest import run_cli, snapshot

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "kind, run",
    [
        ("loss", "mlp"),
        ("bigram", "bigram"),
        ("embedding", "mlp"),
        ("attention", "transformer"),
        ("dlogits", "mlp"),
        ("tanh", "mlp"),
    ],
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
        (["lr", "-o", "RUNS/mlp"], "was not trained with --schedule sweep"),
        (["tanh", "-o", "RUNS/transformer"], "a transformer model offers no tanh layer"),
        (["embedding", "-o", "RUNS/mlp", "--with", "RUNS/transformer"], "--with draws other runs beside"),
        (["loss", "-o", "RUNS/mlp", "--smooth", "-5"], "--smooth must be >= 0"),
        (["embedding", "-o", "RUNS/mlp", "--log-steps"], "--log-steps draws the loss curve's step axis"),
    ],
)
def test_bad_requests_are_one_line(capsys, served_runs, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "plot", *[a.replace("RUNS", str(served_runs)) for a in argv])
    assert code == 1 and message in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_runs_drawn_beside_each_other(capsys, served_runs, tmp_path):
    """loss --with --smooth: several runs' curves; bigram --with: two bigram models side by side."""
    mlp = served_runs / "mlp"
    both = ["loss", "-o", mlp, "--with", served_runs / "transformer"]
    for argv in (both + ["--smooth", "50"], both + ["--log-steps"], ["bigram", "-o", mlp]):
        out = tmp_path / "x.png"
        code, _, err = run_cli(capsys, "plot", *argv, "--out", out, "--force")
        assert (code == 0) == (argv[0] == "loss"), err  # an mlp has no bigram table
    bigram = served_runs / "bigram"
    assert run_cli(capsys, "plot", "bigram", "-o", bigram, "--with", bigram, "--out", tmp_path / "b.png")[0] == 0
    assert (tmp_path / "b.png").read_bytes()[:8] == PNG


def test_the_learning_rate_sweep_is_drawn_from_its_own_run(capsys, tmp_path):
    flags = ["--schedule", "sweep", "--learning-rate", "1", "--min-lr-ratio", "0.001", "--log-interval", "1"]
    run = tmp_path / "sweep"
    assert run_cli(capsys, "train", "--type", "mlp", "--max-steps", "40", *flags, "-o", run, "-q")[0] == 0
    from makemore.store import RunStore

    rates = [r["lr"] for r in RunStore.open(run).metrics() if "lr" in r]
    assert len(rates) == 40 and rates[0] == pytest.approx(0.001) and rates[-1] == pytest.approx(1.0)
    assert run_cli(capsys, "plot", "lr", "-o", run, "--out", tmp_path / "lr.png")[0] == 0
    assert (tmp_path / "lr.png").read_bytes()[:8] == PNG


def test_smoothing_averages_the_logged_losses_of_each_stretch():
    from makemore.plots import _smoothed

    points = [(1, 4.0), (50, 2.0), (100, 3.0), (101, 1.0), (200, 1.0)]
    assert _smoothed(points, 100) == [(50.0, 3.0), (150.0, 1.0)]


def test_a_far_cluster_breaks_the_compare_axis_and_a_spread_one_does_not():
    from makemore.plots import _widest_gap

    assert _widest_gap([1.92, 1.99, 2.05, 2.10, 2.15, 2.4533, 2.4535]) == (2.15, 2.4533)
    assert _widest_gap([1.9, 2.0, 2.1, 2.2, 2.3]) is None
    assert _widest_gap([2.0, 2.5]) is None  # two runs: nothing to break


def test_weight_matrices_get_their_part_of_the_network_as_a_name():
    from makemore.diagnose import weight_labels

    deep = ["C", *(f"layers.{i}.weight" for i in (0, 3, 6, 9, 12, 15))]
    shapes = [(27, 10), (30, 100), *[(100, 100)] * 4, (100, 27)]
    result = {"weights": [{"weight": n, "shape": list(s)} for n, s in zip(deep, shapes)]}
    labels = weight_labels(result, vocab_size=27)
    assert labels["C"] == "embedding (C)" and labels["layers.15.weight"] == "output layer (layers.15.weight)"
    assert labels["layers.0.weight"] == "hidden layer 1 (layers.0.weight)"
    assert weight_labels(result, vocab_size=27, named=False)["layers.12.weight"] == "hidden layer 5"
