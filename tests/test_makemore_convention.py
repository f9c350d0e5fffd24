"""makemore.py's conventions beside ours: its split (train --split makemore) and its test figure
(eval --metric makemore), checked against makemore.py's own recipe written out here."""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from makemore import export, runs
from makemore.cli import main
from makemore.data import Dataset, bundled_names
from makemore.errors import MakemoreError
from makemore.evaluate import makemore_nll, model_item_nlls
from makemore.models import REGISTRY
from makemore.store import DATA, RunStore

from conftest import run_cli

NAMES = bundled_names().read_text().split()[:2500]


def makemore_py_split(words: list[str]) -> tuple[list[str], list[str]]:
    """(train, test) as makemore.py's create_datasets makes them right after torch.manual_seed(3407)."""
    with torch.random.fork_rng():
        torch.manual_seed(3407)
        test_set_size = min(1000, int(len(words) * 0.1))
        rp = torch.randperm(len(words)).tolist()
    return [words[i] for i in rp[:-test_set_size]], [words[i] for i in rp[-test_set_size:]]


def test_the_split_is_makemore_pys_permutation_and_leaves_the_global_stream_alone():
    items = NAMES[:57]
    state = torch.get_rng_state()
    data = Dataset.from_items(items, rule="makemore")
    assert torch.equal(torch.get_rng_state(), state)
    train, test = makemore_py_split(items)
    k = len(test)
    assert k == 5 and data.sizes == (57 - 2 * k, k, k)
    assert data.items("test") == test  # makemore.py's test split, in its order
    assert data.items("train") + data.items("dev") == train  # our dev: the last k of its training items


def test_names_txt_splits_as_makemore_py_reads_it():
    """makemore.py's reading (splitlines, strip, no empty lines; the vocabulary of every character)
    and split of the bundled names.txt, against ours, without training anything."""
    words = [w.strip() for w in bundled_names().read_text().splitlines()]
    words = [w for w in words if w]
    train, test = makemore_py_split(words)
    data = Dataset.read(bundled_names(), rule="makemore")
    assert len(test) == 1000 and len(train) == len(words) - 1000
    assert data.sizes == (len(train) - 1000, 1000, 1000)
    assert data.items("test") == test and data.items("dev") == train[-1000:]
    assert "".join(data.vocab.chars) == "".join(sorted(set("".join(words))))
    assert Dataset.read(bundled_names()).sizes == (25626, 3203, 3204)  # ours, as before


def test_a_bad_split_is_one_line(capsys, tmp_path):
    with pytest.raises(MakemoreError, match="--split must be one of lectures, makemore"):
        Dataset.from_items(NAMES[:20], rule="random")
    code, _, err = run_cli(capsys, "train", "--split", "random", "-o", tmp_path / "run")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--split" in err
    code, _, err = run_cli(capsys, "train", "--text", "--split", "makemore", "-o", tmp_path / "text")
    assert code == 1 and "text mode" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists() and not (tmp_path / "text").exists()


@pytest.fixture(scope="module")
def split_runs(tmp_path_factory, small_names):
    """Two counted bigrams of the same 500 names: one split as makemore.py splits, one as ours."""
    root = tmp_path_factory.mktemp("convention")
    for rule in ("makemore", "lectures"):
        assert main(["train", "--type", "bigram", "-i", str(small_names), "-o", str(root / rule), "--split", rule]) == 0
    return root


def test_the_rule_is_kept_by_the_run_its_cache_and_its_export(split_runs, small_names, tmp_path, capsys):
    run_dir = split_runs / "makemore"
    words = small_names.read_text().split()
    _, test = makemore_py_split(words)
    loaded = runs.open_model(run_dir)
    assert loaded.best.run.split == "makemore" and loaded.dataset().items("test") == test
    (run_dir / DATA).unlink()  # encoded again from input.txt by the run's own rule
    store = RunStore.open(run_dir)
    store.load_best()
    assert store.dataset().items("test") == test and Dataset.load(run_dir / DATA)[0].rule == "makemore"
    assert runs.evaluate(run_dir)["split"] == "makemore"

    folder = tmp_path / "export"
    assert run_cli(capsys, "export", "-o", run_dir, "--to", folder, "--with-data")[0] == 0
    described = json.loads((folder / export.CONFIG).read_text())
    assert described["data"]["split_rule"] == "makemore" and "torch.randperm" in described["data"]["split"]
    assert "--split makemore" in described["train_command"]
    best, _, data = export.read_folder(folder)
    assert best.run.split == "makemore" and data.items("test") == test
    described["data"]["split_rule"] = "lectures"
    (folder / export.CONFIG).write_text(json.dumps(described))
    with pytest.raises(MakemoreError, match="split_rule"):
        export.read_folder(folder)


