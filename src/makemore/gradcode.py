"""Part 4, the other side: the gradient code PyTorch derives for one training step.

`makemore gradcode --type TYPE -o DIR` writes, for the loss of one batch:

    0-eager-grad_fn.txt          the autograd graph eager PyTorch records (the loss's grad_fn chain)
    1-aot-joint-graph.py         AOTAutograd's joint forward + backward FX graph (aten ops)
    2-aot-forward-graph.py       ... split by the partitioner into the forward it will run
    3-aot-backward-graph.py      ... and the backward, which reads what the forward saved
    4-inductor-forward.py        TorchInductor's generated module for the forward (Python wrapper + C++)
    5-inductor-forward.cpp       just its C++ kernels
    6-inductor-backward.py       the same for the backward
    7-inductor-backward.cpp
    README.md                    where tanh's backward (1 - t^2) * grad is in each stage, what each kernel fused

Every file is written once everything is computed, through the one atomic, no-follow writer
(files.py): a link planted at one of these names is replaced, its target left alone. Files of these
names already in DIR are replaced only with --force.

Stages 1-3 come from a first compile whose "compilers" only record the graphs (fast); stages
4-7 from a second, real compile with the inductor backend, which needs a C++ compiler.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import torch

from .errors import MakemoreError
from .files import atomic_write_bytes, check_replaceable

FILES = {
    "eager": "0-eager-grad_fn.txt",
    "joint": "1-aot-joint-graph.py",
    "forward": "2-aot-forward-graph.py",
    "backward": "3-aot-backward-graph.py",
    "inductor_forward": "4-inductor-forward.py",
    "inductor_forward_cpp": "5-inductor-forward.cpp",
    "inductor_backward": "6-inductor-backward.py",
    "inductor_backward_cpp": "7-inductor-backward.cpp",
}
README = "README.md"


def check_out(out: Path, force: bool = False) -> None:
    """Refuse, before any work, an -o that is not a folder, or names it would replace without --force."""
    if out.exists() and not out.is_dir():
        raise MakemoreError(f"-o {out} is not a directory")
    targets = [out / name for name in (*FILES.values(), README)]
    for path in targets:
        check_replaceable(path)  # a folder, device or FIFO of that name: refused even with --force
    taken = [path.name for path in targets if os.path.lexists(path)]
    if taken and not force:
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise MakemoreError(f"{out} already holds {taken[0]}{more}; --force replaces them")


def find_compiler() -> str:
    """The C++ compiler inductor will call, or a clear error when there is none."""
    from torch._inductor import config

    candidates = config.cpp.cxx if isinstance(config.cpp.cxx, (tuple, list)) else (config.cpp.cxx,)
    for name in (
        [os.environ.get("CXX")] + [c for c in candidates if c] + ["g++", "c++", "clang++"]
    ):  # inductor tries CXX first
        if not name:
            continue
        path = shutil.which(name)
        if path:
            return path
    raise MakemoreError(
        "gradcode needs a C++ compiler for TorchInductor's CPU kernels and found none (install g++, or set CXX to one)"
    )


def _batch(model_type: str, batch_size: int, seed: int):
    from .data import Dataset, bundled_names
    from .models import REGISTRY

    cls = REGISTRY[model_type]
    data = Dataset.read(bundled_names())
    config = cls.config_for(data)  # as `makemore train` builds it
    torch.manual_seed(seed)
    model = cls(config).train()
    if model.can("fit"):
        raise MakemoreError(
            f"--type {model_type} has no parameters (it is trained by counting): there is no gradient code"
        )
    examples = model.examples(data.split("train"))
    ix = torch.randint(0, len(examples), (batch_size,), generator=torch.Generator().manual_seed(seed))
    return model, *examples[ix]


# --- stage 0: the eager autograd graph ----------------------------------------------------------
def grad_fn_dump(loss: torch.Tensor, model) -> str:
    """The loss's grad_fn graph, depth first; each node once, leaves named by their parameter."""
    names = {id(p): n for n, p in model.named_parameters()}
    lines, seen = [], {}

    def walk(fn, depth):
        if fn is None:
            return
        pad = "  " * depth
        if fn in seen:
            lines.append(f"{pad}{type(fn).__name__} (node #{seen[fn]}, shown above)")
            return
        seen[fn] = len(seen)
        label = f"{pad}{type(fn).__name__} #{seen[fn]}"
        if type(fn).__name__ == "AccumulateGrad":  # the end of the chain: a parameter's .grad
            label += f" -> {names.get(id(fn.variable), '?')}.grad {tuple(fn.variable.shape)}"
        saved = [
            f"{a[len('_saved_') :]} {tuple(getattr(fn, a).shape)}"
            for a in dir(fn)
            if a.startswith("_saved_") and isinstance(getattr(fn, a, None), torch.Tensor)
        ]
        if saved:
            label += "   saves: " + ", ".join(saved)
        lines.append(label)
        for child, _ in fn.next_functions:
            walk(child, depth + 1)

    walk(loss.grad_fn, 0)
    return "\n".join(lines) + "\n"


