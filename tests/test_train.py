import json
import math

import pytest
import torch

from makemore import checkpoint
from makemore.checkpoint import RunInfo
from makemore.config import TrainConfig
from makemore.data import IGNORE, Dataset, bundled_names
from makemore.errors import MakemoreError
from makemore.evaluate import split_nll
from makemore.models import REGISTRY, WindowModel
from makemore.models.batchnorm import BatchNorm
from makemore.store import RunStore
from makemore.train import Checkpoints, MetricsLog, Trainer, TrainState, batch_loss, lr_at


def _into(run_dir, trainer: Trainer, model_type: str, best_dev: float = math.inf) -> Trainer:
    """The trainer with the hooks of a real run: metrics log and checkpoints in run_dir."""
    run = RunInfo(
        type=model_type,
        source="names.txt",
        max_item_len=1000,
        max_len=trainer.data.max_len,
        params=trainer.model.num_params(),
        skipped_items=0,
    )
    store = RunStore(run_dir, trainer.data.vocab, run)
    trainer.hooks = [MetricsLog(store), Checkpoints(store, best_dev)]
    return trainer


def _read(path):
    return checkpoint._read(path)


def test_schedules():
    cfg = TrainConfig(max_steps=1000, learning_rate=0.1, warmup_steps=10, min_lr_ratio=0.01)
    assert lr_at(cfg, 0) == pytest.approx(0.01) and lr_at(cfg, 9) == pytest.approx(0.1)
    assert lr_at(cfg, 10) == pytest.approx(0.1) and lr_at(cfg, 1000) == pytest.approx(0.001)
    steps = [lr_at(cfg, s) for s in range(10, 1000)]
    assert all(a >= b for a, b in zip(steps, steps[1:]))  # cosine only decays
    lecture = TrainConfig(max_steps=200000, learning_rate=0.1, schedule="step", warmup_steps=0)
    assert lr_at(lecture, 99999) == 0.1 and lr_at(lecture, 100000) == pytest.approx(0.01)
    later = TrainConfig(max_steps=200000, learning_rate=0.1, schedule="step", step_at=0.75, warmup_steps=0)
    assert lr_at(later, 149999) == 0.1 and lr_at(later, 150000) == pytest.approx(0.01)  # Parts 3 and 5
    assert "--step-at must be in (0, 1]" in TrainConfig(step_at=0).problems()
    assert lr_at(TrainConfig(schedule="constant", warmup_steps=0, learning_rate=0.3), 5000) == 0.3


def test_the_wsd_schedule_holds_the_peak_then_falls_in_a_straight_line_to_the_floor():
    cfg = TrainConfig(
        schedule="wsd", max_steps=1000, learning_rate=0.1, warmup_steps=10, cooldown=0.3, min_lr_ratio=0.01
    )
    rates = [lr_at(cfg, s) for s in range(1000)]
    assert rates[9] == pytest.approx(0.1) and set(rates[10:701]) == {0.1}
    assert rates[-1] == pytest.approx(0.001)
    falls = [a - b for a, b in zip(rates[700:], rates[701:])]
    assert min(falls) == pytest.approx(max(falls)) and min(falls) > 0
    assert "--cooldown must be in (0, 1]" in TrainConfig(cooldown=0).problems()


def test_the_sweep_schedule_takes_one_step_at_each_of_a_geometric_series_of_rates():
    cfg = TrainConfig(schedule="sweep", max_steps=1000, learning_rate=1.0, min_lr_ratio=0.001, warmup_steps=100)
    rates = [lr_at(cfg, s) for s in range(1000)]
    assert rates[0] == pytest.approx(0.001) and rates[-1] == pytest.approx(1.0)  # no warmup: it would bend the sweep
    ratios = [b / a for a, b in zip(rates, rates[1:])]
    assert max(ratios) == pytest.approx(min(ratios)) and ratios[0] == pytest.approx(1000 ** (1 / 999))


def test_the_log_interval_sets_which_train_losses_the_metrics_keep(tmp_path):
    data = Dataset.from_items(["emma", "olivia", "ava", "isabella", "sophia"] * 20)
    cls = REGISTRY["mlp"]
    cfg = TrainConfig(max_steps=25, batch_size=8, log_interval=10, eval_interval=100, warmup_steps=0)
    _into(tmp_path, Trainer(cls(cls.Config(vocab_size=len(data.vocab))), data, cfg), "mlp").run()
    logged = [r["step"] for r in RunStore.open(tmp_path).metrics() if "loss" in r]
    assert logged == [1, 10, 20, 25]  # the first step, every 10th, the last


@pytest.mark.parametrize(
    "field, value",
    [
        ("max_steps", -1),
        ("batch_size", 0),
        ("learning_rate", 0.0),
        ("optimizer", "adam"),
        ("schedule", "linear"),
        ("beta2", 1.0),
        ("log_interval", 0),
    ],
)
def test_nonsense_config_is_rejected(field, value):
    with pytest.raises(MakemoreError, match=field.replace("_", "-")):
        TrainConfig(**{field: value}).validate()


