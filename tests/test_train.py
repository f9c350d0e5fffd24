import json
import math

import pytest
import torch

from makemore import checkpoint
from makemore.data import Dataset, bundled_names, read_items
from makemore.errors import MakemoreError
from makemore.models import REGISTRY
from makemore.train import TrainConfig, Trainer, lr_at


def test_schedules():
    cfg = TrainConfig(max_steps=1000, learning_rate=0.1, warmup_steps=10, min_lr_ratio=0.01)
    assert lr_at(cfg, 0) == pytest.approx(0.01) and lr_at(cfg, 9) == pytest.approx(0.1)
    assert lr_at(cfg, 10) == pytest.approx(0.1) and lr_at(cfg, 1000) == pytest.approx(0.001)
    steps = [lr_at(cfg, s) for s in range(10, 1000)]
    assert all(a >= b for a, b in zip(steps, steps[1:]))  # cosine only decays
    lecture = TrainConfig(max_steps=200000, learning_rate=0.1, schedule="step", warmup_steps=0)
    assert lr_at(lecture, 99999) == 0.1 and lr_at(lecture, 100000) == pytest.approx(0.01)
    assert lr_at(TrainConfig(schedule="constant", warmup_steps=0, learning_rate=0.3), 5000) == 0.3


@pytest.mark.parametrize("field, value", [("max_steps", -1), ("batch_size", 0), ("learning_rate", 0.0), ("optimizer", "adam"), ("schedule", "linear")])
def test_nonsense_config_is_rejected(field, value):
    with pytest.raises(MakemoreError, match=field.replace("_", "-")):
        TrainConfig(**{field: value}).validate()


def _train(tmp_path, seed=1, steps=300, **overrides):
    data = Dataset(read_items(bundled_names())[0])
    cls = REGISTRY["mlp"]
    torch.manual_seed(seed)
    model = cls(cls.Config(vocab_size=27))
    cfg = TrainConfig(**{**cls.train_defaults, "max_steps": steps, "eval_interval": 100, "seed": seed, **overrides})
    Trainer(model, data, cfg, tmp_path, {"type": "mlp"}).run(progress=False)
    return model, [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]


def test_same_seed_same_loss_curve_and_weights(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    model_a, log_a = _train(tmp_path / "a")
    model_b, log_b = _train(tmp_path / "b")
    _, log_c = _train(tmp_path / "c", seed=2)
    strip = lambda log: [{k: v for k, v in row.items() if k != "train_seconds"} for row in log]
    assert strip(log_a) == strip(log_b)
    assert all(torch.equal(p, q) for p, q in zip(model_a.parameters(), model_b.parameters()))
    assert strip(log_a) != strip(log_c)


def test_best_and_last_checkpoints_are_written(tmp_path):
    model, log = _train(tmp_path, steps=200, optimizer="sgd", learning_rate=0.1, schedule="step")
    best_meta, _ = checkpoint.read(tmp_path / checkpoint.BEST)
    last_meta, last_tensors = checkpoint.read(tmp_path / checkpoint.LAST)
    devs = [row["dev"] for row in log if "dev" in row]
    assert best_meta["best_dev"] == min(devs) and last_meta["step"] == 200
    assert "rng.batches" in last_tensors and "optimizer" in last_meta
    assert all(math.isfinite(row["loss"]) for row in log if "loss" in row)


def test_nonfinite_loss_stops_with_the_step(tmp_path):
    with pytest.raises(MakemoreError, match="loss became nan at step"):
        _train(tmp_path, steps=100, learning_rate=1e30, optimizer="sgd", warmup_steps=0)


def test_trimming_padding_columns_leaves_the_loss_unchanged():
    data = Dataset(read_items(bundled_names())[0])
    cls = REGISTRY["transformer"]
    torch.manual_seed(0)
    model = cls(cls.Config(vocab_size=27, block_size=data.max_len + 1)).eval()
    X, Y = data.tensors("train", "sequence", 0)
    Xb, Yb = X[:64], Y[:64]
    Xt, Yt = Trainer._trim(Xb, Yb)
    assert Xt.size(1) < Xb.size(1)  # names in one batch are shorter than the longest name
    from makemore.train import batch_loss

    full, trimmed = batch_loss(model, Xb, Yb).item(), batch_loss(model, Xt, Yt).item()
    print("loss full", full, "trimmed", trimmed)
    assert abs(full - trimmed) < 1e-6
