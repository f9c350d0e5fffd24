import math

import pytest
import torch
import torch.nn.functional as F

from makemore import runs
from makemore.cli import main
from makemore.data import Dataset, bundled_names, read_items
from makemore.models import REGISTRY
from makemore.models.mlp import MLP
from makemore.models.mlp_bn import MLPBN, MLPBNDeep
from makemore.sample import Sampling
from makemore.store import RunStore

from conftest import run_cli


def make(cls, seed=0, **kw):
    torch.manual_seed(seed)
    return cls(cls.Config(**kw))


def warm_up_running_stats(model, steps=50, batch=64):
    """Training-mode forwards with random contexts so the running stats are far from (0, 1)."""
    gen = torch.Generator().manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randint(0, 27, (batch, model.config.context_size), generator=gen))
    model.eval()


def reference_forward(m: MLPBN, idx: torch.Tensor) -> torch.Tensor:
    """The lecture's training-mode forward written out in float64, one hidden unit at a time."""
    emb = m.C.double()[idx].reshape(len(idx), -1)
    hpre = emb @ m.W1.double()
    n = len(idx)
    cols = []
    for j in range(hpre.shape[1]):
        x = hpre[:, j]
        mean = sum(x.tolist()) / n
        var = sum((v - mean) ** 2 for v in x.tolist()) / (n - 1)  # Bessel's correction
        cols.append(
            m.bn.gamma.double()[0, j] * (x - mean) / math.sqrt(var + m.config.bn_eps) + m.bn.beta.double()[0, j]
        )
    h = torch.tanh(torch.stack(cols, dim=1))
    return h @ m.W2.double() + m.b2.double()


def test_mlp_bn_lecture_shape():
    m = make(MLPBN)
    print("mlp-bn parameters:", m.num_params())
    assert m.num_params() == 12097  # the lecture's count for this network
    assert not hasattr(m, "b1")  # BatchNorm's bias replaces the first layer's


def test_mlp_bn_training_forward_matches_float64_reference():
    m = make(MLPBN)
    with torch.no_grad():  # non-trivial gain and bias, so they are exercised
        m.bn.gamma.uniform_(0.5, 1.5)
        m.bn.beta.normal_()
    idx = torch.randint(0, 27, (37, 3), generator=torch.Generator().manual_seed(0))
    m.train()
    got = m(idx).double()
    ref = reference_forward(m, idx)
    diff = (got - ref).abs().max().item()
    print("mlp-bn train forward vs float64 reference, max |diff|:", diff)
    assert diff < 1e-5


def test_running_stats_follow_the_momentum_rule():
    m = make(MLPBN, bn_momentum=0.25)
    idx = torch.randint(0, 27, (50, 3), generator=torch.Generator().manual_seed(0))
    m.train()
    m(idx)
    hpre = (m.C[idx].reshape(50, -1) @ m.W1).detach().double()
    want_mean = 0.25 * hpre.mean(0)
    want_var = 0.75 * 1.0 + 0.25 * hpre.var(0, unbiased=True)
    d_mean = (m.bn.running_mean[0].double() - want_mean).abs().max().item()
    d_var = (m.bn.running_var[0].double() - want_var).abs().max().item()
    print("running mean / var vs explicit update, max |diff|:", d_mean, d_var)
    assert d_mean < 1e-6 and d_var < 1e-5
    assert not m.bn.running_mean.requires_grad


@pytest.mark.parametrize("cls", [MLPBN, MLPBNDeep])
def test_initial_loss_is_near_uniform(cls):
    m = make(cls)
    m.train()
    gen = torch.Generator().manual_seed(0)
    idx, y = torch.randint(0, 27, (512, 3), generator=gen), torch.randint(0, 27, (512,), generator=gen)
    loss = F.cross_entropy(m(idx), y).item()
    print(cls.__name__, "initial loss", loss, "vs ln 27 =", math.log(27))
    assert abs(loss - math.log(27)) < 0.05


