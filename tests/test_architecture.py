"""The layer contract of docs/architecture.md is complete: every skinlab module sits in one
layer of pyproject.toml's import-linter contract (which `lint-imports` in .ci/run checks),
so a new module cannot slip past it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _layers() -> list[set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [{m.strip() for m in layer.replace("|", ":").split(":")} for layer in contract["layers"]]


def _modules() -> set[str]:
    package = ROOT / "skinlab"
    names = {f"skinlab.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    return names | {f"skinlab.{p.name}" for p in package.iterdir() if (p / "__init__.py").exists()}


def test_every_module_is_in_exactly_one_layer() -> None:
    layers = _layers()
    listed = [m for layer in layers for m in layer]
    assert len(listed) == len(set(listed)), "a module is in two layers"
    assert set(listed) == _modules()


def test_streamlit_is_forbidden_to_every_module_outside_the_app_and_entry_layers() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (forbidden,) = [c for c in config["contracts"] if c["type"] == "forbidden"]
    entry, app, *lower = _layers()
    assert set(forbidden["source_modules"]) == set().union(*lower)
    assert forbidden["forbidden_modules"] == ["streamlit"]


def test_the_package_docstring_maps_every_module() -> None:
    import re

    import skinlab

    mapped = {f"skinlab.{name}" for name in re.findall(r"skinlab\.(\w+)", skinlab.__doc__ or "")}
    assert _modules() - {"skinlab.__main__"} <= mapped


#: Lines of code (its docstring aside) a function of skinlab may have: longer ones are split
#: into named steps (issue 16). Declarative tables are module-level data, not functions.
MAX_FUNCTION_LINES = 60


def _function_lengths() -> dict[str, int]:
    import ast

    lengths = {}
    for path in sorted((ROOT / "skinlab").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            docstring = node.body[0]
            if (
                isinstance(docstring, ast.Expr)
                and isinstance(docstring.value, ast.Constant)
                and isinstance(docstring.value.value, str)
            ):
                assert docstring.end_lineno is not None
                lines -= docstring.end_lineno - docstring.lineno + 1
            lengths[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    return lengths


def test_no_function_is_longer_than_60_lines_of_code() -> None:
    lengths = _function_lengths()
    assert len(lengths) > 500  # the walk found the package
    too_long = {name: n for name, n in lengths.items() if n > MAX_FUNCTION_LINES}
    assert not too_long, f"split these into named steps: {too_long}"
