"""Part 4: `makemore gradcode` writes the graphs and C++ kernels PyTorch derives for mlp-bn.

One real compile (about 20 s on 2 cores) shared by every assertion.
"""

import pytest

from makemore import gradcode
from makemore.errors import MakemoreError
from makemore.models.mlp_bn import MLPBN

from conftest import run_cli


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("gradcode")
    result = gradcode.write_gradcode("mlp-bn", out, batch_size=32, seed=0)
    print(f"gradcode mlp-bn: {result['seconds']:.1f}s")
    return result


@pytest.mark.slow
def test_every_stage_is_written(written):
    for key, name in gradcode.FILES.items():
        assert written[key].name == name and written[key].stat().st_size > 0, name


@pytest.mark.slow
def test_backward_graph_holds_tanh_backward(written):
    backward = written["backward"].read_text()
    joint = written["joint"].read_text()
    forward = written["forward"].read_text()
    assert "aten.tanh_backward" in backward and "aten.tanh_backward" in joint
    assert "aten.tanh.default" in forward and "tanh_backward" not in forward  # the split put it on the right side


@pytest.mark.slow
def test_cpp_kernels_compute_one_minus_t_squared(written):
    cpp = written["inductor_backward_cpp"].read_text()
    assert 'extern "C"' in cpp and "tanh_backward" in cpp
    lines = gradcode.tanh_backward_in_cpp(cpp)
    text = cpp.splitlines()
    print("t*t at lines", lines[:4], text[lines[0] - 1].strip() if lines else None)
    assert lines and any("1.0" in line for line in text[lines[0] : lines[0] + 3])
    assert 'extern "C"' in written["inductor_forward_cpp"].read_text()


@pytest.mark.slow
def test_eager_dump_reaches_every_parameter(written):
    dump = written["eager"].read_text()
    assert "TanhBackward0" in dump and "NllLossBackward0" in dump
    for name, p in MLPBN(MLPBN.Config()).named_parameters():
        assert f"-> {name}.grad {tuple(p.shape)}" in dump, name


@pytest.mark.slow
def test_readme_points_at_every_file_and_the_tanh_backward(written):
    readme = written["readme"].read_text()
    assert all(name in readme for name in gradcode.FILES.values())
    assert readme.count("tanh_backward") >= 4 and "cpp_fused_" in readme


def test_no_compiler_is_one_clear_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(gradcode.shutil, "which", lambda name: None)
    with pytest.raises(MakemoreError, match="C\\+\\+ compiler"):
        gradcode.find_compiler()
    code, _, err = run_cli(capsys, "gradcode", "--type", "mlp-bn", "-o", tmp_path / "g")
    assert code == 1 and "needs a C++ compiler" in err and "Traceback" not in err
    assert not (tmp_path / "g").exists()  # failed before writing anything


def test_a_model_without_parameters_is_refused(capsys, tmp_path):
    code, _, err = run_cli(capsys, "gradcode", "--type", "bigram", "-o", tmp_path / "g")
    assert code == 1 and "no parameters" in err
