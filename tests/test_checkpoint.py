import json
import pickle
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from makemore import checkpoint, files
from makemore.checkpoint import Checkpoint, RunInfo
from makemore.data import Dataset, Split, Vocab, bundled_names
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
    data = Dataset.read(bundled_names(), vocab=ckpt.vocab)
    for split in ("train", "dev", "test"):
        got = split_nll(ckpt.model, ckpt.model.examples(data.split(split)))
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


def _small_transformer(tmp_path):
    torch.manual_seed(0)
    cls = REGISTRY["transformer"]
    model = cls(cls.Config(vocab_size=4, max_len=5, n_layer=1, n_head=2, n_embd=8))
    path = tmp_path / "t.safetensors"
    run = RunInfo(
        type="transformer", source="x.txt", max_item_len=1000, max_len=5, params=model.num_params(), skipped_items=0
    )
    checkpoint.save(
        path,
        Checkpoint(model=model, vocab=Vocab(("a", "b", "c")), run=run, step=3, train_config=checkpoint.TrainConfig()),
    )
    return path


def _with(meta, **changes):
    meta = json.loads(json.dumps(meta))
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        target = meta
        for p in parents:
            target = target[p]
        if value is DELETE:
            del target[key]
        else:
            target[key] = value
    return meta


DELETE = object()


@pytest.mark.parametrize(
    "changes, why",
    [
        (dict(config__vocab_size=5_000_000, vocab=[chr(0x4E00 + i) for i in range(12000)]), "more than 9,999"),
        (dict(config__vocab_size=5_000_000), "does not match its 3 characters"),
        (dict(config__n_embd=10**9, config__n_head=1), "too large to build|do not fit"),
        (dict(config__n_embd=2**70, config__n_head=1), "must be at most 2\\*\\*31"),
        (dict(config__n_layer=10**9), "must be at most 1,000"),
        (dict(config__n_layer=500), "more blocks than its .* weight tensors can hold"),
        (dict(best_dev="2.1"), "its best_dev is not a number"),
        (dict(train_seconds=-1), "its train_seconds is not a number >= 0"),
        (dict(vocab=["a", "b"]), "vocab_size 4 does not match its 2 characters"),
        (dict(config__n_head=3), "must be divisible"),
        (dict(step=DELETE), "its step is not a whole number"),
        (dict(vocab=DELETE), "vocabulary is not a list of characters"),
        (dict(config__n_embd=8.5), "field n_embd should be int"),
        (dict(config__n_embd="8"), "field n_embd should be int"),
        (dict(train_config__typo=1), "train_config has fields unknown to this makemore: typo"),
        (dict(train_config__ema=2.0), "train_config is invalid: --ema"),
        (dict(config__max_len=500), "do not fit model 'transformer'"),
        (dict(config__max_len=10**7), "--max-len must be at most 100,000"),
        (dict(max_len=10**7), "max_len 10000000 is not in"),
        (dict(max_len="15"), "field max_len should be int"),
        (dict(max_item_len=10**9), "max_item_len 1000000000 is not in"),
        (dict(params=DELETE), "lacks the run's params"),
    ],
)
def test_metadata_is_checked_against_the_model_before_any_tensor_is_read(tmp_path, changes, why):
    path = _small_transformer(tmp_path)
    meta, tensors = checkpoint._read(path)
    save_file(tensors, str(path), metadata={"makemore": json.dumps(_with(meta, **changes))})
    with pytest.raises(MakemoreError, match=why):
        checkpoint.load(path)


def test_nan_weights_are_refused(tmp_path):
    path = _small_transformer(tmp_path)
    meta, tensors = checkpoint._read(path)
    tensors["model.lm_head.bias"][1] = float("nan")
    save_file(tensors, str(path), metadata={"makemore": json.dumps(meta)})
    with pytest.raises(MakemoreError, match="NaN weights"):
        checkpoint.load(path)


def test_infinite_weights_are_refused_but_a_log_of_zero_counts_loads(tmp_path):
    path = _small_transformer(tmp_path)
    meta, tensors = checkpoint._read(path)
    tensors["model.lm_head.weight"][0, 0] = float("-inf")
    save_file(tensors, str(path), metadata={"makemore": json.dumps(meta)})
    with pytest.raises(MakemoreError, match="infinite weights"):
        checkpoint.load(path)
    bigram = REGISTRY["bigram"](REGISTRY["bigram"].Config(vocab_size=4, alpha=0.0))
    bigram.log_probs[0, 1] = float("-inf")  # a pair never seen, without smoothing: probability 0
    run = RunInfo(type="bigram", source="x.txt", max_item_len=1000, max_len=5, params=0, skipped_items=0)
    checkpoint.save(tmp_path / "b.safetensors", Checkpoint(model=bigram, vocab=Vocab(("a", "b", "c")), run=run))
    assert checkpoint.load(tmp_path / "b.safetensors").model.log_probs[0, 1] == float("-inf")