def _train(tmp_path, seed=1, steps=300, **overrides):
    data = Dataset.read(bundled_names())
    cls = REGISTRY["mlp"]
    torch.manual_seed(seed)
    model = cls(cls.Config(vocab_size=27))
    cfg = TrainConfig(**{**cls.train_defaults, "max_steps": steps, "eval_interval": 100, "seed": seed, **overrides})
    _into(tmp_path, Trainer(model, data, cfg), "mlp").run()
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
    best_meta, _ = _read(tmp_path / checkpoint.BEST)
    last_meta, last_tensors = _read(tmp_path / checkpoint.LAST)
    devs = [row["dev"] for row in log if "dev" in row]
    assert best_meta["best_dev"] == min(devs) and last_meta["step"] == 200
    assert "rng.batches" in last_tensors and "optimizer" in last_meta
    assert all(math.isfinite(row["loss"]) for row in log if "loss" in row)


def test_nonfinite_loss_stops_with_the_step(tmp_path):
    with pytest.raises(MakemoreError, match="loss became nan at step"):
        _train(tmp_path, steps=100, learning_rate=1e30, optimizer="sgd", warmup_steps=0)


def test_padding_a_batch_only_to_its_longest_item_leaves_the_loss_unchanged():
    data = Dataset.read(bundled_names())
    cls = REGISTRY["transformer"]
    torch.manual_seed(0)
    model = cls(cls.config_for(data)).eval()
    Xt, Yt = model.examples(data.split("train"))[:64]
    assert Xt.size(1) < data.max_len + 1  # names in one batch are shorter than the longest name
    T = data.max_len + 1 - Xt.size(1)  # pad as wide as the longest item of the data set
    Xb, Yb = torch.nn.functional.pad(Xt, (0, T), value=0), torch.nn.functional.pad(Yt, (0, T), value=IGNORE)
    full, trimmed = batch_loss(model, Xb, Yb).item(), batch_loss(model, Xt, Yt).item()
    print("loss full", full, "trimmed", trimmed)
    assert abs(full - trimmed) < 1e-6


def _sequence_trainer(tmp_path, resume=False, **overrides):
    tmp_path.mkdir(exist_ok=True)
    data = Dataset.read(bundled_names())
    cls = REGISTRY["transformer"]
    torch.manual_seed(0)
    model_options = {k: overrides.pop(k) for k in ("dropout", "emb_dropout") if k in overrides}
    model = cls(cls.config_for(data, n_layer=1, n_embd=16, **model_options))
    cfg = TrainConfig(**{"max_steps": 100, "batch_size": 64, "seed": 3, **overrides})
    if not resume:
        return _into(tmp_path, Trainer(model, data, cfg), "transformer")
    last = RunStore(tmp_path).load_last()
    trainer = Trainer(last.model, data, cfg)
    trainer.restore(TrainState(last.step, last.train_seconds, cfg, last.optimizer, last.rng, last.ema))
    return _into(tmp_path, trainer, "transformer", last.best_dev)


def test_packed_and_padded_training_take_the_same_steps(tmp_path):
    """Without dropout, training on packed rows is training on the padded items: the same losses
    and weights, up to float32 rounding (the sums run in another order)."""
    runs = {}
    for pack in (True, False):
        trainer = _sequence_trainer(tmp_path / str(pack), max_steps=5, pack=pack, dropout=0.0, emb_dropout=0.0)
        assert (trainer.model.shape_batch(*trainer.train_examples[:8], pack)[2] is not None) == pack
        trainer.run()
        runs[pack] = trainer
    losses = {
        pack: [
            json.loads(line)["loss"]
            for line in (tmp_path / str(pack) / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)
        ]
        for pack in runs
    }
    worst = max(
        (a - b).abs().max().item() for a, b in zip(runs[True].model.parameters(), runs[False].model.parameters())
    )
    print("losses packed", losses[True], "padded", losses[False], "max weight difference", worst)
    assert losses[True] and all(abs(a - b) < 1e-5 for a, b in zip(losses[True], losses[False]))
    assert worst < 1e-5


def test_ema_weights_are_the_running_average(tmp_path):
    decay = 0.9
    one = _sequence_trainer(tmp_path / "one", max_steps=1, ema=decay)
    one.run()
    two = _sequence_trainer(tmp_path / "two", max_steps=2, ema=decay)
    two.run()
    _, last = _read(tmp_path / "two" / checkpoint.LAST)
    worst = 0.0
    for name, w2 in two.model.state_dict().items():
        w1 = one.model.state_dict()[name]
        d = min(decay, 2 / 11)  # the first update copies, later ones blend: the decay is warmed up
        expected = d * w1 + (1 - d) * w2
        worst = max(worst, (last[f"ema.module.{name}"] - expected).abs().max().item())
        assert torch.equal(two.ema.module.state_dict()[name], last[f"ema.module.{name}"])
    print("max |ema - d*w1 - (1-d)*w2|:", worst)
    assert worst < 1e-6
    best_meta, best = _read(tmp_path / "two" / checkpoint.BEST)
    assert all(torch.equal(best[f"model.{k}"], v) for k, v in two.evaluated_model().state_dict().items())


