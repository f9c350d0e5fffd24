"""Flags that cannot fit are refused in one line, at once, before anything is written: sizes beyond
2**31, blocks repeated more than 1,000 times, memory that evaluation would need, --nproc below 1."""

import subprocess
import sys
import time

import pytest
import torch

from makemore import evaluate, train
from makemore.cli import main
from makemore.config import TrainConfig
from makemore.models import REGISTRY

from conftest import PRINT_PEAK_RSS_KB


@pytest.fixture
def names(tmp_path):
    source = tmp_path / "names.txt"
    source.write_text("\n".join(["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia"] * 20) + "\n")
    return source


def _refused(capsys, tmp_path, names, *flags) -> str:
    """The one line `train` prints for flags it refuses; nothing is written and it takes no time."""
    start = time.perf_counter()
    code = main(["train", "-i", str(names), "-o", str(tmp_path / "run"), "--threads", "1", "-q", *flags])
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    print(f"{' '.join(flags)}: {err.strip()} ({seconds:.1f}s)")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()
    assert seconds < 10
    return err


@pytest.mark.parametrize(
    "flags",
    [
        ["--type", "mlp", "--n-embd", str(2**70)],
        ["--type", "mlp", "--n-hidden", str(2**70)],
        ["--type", "mlp", "--context-size", str(2**70)],
        ["--type", "transformer", "--n-embd", str(2**70)],
        ["--type", "rnn", "--n-embd2", str(2**70)],
    ],
)
def test_sizes_beyond_2_to_the_31_are_one_line(capsys, tmp_path, names, flags):
    assert "must be at most 2**31" in _refused(capsys, tmp_path, names, *flags)


@pytest.mark.parametrize("model_type", ["transformer", "mlp-bn-deep"])
def test_a_million_blocks_are_refused_at_once(capsys, tmp_path, names, model_type):
    err = _refused(capsys, tmp_path, names, "--type", model_type, "--n-layer", "1000000")
    assert "--n-layer must be at most 1,000" in err


def test_every_repeated_block_and_size_is_bounded():
    for cls in REGISTRY.values():
        for f in cls.Config.__dataclass_fields__.values():
            if f.type in ("int", int) and f.name != "vocab_size":
                big = 1001 if f.metadata.get("repeats") else 2**31 + 1
                problems = cls.Config(**{f.name: big}).problems()
                assert any(f.name.replace("_", "-") in p for p in problems), (cls.__name__, f.name, problems)


@pytest.mark.parametrize("nproc", ["0", "-5"])
def test_nproc_below_one_is_refused(capsys, tmp_path, names, nproc):
    assert "--nproc must be >= 1" in _refused(capsys, tmp_path, names, "--nproc", nproc, "--max-steps", "1")


def test_the_memory_check_counts_evaluation(monkeypatch, capsys, tmp_path, names):
    """A context of 1,000 passed a check that counted training only, then evaluation took 2.1 GB
    (16,384 windows of 1,001 tokens per chunk); a machine with the training bound plus 32 MB free
    is now refused before anything is written."""
    cls = REGISTRY["mlp"]
    with torch.device("meta"):
        model = cls(cls.Config(vocab_size=27, context_size=1000))
    cfg = TrainConfig(**cls.train_defaults)
    training_only = 16 * model.num_params() + cfg.batch_size * (3 * 8 + 2 * 4 * 27)  # the old estimate
    chunk = evaluate.chunk_plan(model)[1]
    assert train.memory_needed(model, cfg) >= 16 * model.num_params() + chunk > training_only + (32 << 20)
    monkeypatch.setattr(train, "available_memory", lambda device: training_only + (32 << 20))
    err = _refused(capsys, tmp_path, names, "--type", "mlp", "--context-size", "1000", "--max-steps", "1")
    assert "to train and evaluate" in err


def test_the_estimate_of_a_chunk_covers_what_it_allocates():
    """The shapes-only measure of a forward pass against the bytes a real one allocates."""
    cls = REGISTRY["mlp"]
    model = cls(cls.Config(vocab_size=27, context_size=200)).eval()
    X = torch.zeros(256, 200, dtype=torch.long)
    with torch.no_grad(), evaluate._Peak() as real:  # on the CPU: the same count, of real tensors
        model(X)
    estimate = evaluate.forward_bytes(model, 256, 200)
    print(f"mlp, 256 windows of 200: measured {real.peak:,} bytes, estimated {estimate:,}")
    assert estimate >= real.peak > 256 * 200 * 10 * 4  # at least the embeddings


@pytest.mark.slow
def test_a_context_of_1000_trains_in_bounded_memory(tmp_path):
    """Peak RSS of `train --context-size 1000` on 5,000 names: 1,831 MB before evaluation chunked by
    memory (16,384 windows x 1,001 tokens), 605 MB after (the process itself: ~390 MB)."""
    from makemore.data import bundled_names

    source = tmp_path / "names.txt"
    source.write_text("".join(bundled_names().read_text().splitlines(keepends=True)[:5000]))
    argv = ["train", "--type", "mlp", "-i", str(source), "-o", str(tmp_path / "run")]
    argv += ["--context-size", "1000", "--max-steps", "1", "--threads", "1", "-q"]
    code = f"import sys\nfrom makemore.cli import main\nassert main({argv!r}) == 0\n" + PRINT_PEAK_RSS_KB
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rss_mb = int(result.stdout.split()[-1]) / 1024
    print(f"peak RSS, train --context-size 1000 on 5,000 names: {rss_mb:.0f} MB")
    assert rss_mb < 1000
