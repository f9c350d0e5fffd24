"""Text mode: one stream of characters, 90% train and 10% dev, blocks for sequence models, windows for
window models, every character after a split's first predicted once, continuing a text."""

import math

import pytest
import torch
import torch.nn.functional as F

from makemore import runs
from makemore.config import TrainConfig
from makemore.data import BOUNDARY, IGNORE, Blocks, Dataset, TextWindows, bundled_text
from makemore.errors import MakemoreError
from makemore.evaluate import split_nll, split_totals
from makemore.models import REGISTRY
from makemore.sample import Sampling
from makemore.store import RunStore

from conftest import run_cli

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 3
TINY = dict(n_layer=1, n_head=2, n_embd=16)  # a transformer small enough to train in a blink


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "text.txt"
    path.write_text(TEXT)
    return path


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, text_file):
    """A transformer trained 30 steps on TEXT in text mode, blocks of 8 characters."""
    run_dir = tmp_path_factory.mktemp("runs") / "text"
    cfg = TrainConfig(max_steps=30, eval_interval=15, batch_size=16, threads=1)
    runs.start("transformer", TINY, cfg, str(text_file), str(run_dir), None, progress=False, text=True, block=8)
    return run_dir


def test_the_split_is_the_first_90_percent_of_the_characters_and_the_rest():
    data = Dataset.from_text(TEXT)
    n_train = int(0.9 * len(TEXT))
    assert data.text and data.sizes == (1, 1, 0)
    assert data.items("train") == [TEXT[:n_train]] and data.items("dev") == [TEXT[n_train:]]
    assert len(data.split("test").tokens) == 0 and "\n" in data.vocab.chars  # line breaks are characters


def test_blocks_tile_the_split_and_training_draws_every_start():
    split = Dataset.from_text(TEXT).split("dev")
    chars = split.tokens.long()
    blocks = Blocks(split, 4)
    X, Y = blocks[:]
    assert torch.equal(Y[Y != IGNORE], chars[1:])  # each character after the first, once, in order
    assert torch.equal(X[:, 1:][Y[:, 1:] != IGNORE], Y[:, :-1][Y[:, 1:] != IGNORE])  # targets: the next character
    assert blocks.targets(torch.arange(len(blocks))) == len(chars) - 1
    draws = blocks.draws()
    assert len(draws) == len(chars) - 4  # every window the split holds whole: the lecture's randint(len - block)
    X, Y = draws[torch.tensor([0, 3])]
    assert torch.equal(X[1], chars[3:7]) and torch.equal(Y[1], chars[4:8]) and BOUNDARY not in X


def test_a_window_models_examples_are_each_character_after_the_first_with_its_context():
    split = Dataset.from_text(TEXT).split("train")
    chars = split.tokens.long()
    X, Y = TextWindows(split, 3)[:]
    assert torch.equal(Y, chars[1:])
    assert X[0].tolist() == [BOUNDARY, BOUNDARY, chars[0]] and torch.equal(X[10], chars[8:11])


@pytest.mark.parametrize("model_type", ["transformer", "bigram-nn", "gru"])
def test_the_metric_counts_every_predicted_character_once(model_type):
    data = Dataset.from_text(TEXT)
    cls = REGISTRY[model_type]
    torch.manual_seed(0)
    model = cls(cls.config_for(data, block=5) if model_type != "bigram-nn" else cls.config_for(data)).eval()
    split = data.split("train")
    total, count = split_totals(model, model.examples(split))
    assert count == len(split.tokens) - 1
    if model_type == "transformer":  # the blocks by hand: each sees the characters since its block began
        chars = split.tokens.long()
        by_hand = 0.0
        for start in range(0, len(chars) - 1, 5):
            x, y = chars[start : start + 5], chars[start + 1 : start + 6]
            by_hand += F.cross_entropy(model(x[None])[0, : len(y)], y, reduction="sum").item()
        assert math.isclose(total, by_hand, rel_tol=1e-5)


def test_train_evaluate_and_continue_a_text(text_run):
    report = runs.evaluate(text_run)
    assert report["text"] and math.isnan(report["test"]) and report["dev"] < math.log(report["options"]["vocab_size"])
    how = Sampling(prefix="Speak")
    text = runs.sample_text(text_run, 40, seed=3, how=how)
    assert len(text) == 40 and set(text) <= set(TEXT)
    assert runs.sample_text(text_run, 40, seed=3, how=how) == text  # the same seed, the same text
    assert runs.sample_text(text_run, 10, seed=3, how=how) == text[:10]  # a shorter one is its beginning


def test_the_checkpoint_says_it_is_a_text_run_and_its_data_comes_back(text_run):
    store = RunStore.open(text_run)
    best = store.load_best()
    assert best.run.text and best.model.config.max_len + 1 == 8  # the block: the model's positions
    cached = store.dataset()
    (text_run / "data.safetensors").unlink()  # read again from input.txt, as text
    again = store.dataset()
    assert again.text and again.same_items(cached) and again.items("train") == [TEXT[: int(0.9 * len(TEXT))]]
    assert split_nll(best.model, best.model.examples(again.split("dev"))) == runs.evaluate(text_run)["dev"]


def test_the_cli_trains_a_bigram_on_text_and_continues_it(capsys, tmp_path, text_file):
    code, out, err = run_cli(capsys, "train", "--text", "-i", text_file, "--type", "bigram", "-o", tmp_path / "b", "-q")
    assert code == 0 and "text mode: no test split" in out and "characters train/dev" in err
    code, out, _ = run_cli(capsys, "eval", "-o", tmp_path / "b")
    assert code == 0 and "text mode" in out and "test  none" in out
    code, out, _ = run_cli(capsys, "sample", "-o", tmp_path / "b", "--length", "30", "--seed", "1", "--prefix", "All")
    assert code == 0 and out.startswith("All") and len(out) == len("All") + 30 + 1  # and print's line break


def test_bad_input_is_one_line(capsys, tmp_path, text_file, text_run, small_names):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(MakemoreError, match="text mode needs at least 11"):
        Dataset.read_text(empty)
    data = Dataset.from_text(TEXT)
    with pytest.raises(MakemoreError, match="window model"):
        REGISTRY["mlp"].config_for(data, block=8)
    with pytest.raises(MakemoreError, match="leave --max-len out"):
        REGISTRY["transformer"].config_for(data, max_len=8)
    assert run_cli(capsys, "train", "--type", "bigram", "-i", small_names, "-o", tmp_path / "names", "-q")[0] == 0
    with pytest.raises(MakemoreError, match="trained on items"):
        runs.sample_text(tmp_path / "names", 10, 0, Sampling())
    with pytest.raises(MakemoreError, match="not in the vocabulary"):
        runs.sample_text(text_run, 10, 0, Sampling(prefix="Zebra"))
    code, _, err = run_cli(capsys, "sample", "-o", text_run, "-n", "5")
    assert code == 1 and "--length N" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "train", "--text", "-i", text_file, "--max-item-len", "9", "-o", tmp_path / "x")
    assert code == 1 and err.count("\n") == 1 and not (tmp_path / "x").exists()


def test_the_bundled_text_is_tiny_shakespeare():
    assert bundled_text().stat().st_size == 1_115_394 and bundled_text().read_text().startswith("First Citizen:")
