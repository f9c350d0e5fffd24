"""The thread count chosen when none is given: one for a small step, every core for a large one."""

import torch

from makemore.config import TrainConfig
from makemore.data import Dataset
from makemore.devices import auto_threads
from makemore.models import REGISTRY

from conftest import run_cli

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia"] * 20


def _default(model_type: str, **options):
    cls = REGISTRY[model_type]
    with torch.device("meta"):
        model = cls(cls.config_for(Dataset.from_items(NAMES), **options))
    return model, TrainConfig(**cls.train_defaults)


def test_small_models_train_on_one_thread_and_the_transformer_on_every_core():
    assert auto_threads(*_default("mlp")) == 1
    assert auto_threads(*_default("lstm")) == 1
    assert auto_threads(*_default("transformer")) == 0  # 0: all cores
    assert auto_threads(*_default("transformer", n_embd=16, n_layer=1)) == 1


def test_train_without_threads_uses_the_chosen_count(capsys, tmp_path, monkeypatch):
    data = tmp_path / "names.txt"
    data.write_text("\n".join(NAMES))
    chosen = []
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    code, _, err = run_cli(capsys, "train", "--type", "mlp", "-i", data, "-o", tmp_path / "r", "--max-steps", "2", "-q")
    assert code == 0, err
    assert chosen == [1]


def test_all_cores_means_at_most_omp_num_threads_where_it_is_set(monkeypatch):
    from makemore.devices import set_threads

    chosen = []
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    set_threads(0)  # all cores, as the environment allows
    set_threads(5)  # an explicit count is the user's
    monkeypatch.delenv("OMP_NUM_THREADS")
    set_threads(0)
    assert chosen == [3, 5, 8]