def test_a_resume_keeps_the_rule_and_an_ensemble_needs_one(split_runs):
    with pytest.raises(MakemoreError, match="--split lectures conflicts"):
        runs._check_same_run(runs.open_model(split_runs / "makemore").best, None, {"--split": "lectures"})
    with pytest.raises(MakemoreError, match="--split"):
        runs.evaluate_ensemble([split_runs / "makemore", split_runs / "lectures"])


def test_a_run_without_the_field_reads_as_the_lectures_split(split_runs, tmp_path):
    """Runs of an earlier makemore: no split in the checkpoint or in the data cache."""
    old = tmp_path / "old"
    old.mkdir()
    source = split_runs / "lectures"
    for name in ("input.txt", "metrics.jsonl"):
        (old / name).write_bytes((source / name).read_bytes())
    with safe_open(str(source / "model.safetensors"), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    fields = json.loads(meta["makemore"])
    assert fields.pop("split") == "lectures"
    save_file(tensors, str(old / "model.safetensors"), metadata={"makemore": json.dumps(fields)})
    loaded = runs.open_model(old)
    assert loaded.best.run.split == "lectures"
    assert loaded.dataset().same_items(runs.open_model(source).dataset())
    assert "split" not in Dataset.load(old / DATA)[1]  # the lectures' cache is written as before


def mean_of_batch_means(model, items: list[str], vocab, seed: int) -> float:
    """makemore.py's evaluate, written out in float64: batches of 100 items in a random order, each
    padded as its CharDataset pads (x: <b> then the item, y: the item, <b>, then -1), the mean
    cross-entropy of each batch, and the mean of those; it stops after the batch of index 10."""
    width = max(map(len, items)) + 1
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed))
    means = []
    for i, batch in enumerate(order.split(100)):
        x = torch.zeros(len(batch), width, dtype=torch.long)
        y = torch.full((len(batch), width), -1)
        for row, j in enumerate(batch.tolist()):
            ix = torch.tensor(vocab.encode(items[j]))
            x[row, 1 : 1 + len(ix)], y[row, : len(ix)], y[row, len(ix)] = ix, ix, 0
        with torch.no_grad():
            logits = model(x).double()
        means.append(F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), ignore_index=-1))
        if i >= 10:
            break
    return torch.stack(means).mean().item()


def test_makemores_metric_is_the_mean_of_its_batch_means():
    data = Dataset.from_items(NAMES, rule="makemore")  # 2,000 / 250 / 250 items
    cls = REGISTRY["transformer"]
    torch.manual_seed(0)
    model = cls(cls.config_for(data, n_layer=1, n_embd=16, n_head=2)).eval()
    for split, seed in (("test", 7), ("train", 8)):  # 3 batches, the last of 50; 11 of the 20 batches
        ours = makemore_nll(model_item_nlls(model), data.split(split), seed)
        assert ours == pytest.approx(mean_of_batch_means(model, data.items(split), data.vocab, seed), rel=1e-5)
    whole = makemore_nll(model_item_nlls(model), data.split("test"), 7)
    assert whole != makemore_nll(model_item_nlls(model), data.split("test"), 8)  # the batches differ, not the items


def test_eval_prints_both_metrics(split_runs, capsys):
    run_dir = split_runs / "makemore"
    code, out, _ = run_cli(capsys, "eval", "-o", run_dir, "--metric", "makemore", "--json")
    report = json.loads(out)
    assert code == 0 and report["split"] == "makemore"
    expected = runs.evaluate(run_dir, makemore_seed=3407)
    assert report["makemore"] == expected["makemore"] and report["test"] == expected["test"]
    code, out, _ = run_cli(capsys, "eval", "-o", run_dir, "--metric", "makemore", "--seed", "1")
    assert code == 0 and "split: makemore.py's" in out and f"{report['test']:.4f}" in out
    code, _, err = run_cli(capsys, "eval", "-o", run_dir, "--seed", "1")
    assert code == 1 and "--metric makemore" in err


def test_an_ensemble_gives_makemores_metric_of_its_mixture(split_runs):
    """The mixture of a model with itself is that model: the same figure for each split."""
    run_dir = split_runs / "makemore"
    alone = runs.evaluate(run_dir, makemore_seed=5)["makemore"]
    mixed = runs.evaluate_ensemble([run_dir, run_dir], makemore_seed=5)["makemore"]
    assert mixed == pytest.approx(alone, rel=1e-6)
