import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from makemore import checkpoint, files
from makemore.checkpoint import Checkpoint, RunInfo
from makemore.data import Dataset, Vocab, bundled_names, read_items
from makemore.errors import MakemoreError
from makemore.evaluate import split_nll
from makemore.models import REGISTRY

FIXTURES = Path(__file__).parent / "fixtures"


def _saved(tmp_path):
    torch.manual_seed(0)
    model = REGISTRY["mlp"](REGISTRY["mlp"].Config(vocab_size=4))
    path = tmp_path / "model.safetensors"
    run = RunInfo(type="mlp", source="x.txt", max_item_len=1000, max_len=5, params=model.num_params(), skipped_items=0)
    checkpoint.save(path, Checkpoint(model=model, vocab=Vocab(("a", "b", "c")), run=run, step=7))
    return model, path


def test_round_trip_is_exact_and_self_describing(tmp_path):
    model, path = _saved(tmp_path)
    loaded = checkpoint.load(path)
    assert loaded.vocab.chars == ("a", "b", "c") and loaded.step == 7 and loaded.run.type == "mlp"
    assert loaded.model.config == model.config and not loaded.model.training
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), loaded.model.parameters()))


@pytest.mark.parametrize("model_type", json.loads((FIXTURES / "v1" / "eval.json").read_text()))
def test_version_1_checkpoints_load_and_evaluate_as_they_did(model_type):
    """Checkpoints written before block_size became context_size / max_len (and before mlp-bn's
    BatchNorm became a module) load with their old names mapped, and give the same losses."""
    expected = json.loads((FIXTURES / "v1" / "eval.json").read_text())[model_type]
    ckpt = checkpoint.load(FIXTURES / "v1" / f"{model_type}.safetensors")
    assert ckpt.run.type == model_type and ckpt.step == expected["step"]
    assert ckpt.model.num_params() == expected["params"] and "block_size" not in vars(ckpt.model.config)
    data = Dataset(read_items(bundled_names())[0], vocab=ckpt.vocab)
    for split in ("train", "dev", "test"):
        got = split_nll(ckpt.model, *ckpt.model.split_tensors(data, split))
        print(model_type, split, got, expected[split])
        assert got == pytest.approx(expected[split], abs=1e-5)


def test_truncated_and_corrupted_files(tmp_path):
    _, path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MakemoreError, match="truncated or corrupted"):
        checkpoint.load(path)
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(MakemoreError):
        checkpoint.load(path)


def test_pickle_payload_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(MakemoreError):
        checkpoint.load(path)
    assert not marker.exists()


def test_wrong_version_and_wrong_model(tmp_path):
    _, path = _saved(tmp_path)
    meta, tensors = checkpoint._read(path)
    save_file(tensors, str(path), metadata={"makemore": json.dumps({**meta, "version": 99})})
    with pytest.raises(MakemoreError, match="version 99"):
        checkpoint.load(path)
    save_file(
        tensors,
        str(path),
        metadata={"makemore": json.dumps({**meta, "type": "bigram-nn", "config": {"vocab_size": 4}})},
    )
    with pytest.raises(MakemoreError, match="do not fit"):
        checkpoint.load(path)
    save_file(tensors, str(path))
    with pytest.raises(MakemoreError, match="not a makemore checkpoint"):
        checkpoint.load(path)


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    _, path = _saved(tmp_path)
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(MakemoreError, match="No space left"):
        files.atomic_write_bytes(path, b"new contents")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left behind