# --- any damage to a checkpoint: a consistent model or one line, within bounded memory and time ----
JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(-3, 30), max_size=3),
)
META_KEYS = ["type", "version", "step", "best_dev", "vocab", "max_len", "max_item_len", "params", "train_config"]
CONFIG_KEYS = ["vocab_size", "max_len", "n_layer", "n_head", "n_embd", "dropout", "emb_dropout", "head", "extra"]


SLOWEST = [0.0]  # the slowest load of the property test, printed at the end of the module


@pytest.fixture(scope="module", autouse=True)
def report_the_slowest_load():
    yield
    print(f"slowest damaged-checkpoint load: {SLOWEST[0]:.2f} s")


@contextmanager
def memory_cap(extra_bytes: int):
    """No more than extra_bytes of new address space for the duration (RLIMIT_AS)."""
    with open("/proc/self/statm") as f:
        in_use = int(f.read().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (in_use + extra_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.fixture(scope="module")
def valid_checkpoint(tmp_path_factory):
    path = _small_transformer(tmp_path_factory.mktemp("valid"))
    return checkpoint._read(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    meta_edits=st.lists(
        st.tuples(st.sampled_from(META_KEYS + [f"config.{k}" for k in CONFIG_KEYS]), JSON_VALUES), max_size=3
    ),
    tensor_edit=st.one_of(
        st.none(),
        st.tuples(
            st.sampled_from(["reshape", "nan", "drop"]),
            st.integers(0, 30),
            st.lists(st.integers(0, 40), min_size=1, max_size=3),
        ),
    ),
)
def test_any_damage_loads_a_consistent_model_or_fails_in_one_line(tmp_path, valid_checkpoint, meta_edits, tensor_edit):
    meta, tensors = json.loads(json.dumps(valid_checkpoint[0])), dict(valid_checkpoint[1])
    for key, value in meta_edits:
        target, name = (meta["config"], key[len("config.") :]) if key.startswith("config.") else (meta, key)
        target[name] = value
    if tensor_edit is not None:
        how, which, shape = tensor_edit
        keys = sorted(k for k in tensors if k.startswith("model."))
        key = keys[which % len(keys)]
        if how == "reshape":
            tensors[key] = torch.zeros(shape)
        elif how == "nan":
            tensors[key] = torch.full_like(tensors[key], float("nan"))
        else:
            del tensors[key]
    path = tmp_path / "damaged.safetensors"
    save_file(tensors, str(path), metadata={"makemore": json.dumps(meta)})
    t0 = time.perf_counter()
    with memory_cap(1 << 30):
        try:
            ckpt = checkpoint.load(path)
        except MakemoreError as e:
            assert "\n" not in str(e)
            return
        finally:
            SLOWEST[0] = max(SLOWEST[0], time.perf_counter() - t0)
        V = ckpt.model.config.vocab_size  # it loaded: then it is a working model of its vocabulary
        assert V == len(ckpt.vocab)  # the characters and the boundary
        X, _ = ckpt.model.examples(Split(torch.zeros(4, dtype=torch.uint8), torch.tensor([0, 2, 4])))[:]
        logits = ckpt.model(X)
        assert logits.shape[-1] == V and not logits.isnan().any()


@pytest.mark.slow
def test_loading_a_checkpoint_does_not_import_the_compiler(tmp_path):
    """The shapes check builds the model on the meta device without its random init: torch's meta
    kernels for normal_, randn and their scaling import torch._dynamo, seconds added to every
    command that loads a run. Every type, loaded and evaluated in one process."""
    (tmp_path / "names.txt").write_text("\n".join(bundled_names().read_text().split()[:50]) + "\n")
    data = Dataset.read(tmp_path / "names.txt")
    for kind, cls in REGISTRY.items():
        model = cls(cls.config_for(data))
        run = RunInfo(kind, "names.txt", 1000, data.max_len, model.num_params(), 0, data.sha256)
        checkpoint.save(tmp_path / f"{kind}.safetensors", Checkpoint(model=model, vocab=data.vocab, run=run))
    code = (
        "import sys; from makemore import checkpoint, evaluate; from makemore.data import Split\n"
        "for path in sys.argv[1:]:\n"
        "    m = checkpoint.load(path).model\n"
        "    evaluate.split_nll(m, m.examples(Split.of(['emma', 'ava'], checkpoint.load(path).vocab)))\n"
        "print(*sys.modules)"
    )  # evaluation too: its memory plan runs a TorchDispatchMode, which torch would wrap in the compiler
    paths = [tmp_path / f"{kind}.safetensors" for kind in REGISTRY]
    out = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, check=True)
    modules = out.stdout.split()
    assert {"makemore.models.transformer", "makemore.models.wavenet", "makemore.models.mlp"} <= set(modules)
    assert "torch._dynamo" not in modules