# --- stages 1-3: AOTAutograd's graphs ------------------------------------------------------------
def aot_graphs(model, X, Y) -> dict:
    """Joint, forward and backward FX graphs of the training loss, as readable Python."""
    from functorch.compile import make_boxed_func, min_cut_rematerialization_partition
    from torch._dynamo.backends.common import aot_autograd

    from .train import batch_loss

    graphs = {}

    def recorder(stage):
        def compiler(gm, example_inputs):
            graphs[stage] = gm.print_readable(print_output=False)
            return make_boxed_func(gm.forward)  # run the graph as it is: we only wanted to read it

        return compiler

    def partition(joint, joint_inputs, **kwargs):
        graphs["joint"] = joint.print_readable(print_output=False)
        return min_cut_rematerialization_partition(joint, joint_inputs, **kwargs)  # inductor's partitioner

    backend = aot_autograd(fw_compiler=recorder("forward"), bw_compiler=recorder("backward"), partition_fn=partition)
    torch._dynamo.reset()
    loss = torch.compile(lambda X, Y: batch_loss(model, X, Y), backend=backend, fullgraph=True)(X, Y)
    loss.backward()  # the backward graph is compiled when it is first needed
    model.zero_grad(set_to_none=True)
    return graphs


# --- stages 4-7: TorchInductor's code -------------------------------------------------------------
def inductor_code(model, X, Y) -> list[str]:
    """The generated modules (forward, then backward) of a real inductor compile."""
    from torch._inductor import config
    from torch._inductor.utils import run_and_get_code

    from .train import batch_loss

    def step():
        loss = torch.compile(lambda X, Y: batch_loss(model, X, Y), backend="inductor", fullgraph=True)(X, Y)
        loss.backward()

    # no caches: a cache hit would skip code generation, and there would be nothing to read
    with config.patch(fx_graph_cache=False, force_disable_caches=True):
        _, codes = run_and_get_code(step)
    model.zero_grad(set_to_none=True)
    return codes


KERNEL = re.compile(r"^(cpp_fused_\w+) = async_compile\.cpp_pybinding\(\[[^\]]*\], r?'''\n?(.*?)'''\)", re.S | re.M)


def cpp_kernels(code: str) -> str:
    """The C++ sources embedded in an inductor module, each under a comment with its name."""
    return "\n".join(f"// ===== {name}\n{source.strip()}\n" for name, source in KERNEL.findall(code))


def kernel_table(code: str) -> list[tuple[str, int]]:
    """(kernel name, line of the wrapper's call to it); inductor names a fused kernel after the aten ops in it."""
    table = []
    for name, _ in KERNEL.findall(code):
        calls = [i for i, line in enumerate(code.splitlines(), 1) if line.lstrip().startswith(name + "(")]
        table.append((name, calls[0] if calls else 0))
    return table


def tanh_backward_in_cpp(cpp: str) -> list[int]:
    """Lines of `tmpB = tmpA * tmpA` (t^2, the start of (1 - t^2) * grad) in kernels named after tanh_backward."""
    lines, inside = [], False
    for i, line in enumerate(cpp.splitlines(), 1):
        if line.startswith("// ===== "):
            inside = "tanh_backward" in line
        elif inside and re.search(r"auto (tmp\d+) = (tmp\d+) \* \2;", line):
            lines.append(i)
    return lines


def _lines_with(text: str, needle: str) -> list[int]:
    return [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]