@pytest.mark.parametrize("cls", [MLPBN, MLPBNDeep])
def test_folding_batchnorm_leaves_outputs_unchanged(cls):
    m = make(cls)
    warm_up_running_stats(m)
    with torch.no_grad():  # trained-looking gains and biases
        for name, p in m.named_parameters():
            if "gamma" in name:
                p.uniform_(0.5, 1.5)
            if "beta" in name:
                p.normal_()
    folded = m.fold()
    idx = torch.randint(0, 27, (1000, 3), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        diff = (folded(idx) - m(idx)).abs().max().item()
    print(cls.__name__, "folded vs BatchNorm eval logits, max |diff|:", diff)
    assert diff < 1e-4
    assert not any("gain" in n or "gamma" in n or "running" in n for n, _ in folded.named_parameters())
    if cls is MLPBN:
        assert isinstance(folded, MLP)  # exportable as a plain `mlp` checkpoint


def test_deep_net_layout_and_options():
    bn = make(MLPBNDeep)
    plain = make(MLPBNDeep, norm="none", n_layer=3, n_hidden=40)
    print("mlp-bn-deep parameters:", bn.num_params(), "plain 3x40:", plain.num_params())
    assert bn.num_params() == 27 * 10 + 30 * 100 + 4 * 100 * 100 + 100 * 27 + 5 * 2 * 100 + 2 * 27
    assert plain.num_params() == 27 * 10 + (30 * 40 + 40) + 2 * (40 * 40 + 40) + (40 * 27 + 27)
    assert REGISTRY["mlp-bn"] is MLPBN and REGISTRY["mlp-bn-deep"] is MLPBNDeep


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--type", "mlp-bn", "--bn-momentum", "0"], "--bn-momentum"),
        (["--type", "mlp-bn-deep", "--norm", "layer"], "--norm must be batchnorm or none"),
    ],
)
def test_bad_model_options_are_one_line_errors(capsys, tmp_path, flags, message):
    code, out, err = run_cli(capsys, "train", "-o", tmp_path / "r", "--max-steps", "1", "-q", *flags)
    print(err)
    assert code == 1 and message in err and "Traceback" not in err


@pytest.fixture(scope="module")
def bn_run(tmp_path_factory, small_names):
    run_dir = tmp_path_factory.mktemp("runs") / "mlp-bn"
    assert (
        main(
            [
                "train",
                "--type",
                "mlp-bn",
                "-i",
                str(small_names),
                "-o",
                str(run_dir),
                "--max-steps",
                "3000",
                "--bn-momentum",
                "0.01",
                "--eval-interval",
                "1000",
                "-q",
            ]
        )
        == 0
    )
    return run_dir


@pytest.mark.slow
def test_trained_mlp_bn_samples_are_name_like(bn_run):
    report = runs.evaluate(bn_run)
    samples = [s for s, _ in runs.sample([bn_run], 300, 0, Sampling(1.0, None, None, ""), False)]
    lengths = [len(s) for s in samples]
    # a reference that knows nothing of the model: the data's own bigram statistics
    items, _ = read_items(bundled_names())
    data = Dataset.from_items(items)
    counts = torch.ones(27, 27)
    for w in items:
        ids = [0] + data.vocab.encode(w) + [0]
        for a, b in zip(ids, ids[1:]):
            counts[a, b] += 1
    logp = (counts / counts.sum(1, keepdim=True)).log()
    nll, n = 0.0, 0
    for s in samples:
        ids = [0] + data.vocab.encode(s) + [0]
        nll -= sum(logp[a, b].item() for a, b in zip(ids, ids[1:]))
        n += len(ids) - 1
    print(
        f"dev {report['dev']:.4f}; samples {samples[:8]}; mean length {sum(lengths) / len(lengths):.2f}; "
        f"bigram NLL of samples {nll / n:.3f} (uniform: {math.log(27):.3f}); distinct {len(set(samples))}"
    )
    assert report["dev"] < 2.35
    assert 4 <= sum(lengths) / len(lengths) <= 9
    assert nll / n < 2.75  # noise would score near ln 27 = 3.30
    assert len(set(samples)) > 200


def test_same_seed_same_weights(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert main(["train", "--type", "mlp-bn-deep", "-o", str(d), "--max-steps", "50", "--n-layer", "2", "-q"]) == 0
    ma, mb = RunStore.open(a).load_best().model, RunStore.open(b).load_best().model
    diffs = [(x - y).abs().max().item() for x, y in zip(ma.state_dict().values(), mb.state_dict().values())]
    print("max |diff| between two runs with the same seed:", max(diffs))
    assert max(diffs) == 0.0
