"""Every file makemore writes goes through one writer (files.py): atomic, never through a planted
link, never over a device, FIFO or folder, with the permissions a plain open() would give.

The runs here are tiny (50 short names, 20 steps, one thread), trained once for the module.
"""

import json
import os
import stat

import pytest

from makemore import files, gradcode
from makemore.errors import MakemoreError

from conftest import run_cli, snapshot

PNG = b"\x89PNG\r\n\x1a\n"
NAMES = "\n".join(["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail"] * 5)
TINY = ["--max-steps", "20", "--eval-interval", "10", "--threads", "1", "-q"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs for every kind of plot: mlp (loss, embedding, tanh, dlogits, diagnose), bigram,
    transformer (attention), an lr sweep, and a folder of two bigram runs differing in --alpha."""
    root = tmp_path_factory.mktemp("tiny")
    data = root / "names.txt"
    data.write_text(NAMES)
    trainings = {
        "mlp": ["--type", "mlp"],
        "transformer": ["--type", "transformer", "--n-layer", "1", "--n-embd", "16"],
        "sweep-lr": ["--type", "mlp", "--schedule", "sweep", "--learning-rate", "1", "--log-interval", "1"],
        "bigrams/a1": ["--type", "bigram", "--alpha", "1"],
        "bigrams/a100": ["--type", "bigram", "--alpha", "100"],
    }
    from makemore.cli import main

    for name, argv in trainings.items():
        assert main(["train", "-i", str(data), "-o", str(root / name), *argv, *TINY]) == 0, name
    return root


def plant(path, outside):
    """A symbolic link at path to a file of the user's outside the folder; returns the target."""
    target = outside / f"victim-{path.name}"
    target.write_bytes(b"the user's own " + path.name.encode())
    path.symlink_to(target)
    return target


def assert_untouched(targets):
    for target in targets:
        assert target.read_bytes() == b"the user's own " + target.name.removeprefix("victim-").encode(), target


def assert_replaced_as_links(paths):
    for path in paths:
        assert stat.S_ISREG(os.lstat(path).st_mode), f"{path} should now be a regular file, not the link"


# --- the writer ------------------------------------------------------------------------------------
def test_a_link_is_replaced_as_a_link_and_its_target_left_alone(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    path = tmp_path / "f.png"
    target = plant(path, outside)
    files.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and not path.is_symlink()
    assert_untouched([target])
    dangling = tmp_path / "g.png"
    dangling.symlink_to(outside / "created-by-nobody")
    files.atomic_write_bytes(dangling, b"new")
    assert not (outside / "created-by-nobody").exists()


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_the_writer_never_renames_over_something_that_is_not_a_regular_file(tmp_path, kind):
    path = tmp_path / "out.png"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    with pytest.raises(MakemoreError, match=f"is a {kind.upper() if kind == 'fifo' else kind}; makemore replaces"):
        files.atomic_write_bytes(path, b"png")
    assert (stat.S_ISFIFO if kind == "fifo" else stat.S_ISDIR)(os.lstat(path).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temporary file left


def test_a_fifo_that_appears_while_the_file_is_written_is_not_replaced(tmp_path):
    path = tmp_path / "out.png"
    with pytest.raises(MakemoreError, match="is a FIFO"):
        with files._replacing(path) as f:
            f.write(b"png")
            os.mkfifo(path)  # the destination changes between the first look and the rename
    assert stat.S_ISFIFO(os.lstat(path).st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_get_0666_less_the_umask_and_replaced_files_keep_their_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        files.atomic_write_bytes(tmp_path / "new.bin", b"x")
        files.atomic_copy(tmp_path / "new.bin", tmp_path / "copy.bin")
        with files.open_append(tmp_path / "log.jsonl") as f:
            f.write("{}\n")
        (tmp_path / "kept.bin").write_bytes(b"old")
        os.chmod(tmp_path / "kept.bin", 0o640)
        files.atomic_write_bytes(tmp_path / "kept.bin", b"new")
    finally:
        os.umask(old)
    for name in ("new.bin", "copy.bin", "log.jsonl"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~umask, name
    assert stat.S_IMODE(os.stat(tmp_path / "kept.bin").st_mode) == 0o640


def test_a_folder_makemore_keeps_in_a_run_directory_is_never_a_link(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(MakemoreError, match="symbolic link"):
        files.make_folder(tmp_path / "link")
    (tmp_path / "file").write_text("x")
    with pytest.raises(MakemoreError, match="not a directory"):
        files.make_folder(tmp_path / "file")
    assert files.make_folder(tmp_path / "new").is_dir() and files.make_folder(tmp_path / "new").is_dir()


# --- plot --out ------------------------------------------------------------------------------------
def test_plot_refuses_a_fifo_even_with_force_in_one_line(capsys, runs, tmp_path):
    """As root, `plot --out /dev/null --force` replaced the device node with a PNG; a FIFO stands in for it."""
    fifo = tmp_path / "null"
    os.mkfifo(fifo)
    code, out, err = run_cli(capsys, "plot", "embedding", "-o", runs / "mlp", "--out", fifo, "--force")
    assert code == 1 and f"{fifo} is a FIFO; makemore replaces only regular files" in err, err
    assert len(err.splitlines()) == 1 and out == ""
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["null"]
    code, _, err = run_cli(capsys, "plot", "embedding", "-o", runs / "mlp", "--out", tmp_path, "--force")
    assert code == 1 and "is a directory" in err and len(err.splitlines()) == 1


def test_a_plot_is_written_0666_less_the_umask(capsys, runs, tmp_path):
    old = os.umask(0o022)
    try:
        assert run_cli(capsys, "plot", "loss", "-o", runs / "mlp", "--out", tmp_path / "l.png")[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "l.png").st_mode) == 0o644


PLOT_KINDS = {
    "loss": "mlp",
    "bigram": "bigrams/a1",
    "sweep": "bigrams",
    "lr": "sweep-lr",
    "embedding": "mlp",
    "tanh": "mlp",
    "dlogits": "mlp",
    "attention": "transformer",
}


def test_a_link_at_every_path_a_command_writes_leaves_its_target_untouched(capsys, runs, tmp_path):
    """plot KIND --out, compare --out (compare.md, compare.png), gradcode -o and diagnose's files:
    each with a link planted at the path it writes, to a file of the user's outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    targets, written = [], []
    # plot: a link at --out is replaced only with --force (it is there), and then as the link itself
    for kind, run in PLOT_KINDS.items():
        out = tmp_path / f"{kind}.png"
        targets.append(plant(out, outside))
        code, _, err = run_cli(capsys, "plot", kind, "-o", runs / run, "--out", out)
        assert code == 1 and "already exists; --force replaces it" in err, (kind, err)
        code, _, err = run_cli(capsys, "plot", kind, "-o", runs / run, "--out", out, "--force")
        assert code == 0, (kind, err)
        assert out.read_bytes()[:8] == PNG
        written.append(out)
    # compare --out: both files
    cmp_dir = tmp_path / "cmp"
    cmp_dir.mkdir()
    planted = [plant(cmp_dir / "compare.md", outside), plant(cmp_dir / "compare.png", outside)]
    targets += planted
    code, _, err = run_cli(capsys, "compare", runs / "mlp", runs / "bigrams", "--out", cmp_dir, "--force")
    assert code == 0, err
    written += [cmp_dir / "compare.md", cmp_dir / "compare.png"]
    # diagnose: a link at each file it writes into DIR/diagnostics
    diagnostics = runs / "mlp" / "diagnostics"
    diagnostics.mkdir(exist_ok=True)
    names = ["init_loss.png", "activations.png", "update_ratio.png", "variants_saturation.png", "diagnostics.json"]
    for name in names:
        (diagnostics / name).unlink(missing_ok=True)
        targets.append(plant(diagnostics / name, outside))
    code, _, err = run_cli(capsys, "diagnose", "-o", runs / "mlp", "--steps", "5")
    assert code == 0, err
    written += [diagnostics / name for name in names]
    report = json.loads((diagnostics / "diagnostics.json").read_text())
    assert set(names) - {"diagnostics.json"} <= set(report["plots"])
    assert_untouched(targets)
    assert_replaced_as_links(written)


def fake_compile(monkeypatch):
    """gradcode without the (20 s) inductor compile: the files it writes are what is tested here."""
    monkeypatch.setattr(gradcode, "find_compiler", lambda: "g++")
    monkeypatch.setattr(
        gradcode, "aot_graphs", lambda *a: {s: f"# {s} graph\n" for s in ("joint", "forward", "backward")}
    )
    monkeypatch.setattr(gradcode, "inductor_code", lambda *a: ["# forward module\n", "# backward module\n"])


def test_gradcode_replaces_links_not_their_targets_and_files_only_with_force(capsys, tmp_path, monkeypatch):
    fake_compile(monkeypatch)
    out, outside = tmp_path / "g", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    targets = [plant(out / name, outside) for name in (gradcode.FILES["eager"], gradcode.FILES["joint"], "README.md")]
    code, _, err = run_cli(capsys, "gradcode", "--type", "mlp", "-o", out)
    assert code == 1 and "already holds" in err and "--force replaces them" in err and len(err.splitlines()) == 1
    assert_untouched(targets)
    code, _, err = run_cli(capsys, "gradcode", "--type", "mlp", "-o", out, "--force")
    assert code == 0, err
    assert_untouched(targets)
    assert_replaced_as_links([out / gradcode.FILES["eager"], out / gradcode.FILES["joint"], out / "README.md"])
    assert "TanhBackward0" in (out / gradcode.FILES["eager"]).read_text()
    # the user's own files of those names: kept unless --force
    before = snapshot(out)
    code, _, err = run_cli(capsys, "gradcode", "--type", "mlp", "-o", out)
    assert code == 1 and "already holds" in err and snapshot(out) == before


def test_gradcode_refuses_a_fifo_and_writes_nothing_before_the_compile_has_worked(capsys, tmp_path, monkeypatch):
    fake_compile(monkeypatch)
    out = tmp_path / "g"
    out.mkdir()
    os.mkfifo(out / "README.md")
    code, _, err = run_cli(capsys, "gradcode", "--type", "mlp", "-o", out, "--force")
    assert code == 1 and "is a FIFO" in err and sorted(p.name for p in out.iterdir()) == ["README.md"]

    def broken(*a):
        raise RuntimeError("inductor fell over")

    monkeypatch.setattr(gradcode, "inductor_code", broken)
    code, _, err = run_cli(capsys, "gradcode", "--type", "mlp", "-o", tmp_path / "new")
    assert code == 1 and "torch.compile failed" in err and not (tmp_path / "new").exists()


# --- diagnose ------------------------------------------------------------------------------------
def test_diagnose_refuses_a_diagnostics_folder_that_is_a_link(capsys, runs, tmp_path):
    run = tmp_path / "run"
    import shutil

    shutil.copytree(runs / "mlp", run, ignore=shutil.ignore_patterns("diagnostics", ".lock"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "diagnostics").symlink_to(elsewhere)
    code, _, err = run_cli(capsys, "diagnose", "-o", run, "--steps", "5")
    assert code == 1 and "diagnostics is a symbolic link" in err and len(err.splitlines()) == 1, err
    assert list(elsewhere.iterdir()) == []


def savefig_fails_on_call(monkeypatch, n):
    """matplotlib's savefig raising on its n-th call (and on every later one)."""
    from matplotlib.figure import Figure

    calls, real = [], Figure.savefig

    def savefig(fig, *args, **kwargs):
        calls.append(fig)
        if len(calls) >= n:
            raise MakemoreError(f"figure {len(calls)} failed")
        return real(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)


def test_diagnose_writes_nothing_when_a_figure_fails(capsys, runs, tmp_path, monkeypatch):
    savefig_fails_on_call(monkeypatch, 3)
    code, _, err = run_cli(capsys, "diagnose", "-o", runs / "mlp", "--out", tmp_path / "d", "--steps", "5")
    assert code == 1 and "figure 3 failed" in err
    assert not (tmp_path / "d").exists() or list((tmp_path / "d").iterdir()) == []


# --- run directory -------------------------------------------------------------------------------
def test_links_planted_in_a_run_directory_are_not_written_through(capsys, runs, tmp_path):
    import shutil

    run, outside = tmp_path / "run", tmp_path / "outside"
    shutil.copytree(runs / "mlp", run, ignore=shutil.ignore_patterns("diagnostics", ".lock"))
    outside.mkdir()
    (run / "loss.png").unlink()
    targets = [plant(run / "loss.png", outside)]
    code, _, err = run_cli(capsys, "train", "-o", run, "--resume", "--max-steps", "30", "--threads", "1", "-q")
    print(err)
    assert_untouched(targets)  # resumed (the link replaced) or refused: the outside file is the user's still
    if code == 0:
        assert_replaced_as_links([run / "loss.png"])


# --- $...$ in names ------------------------------------------------------------------------------
def test_a_run_named_like_math_text_is_drawn_as_written_and_compare_writes_all_or_nothing(capsys, runs, tmp_path):
    """matplotlib parses `$...$` as math text and fails on `$\\bad$`, once the figure is saved: after
    compare.md was written. Names are drawn as they are; nothing is written until all is drawn."""
    data = tmp_path / "names.txt"
    data.write_text(NAMES + "\n" + "\n".join(["a$\\bad$b", "$x$"] * 5))  # `$` and `\` in the vocabulary too
    odd = tmp_path / "r$\\bad$"
    assert run_cli(capsys, "train", "--type", "bigram", "-i", data, "-o", odd, *TINY)[0] == 0
    out = tmp_path / "cmp"
    out.mkdir()
    code, stdout, err = run_cli(capsys, "compare", odd, runs / "mlp", "--out", out)
    assert code == 0, err
    assert "r$\\bad$" in (out / "compare.md").read_text() and (out / "compare.png").read_bytes()[:8] == PNG
    code, _, err = run_cli(capsys, "plot", "loss", "-o", runs / "mlp", "--with", odd, "--out", tmp_path / "l.png")
    assert code == 0 and (tmp_path / "l.png").read_bytes()[:8] == PNG, err
    code, _, err = run_cli(capsys, "plot", "bigram", "-o", odd, "--with", odd, "--out", tmp_path / "b.png")
    assert code == 0, err


def test_compare_writes_neither_file_when_the_figure_fails(capsys, runs, tmp_path, monkeypatch):
    savefig_fails_on_call(monkeypatch, 1)
    code, stdout, err = run_cli(capsys, "compare", runs / "mlp", "--out", tmp_path)
    assert code == 1 and "figure 1 failed" in err and list(tmp_path.iterdir()) == []
