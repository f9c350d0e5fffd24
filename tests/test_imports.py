"""The package's structure: no import cycles (counting imports inside functions), backprop.py
imports nothing from makemore, and nothing outside models/ and the data layer asks a model
what it can do with hasattr / getattr or branches on its kind."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import makemore

PACKAGE = Path(makemore.__file__).parent


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every makemore module a file imports, at the top or inside a function."""
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + (node.module.split(".") if node.module else []))
            if not target.startswith("makemore"):
                continue
            for alias in node.names:  # `from . import checkpoint` imports a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("makemore")}
    return found - {_module(path)}


MODULES = {_module(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: _imports(path) & MODULES.keys() for name, path in MODULES.items()}


def test_no_import_cycles():
    def cycle_from(start):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in GRAPH[node]:
                if nxt == start:
                    return path + [start]
                if nxt not in path:
                    stack.append((nxt, path + [nxt]))
        return None

    # a package imports its submodules' parent; `makemore.models` <- `makemore.models.base` is not a cycle of files
    cycles = [c for c in map(cycle_from, GRAPH) if c and not all(m.startswith("makemore.models") for m in c)]
    assert not cycles, cycles


ALONE = """
import importlib, sys
import torch  # loaded once; the package is forgotten before each import
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "makemore" or m.startswith("makemore.")]:
        del sys.modules[loaded]
    importlib.import_module(name)
"""


@pytest.mark.slow
def test_every_module_imports_alone():
    """Each module imported first, into an interpreter where no other makemore module is loaded."""
    modules = sorted(m for m in MODULES if m != "makemore.__main__")  # __main__ runs the CLI
    subprocess.run([sys.executable, "-c", ALONE, *modules], check=True)


def test_backprop_is_pure_tensor_math():
    assert GRAPH["makemore.backprop"] == set()


def test_no_model_ability_checks_outside_the_models_and_the_data_layer():
    kind = r"isinstance\([^)]*(Window|Sequence)Model"  # which kind a model is: the contract's to know
    pattern = re.compile(r"hasattr\(|getattr\([^)]*model|\.context\b|block_size|" + kind)
    for name, path in MODULES.items():
        if name.startswith("makemore.models") or name == "makemore.data":
            continue
        hits = [line for line in path.read_text().splitlines() if pattern.search(line.split("#")[0])]
        assert not hits, (name, hits)