@pytest.mark.parametrize("steps", [30, 300])
def test_a_short_run_keeps_weights_no_worse_than_its_raw_ones(tmp_path, steps):
    """--ema 0.999 over 300 steps: a fixed decay kept 0.999**300 = 74% of the first weights in the
    average (dev 2.94 against the raw weights' 2.30). Warmed up, the average comes within a hair of
    the raw weights; evaluating both and keeping the better makes what is saved no worse."""
    trainer = _sequence_trainer(tmp_path, max_steps=steps, eval_interval=steps, ema=0.999, learning_rate=1e-2)
    trainer.run()
    kept = split_nll(trainer.evaluated_model(), trainer.dev_examples)
    averaged = split_nll(trainer.ema.module, trainer.dev_examples)
    raw = split_nll(trainer.model, trainer.dev_examples)
    print(f"dev after {steps} steps: average {averaged:.4f}, raw weights {raw:.4f}, kept {kept:.4f}")
    assert kept == min(averaged, raw) == trainer.dev
    if steps >= 300:  # warmed up, the average follows the weights from the start (fixed: 2.94 vs 2.30)
        assert averaged <= raw + 0.01


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_resume_with_ema_and_packed_rows_equals_a_straight_run(tmp_path, optimizer):
    # the transformer trains on packed rows; muon's state is two optimizers' in one state_dict
    common = dict(schedule="constant", eval_interval=50, ema=0.95, optimizer=optimizer)
    straight = _sequence_trainer(tmp_path / "straight", max_steps=100, **common)
    straight.run()
    _sequence_trainer(tmp_path / "resumed", max_steps=50, **common).run()
    _sequence_trainer(tmp_path / "resumed", resume=True, max_steps=100, **common).run()
    a = _read(tmp_path / "straight" / checkpoint.LAST)[1]
    b = _read(tmp_path / "resumed" / checkpoint.LAST)[1]
    keys = [k for k in a if k.startswith(("model.", "optim.", "ema."))]
    assert any(k.startswith("ema.") for k in keys) and keys == [
        k for k in b if k.startswith(("model.", "optim.", "ema."))
    ]
    assert all(torch.equal(a[k], b[k]) for k in keys)


def test_input_noise_swaps_only_data_characters_at_the_given_rate(tmp_path):
    trainer = _sequence_trainer(tmp_path, input_noise=0.2)
    X = trainer.train_examples[:4000][0]
    torch.manual_seed(0)
    noised = trainer._noised(X)
    data_chars = X != 0
    assert torch.equal(noised[~data_chars], X[~data_chars])  # boundary and padding untouched
    assert int(noised[data_chars].min()) >= 1  # a data character never becomes the boundary
    changed = (noised != X)[data_chars].float().mean().item()
    print(f"fraction of data characters changed: {changed:.4f} (expected 0.2 * 25/26 = {0.2 * 25 / 26:.4f})")
    assert abs(changed - 0.2 * 25 / 26) < 0.01  # a swap may draw the same character


class LinearBN(WindowModel):
    def __init__(self):
        super().__init__(WindowModel.Config(context_size=5))
        self.linear, self.bn = torch.nn.Linear(5, 3), BatchNorm(3, momentum=0.001)

    def forward(self, x):
        return self.bn(self.linear(x))


def test_recompute_batchnorm_averages_the_statistics_of_the_whole_split():
    torch.manual_seed(0)
    model = LinearBN().eval()
    X = torch.randn(3000, 5) * 3 + 1
    model.recompute_batchnorm(torch.utils.data.TensorDataset(X, X), chunk=1000)
    with torch.no_grad():
        h = model.linear(X)
    chunk_vars = torch.stack([h[i : i + 1000].var(0) for i in range(0, 3000, 1000)]).mean(0)
    diff = max(
        (model.bn.running_mean - h.mean(0)).abs().max().item(), (model.bn.running_var - chunk_vars).abs().max().item()
    )
    print("max difference from the split's statistics:", diff)
    assert diff < 1e-5
    assert model.bn.momentum == 0.001 and not model.training


def test_ema_switched_on_at_resume_starts_averaging_there(tmp_path):
    _sequence_trainer(tmp_path, max_steps=20, schedule="constant", eval_interval=20).run()
    resumed = _sequence_trainer(tmp_path, resume=True, max_steps=40, schedule="constant", eval_interval=20, ema=0.9)
    resumed.run()
    _, last = _read(tmp_path / checkpoint.LAST)
    assert int(last["ema.n_averaged"]) == 20  # the 20 steps after the resume
