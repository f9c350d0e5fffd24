import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from makemore import checkpoint
from makemore.data import Vocab
from makemore.errors import MakemoreError
from makemore.models import REGISTRY


def _saved(tmp_path):
    torch.manual_seed(0)
    model = REGISTRY["mlp"](REGISTRY["mlp"].Config(vocab_size=4))
    path = tmp_path / "model.safetensors"
    checkpoint.save(path, model, Vocab(("a", "b", "c")), {"type": "mlp", "step": 7})
    return model, path


def test_round_trip_is_exact_and_self_describing(tmp_path):
    model, path = _saved(tmp_path)
    loaded, vocab, meta, _ = checkpoint.load(path)
    assert vocab.chars == ("a", "b", "c") and meta["step"] == 7 and meta["type"] == "mlp"
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), loaded.parameters()))


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
    meta, tensors = checkpoint.read(path)
    save_file(tensors, str(path), metadata={"makemore": json.dumps({**meta, "version": 99})})
    with pytest.raises(MakemoreError, match="version 99"):
        checkpoint.load(path)
    save_file(tensors, str(path), metadata={"makemore": json.dumps({**meta, "type": "bigram-nn", "config": {"vocab_size": 4}})})
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

    monkeypatch.setattr(checkpoint.os, "fsync", disk_full)
    with pytest.raises(MakemoreError, match="No space left"):
        checkpoint.atomic_write_bytes(path, b"new contents")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left behind
