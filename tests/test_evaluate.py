"""The metric in chunks: the same numbers as one pass, in memory that does not grow with the input."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from makemore import evaluate
from makemore.cli import main
from makemore.data import Split, Vocab
from makemore.evaluate import score_items, split_nll
from makemore.models import REGISTRY

from conftest import PRINT_PEAK_RSS_KB

ITEMS = ["abc", "a", "cabbage", "bad", "ace"]


@pytest.mark.parametrize("model_type, sizes", [("mlp", {}), ("transformer", {"max_len": 8, "n_embd": 16})])
def test_chunked_scores_and_losses_equal_one_pass(monkeypatch, model_type, sizes):
    torch.manual_seed(0)
    vocab = Vocab.from_items(ITEMS)
    cls = REGISTRY[model_type]
    model = cls(cls.Config(vocab_size=len(vocab), **sizes)).eval()
    examples = model.examples(Split.of(ITEMS, vocab))
    X, Y = examples[:]
    with torch.no_grad():
        logits = model(X)
        one_pass = F.cross_entropy(logits.reshape(-1, len(vocab)), Y.reshape(-1), ignore_index=-1, reduction="none")
    one_pass = one_pass[Y.reshape(-1) != -1]
    monkeypatch.setattr(evaluate, "LOGITS_BUDGET", 2 * len(vocab))  # a row or two per chunk
    scored = score_items(model, vocab, ITEMS)
    chunked = torch.tensor([nll for r in scored for _, nll in r["chars"]])
    print(f"{model_type}: max |chunked - one pass| = {(chunked - one_pass).abs().max():.1e}")
    torch.testing.assert_close(chunked, one_pass)
    assert split_nll(model, examples) == pytest.approx(one_pass.mean().item(), rel=1e-6)


@pytest.mark.slow
def test_scoring_long_items_on_a_large_vocabulary_stays_small(tmp_path):
    """Four 40,000-character items, 3,000 characters in the vocabulary: 1.9 GB of logits in one pass."""
    chars = [chr(0x4E00 + i) for i in range(3000)]
    gen = torch.Generator().manual_seed(0)
    pick = lambda n: "".join(chars[i] for i in torch.randint(0, 3000, (n,), generator=gen).tolist())  # noqa: E731
    source = tmp_path / "items.txt"
    source.write_text("".join(chars) + "\n" + "\n".join(pick(8) for _ in range(300)) + "\n", encoding="utf-8")
    train = ["train", "-i", source, "-o", tmp_path / "run", "--max-steps", "1", "--max-item-len", "3000", "-q"]
    assert main([str(a) for a in train]) == 0  # here; the scoring is what is measured, in a process of its own
    code = (
        "import sys\nfrom makemore.cli import main\n"
        "main(['score', '-o', sys.argv[1], '--json', *sys.argv[2:]])\n" + PRINT_PEAK_RSS_KB
    )
    items = [pick(40_000) for _ in range(4)]
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run"), *items], capture_output=True, text=True, check=True
    )
    rss_mb = int(result.stdout.split()[-1]) / 1024
    print(f"peak RSS scoring 4 x 40,000 characters, V = 3,001: {rss_mb:.0f} MB")
    assert result.stdout.count('"item"') == 4 and rss_mb < 1500


def test_window_chunks_are_bounded_by_memory_not_by_examples(monkeypatch):
    """A chunk counted 16,384 windows whatever their context: at 1,000 characters of context that
    was 16 M tokens (2.1 GB); now each chunk's gathered tokens and activations fit CHUNK_BUDGET."""
    torch.manual_seed(0)
    vocab = Vocab.from_items(ITEMS)
    model = REGISTRY["mlp"](REGISTRY["mlp"].Config(vocab_size=len(vocab), context_size=500)).eval()
    examples = model.examples(Split.of(ITEMS * 40, vocab))
    whole = split_nll(model, examples)
    monkeypatch.setattr(evaluate, "CHUNK_BUDGET", 1 << 20)
    sizes = [len(y) for _, y in evaluate._chunks(model, examples)]
    print(f"{len(examples)} windows of 501 tokens in {len(sizes)} chunks of at most {max(sizes)}")
    assert sum(sizes) == len(examples) and len(sizes) > 1
    assert max(sizes) * 501 * evaluate.INDEX_BYTES <= 1 << 20
    assert split_nll(model, examples) == pytest.approx(whole, rel=1e-6)