def readme(model_type: str, written: dict, texts: dict, seconds: float) -> str:
    """What to look at in each file: tanh's backward at every stage, and the kernels' fusions."""
    out = [
        f"# Gradient code for one training step of `{model_type}`",
        "",
        f"Written by `makemore gradcode --type {model_type}` in {seconds:.0f} s "
        "(files in the order PyTorch produces them).",
        "",
        "| file | what it is |",
        "|---|---|",
    ]
    what = {
        "eager": "eager autograd graph: the `grad_fn` chain of the loss (what `loss.backward()` walks)",
        "joint": "AOTAutograd's joint forward+backward graph, traced to aten ops",
        "forward": "the forward half chosen by the min-cut partitioner (returns the loss and what backward saves)",
        "backward": "the backward half: tangents and saved tensors in, parameter gradients out",
        "inductor_forward": "TorchInductor's Python wrapper and C++ kernels for the forward",
        "inductor_forward_cpp": "only the forward's C++ kernels",
        "inductor_backward": "TorchInductor's wrapper and C++ kernels for the backward",
        "inductor_backward_cpp": "only the backward's C++ kernels",
    }
    out += [f"| `{written[k]}` | {what[k]} |" for k in written]
    out += ["", "## tanh's backward, `(1 - t^2) * grad`, at each stage", ""]
    probes = {
        "eager": "TanhBackward",
        "joint": "tanh_backward",
        "backward": "tanh_backward",
        "inductor_backward": "tanh_backward",
    }
    for stage, needle in probes.items():
        if stage in written:
            lines = _lines_with(texts[stage], needle)
            where = ", ".join(map(str, lines[:6])) if lines else "not present (this model has no tanh)"
            out.append(f"- `{written[stage]}`: `{needle}` at line(s) {where}")
    if "inductor_backward_cpp" in written:
        lines = tanh_backward_in_cpp(texts["inductor_backward_cpp"])
        where = ", ".join(map(str, lines[:6])) if lines else "not found"
        out.append(
            f"- `{written['inductor_backward_cpp']}`: `t * t`, then `1.0 - `, then `* grad`, from line(s) {where}"
        )
    out += [
        "",
        "In the eager graph it is one node, `TanhBackward0`, which saved the tanh *output* t. In the joint",
        "and backward graphs it is one aten op, `aten.tanh_backward(grad, t)`, again taking the output (the",
        "partitioner saves `tanh` from the forward for it). Inductor decomposes it to `grad * (1 - t * t)`",
        "and fuses that arithmetic into a loop with its neighbours, so in C++ it is a few `tmpN` lines",
        "(a multiply of t by itself, a subtraction from 1, a multiply by the incoming gradient) inside the",
        "kernel whose name (below) includes `tanh_backward`.",
        "",
    ]
    for stage in ("inductor_forward", "inductor_backward"):
        if stage in texts:
            out += [f"## C++ kernels in `{written[stage]}` (each name lists the aten ops fused into it)", ""]
            out += [f"- `{name}`, called at line {line}" for name, line in kernel_table(texts[stage])] or [
                "- (no C++ kernels: only library calls)"
            ]
            out.append("")
    out += [
        "Matrix products are not C++ kernels: the wrappers call `extern_kernels.mm`/`addmm` (the BLAS library);",
        "inductor writes loops for everything elementwise and for reductions, fusing chains of them into one pass.",
    ]
    return "\n".join(out) + "\n"


def write_gradcode(
    model_type: str, out_dir: str | Path, batch_size: int = 32, seed: int = 42, force: bool = False
) -> dict:
    """Write the files described in the module docstring into out_dir; returns {stage: path}."""
    from .train import batch_loss

    compiler = find_compiler()
    if batch_size < 2:
        raise MakemoreError("--batch-size must be >= 2 (BatchNorm's variance needs two examples)")
    out = Path(out_dir)
    check_out(out, force)
    t0 = time.perf_counter()
    model, X, Y = _batch(model_type, batch_size, seed)
    texts = {"eager": grad_fn_dump(batch_loss(model, X, Y), model)}
    try:
        texts.update(aot_graphs(model, X, Y))
        codes = inductor_code(model, X, Y)
    except Exception as e:  # a broken toolchain surfaces deep inside inductor: say what and where, in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MakemoreError(f"torch.compile failed with the C++ compiler {compiler}: {first}") from None
    if len(codes) >= 2:
        texts["inductor_forward"], texts["inductor_backward"] = codes[0], codes[-1]
        texts["inductor_forward_cpp"], texts["inductor_backward_cpp"] = cpp_kernels(codes[0]), cpp_kernels(codes[-1])
    written = {k: FILES[k] for k in FILES if k in texts}
    seconds = time.perf_counter() - t0
    guide = readme(model_type, written, texts, seconds)
    try:  # a folder the user named: made as asked, through any link in its path
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MakemoreError(f"cannot create {out}: {e.strerror}") from None
    for key, name in written.items():
        atomic_write_bytes(out / name, texts[key].encode("utf-8"))
    atomic_write_bytes(out / README, guide.encode("utf-8"))
    return {**{k: out / v for k, v in written.items()}, "readme": out / README, "seconds": seconds}
