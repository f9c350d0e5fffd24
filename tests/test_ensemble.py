"""Ensembles: the mixture's numbers held against a direct float64 computation of the averaged
distribution, character by character, for members of different kinds."""

import math

import pytest
import torch

from makemore import ensemble
from makemore.checkpoint import Checkpoint, RunInfo
from makemore.data import BOUNDARY, Dataset
from makemore.errors import MakemoreError
from makemore.models import REGISTRY
from makemore.sample import Sampling, generate

KINDS = ("bigram-nn", "mlp", "transformer")  # a table, a window model and a sequence model


@pytest.fixture(scope="module")
def data(small_names) -> Dataset:
    return Dataset.read(small_names)


def member(kind: str, data: Dataset, seed: int, sha: str = "same") -> Checkpoint:
    """An untrained model of `kind` (initialised weights are as good a distribution as any here)."""
    torch.manual_seed(seed)
    options = {"n_layer": 1, "n_embd": 16, "n_head": 2} if kind == "transformer" else {}
    model = REGISTRY[kind](REGISTRY[kind].config_for(data, **options))
    with torch.no_grad():  # spread the outputs: at initialisation most models are near uniform
        for p in model.parameters():
            p.mul_(3.0).requires_grad_(False)
    run = RunInfo(kind, "names", 32, data.max_len, model.num_params(), 0, input_sha256=sha)
    return Checkpoint(model.eval(), data.vocab, run)


def direct_nll(members: list[Checkpoint], vocab, item: str) -> list[float]:
    """-log of the averaged probability of each character and the end token, in float64, one
    prefix at a time through each member's next_logits."""
    tokens = [BOUNDARY] + vocab.encode(item)
    targets = tokens[1:] + [BOUNDARY]
    out = []
    for t, y in enumerate(targets, start=1):
        prefix = torch.tensor([tokens[:t]])
        p = sum(torch.softmax(m.model.next_logits(prefix).double(), -1)[0, y] for m in members) / len(members)
        out.append(-math.log(p))
    return out


def test_a_mixture_scores_each_character_as_its_averaged_distribution(data):
    members = [member(kind, data, seed) for seed, kind in enumerate(KINDS)]
    items = ["emma", "xavier", data.items("dev")[0]]
    for result, item in zip(ensemble.score(members, items), items):
        expected = direct_nll(members, data.vocab, item)
        assert [v for _, v in result["chars"]] == pytest.approx(expected, rel=1e-5, abs=1e-6)
        assert result["nll"] == pytest.approx(sum(expected), rel=1e-5)


def test_a_split_nll_is_the_mean_of_the_mixed_targets_and_beats_the_members_mean(data):
    members = [member(kind, data, seed) for seed, kind in enumerate(KINDS)]
    report = ensemble.evaluate(members, data)
    dev_items = data.items("dev")
    expected = [v for item in dev_items for v in direct_nll(members, data.vocab, item)]
    assert report["dev"] == pytest.approx(sum(expected) / len(expected), rel=1e-5)
    singles = [ensemble.evaluate([m], data) for m in members]
    for split in ("train", "dev", "test"):  # Jensen: the mixture's NLL is at most the members' mean
        assert report[split] <= sum(s[split] for s in singles) / len(singles) + 1e-9
    assert report["params"] == sum(m.model.num_params() for m in members)


def test_one_member_is_that_model(data):
    one = member("mlp", data, 0)
    from makemore.evaluate import split_nll

    assert ensemble.evaluate([one], data)["dev"] == pytest.approx(
        split_nll(one.model, one.model.examples(data.split("dev"))), rel=1e-6
    )


def test_sampling_draws_from_the_mixture(data):
    members = [member(kind, data, seed) for seed, kind in enumerate(KINDS)]
    mixture = ensemble.Mixture([m.model for m in members])
    prefix = torch.tensor([[BOUNDARY] + data.vocab.encode("an")])
    probs = sum(torch.softmax(m.model.next_logits(prefix).double(), -1) for m in members) / len(members)
    assert torch.softmax(mixture.next_logits(prefix).double(), -1) == pytest.approx(probs, abs=1e-6)
    limit = mixture.max_sample_len(data.max_len)
    assert limit == min(m.model.max_sample_len(data.max_len) for m in members)
    draw = lambda: generate(mixture, data.vocab, 12, limit, torch.Generator().manual_seed(5), Sampling(prefix="a"))
    items = draw()
    assert items == draw() and len(items) == 12
    assert all(s.startswith("a") and len(s) <= limit for s in items)


def test_members_must_share_the_vocabulary_and_for_a_split_the_data(data, tmp_path):
    other_file = tmp_path / "other.txt"
    other_file.write_text("zoe\nquinn\n")
    other = Dataset.read(other_file)
    with pytest.raises(MakemoreError, match="another vocabulary"):
        ensemble.score([member("mlp", data, 0), member("mlp", other, 1)], ["zoe"])
    elsewhere = member("mlp", data, 1, sha="other")
    with pytest.raises(MakemoreError, match="other data"):
        ensemble.evaluate([member("mlp", data, 0), elsewhere], data)
    assert ensemble.score([member("mlp", data, 0), elsewhere], ["zoe"])  # scoring needs no split


@pytest.fixture(scope="module")
def two_runs(small_names, tmp_path_factory):
    """A bigram-nn and an mlp on the same 500 names, a few steps each."""
    from makemore.cli import main

    root = tmp_path_factory.mktemp("ensemble")
    for kind in ("bigram-nn", "mlp"):
        argv = ["train", "--type", kind, "-i", small_names, "-o", root / kind, "--max-steps", "40", "-q"]
        assert main([str(a) for a in [*argv, "--eval-interval", "40", "--threads", "1"]]) == 0
    return root / "bigram-nn", root / "mlp"


def test_the_commands_take_several_runs_as_one_ensemble(two_runs, capsys, tmp_path):
    import json

    from conftest import run_cli

    a, b = two_runs
    code, out, _ = run_cli(capsys, "eval", "-o", a, "-o", b, "--json")
    mixture = json.loads(out)
    singles = [json.loads(run_cli(capsys, "eval", "-o", r, "--json")[1]) for r in two_runs]
    assert code == 0 and mixture["type"] == "ensemble of bigram-nn + mlp"
    assert mixture["dev"] <= (singles[0]["dev"] + singles[1]["dev"]) / 2
    code, out, _ = run_cli(capsys, "score", "-o", a, "-o", b, "emma", "--json")
    assert code == 0 and json.loads(out)["items"][0]["nll"] > 0
    code, out, _ = run_cli(capsys, "sample", "-o", a, "-o", b, "-n", "5", "--seed", "3", "--json")
    assert code == 0 and len(json.loads(out)["samples"]) == 5
    assert out == run_cli(capsys, "sample", "-o", a, "-o", b, "-n", "5", "--seed", "3", "--json")[1]
    code, out, _ = run_cli(capsys, "compare", a, b, "--ensemble")
    assert code == 0 and "| ensemble of 2 | `ensemble of bigram-nn + mlp` |" in out
    other = tmp_path / "other.txt"
    other.write_text("zoe\nquinn\nxu\n")
    assert run_cli(capsys, "train", "--type", "bigram", "-i", other, "-o", tmp_path / "z", "-q")[0] == 0
    code, _, err = run_cli(capsys, "score", "-o", a, "-o", tmp_path / "z", "zoe")
    assert code != 0 and "another vocabulary" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
