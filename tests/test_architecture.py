"""The architecture is a checked contract: every module lives in the subpackage of its layer,
every subpackage sits in one layer of pyproject.toml's import-linter contract (which
`lint-imports` in .ci/run checks), each subpackage lists its modules, and no function grows
past 60 lines of code."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _layers() -> list[set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [{m.strip() for m in layer.replace("|", ":").split(":")} for layer in contract["layers"]]


def _subpackages() -> set[str]:
    package = ROOT / "skinlab"
    return {f"skinlab.{p.name}" for p in package.iterdir() if (p / "__init__.py").exists()}


def _top_level() -> set[str]:
    """The package's own modules and its subpackages: what the layers name."""
    names = {f"skinlab.{p.stem}" for p in (ROOT / "skinlab").glob("*.py") if p.stem != "__init__"}
    return names | _subpackages()


def test_every_module_lives_in_a_subpackage_but_the_entry_points() -> None:
    flat = {p.stem for p in (ROOT / "skinlab").glob("*.py")}
    assert flat == {"__init__", "__main__", "cli"}
    assert len(_subpackages()) >= 8  # core, data, model, train, evaluate, predict, jobs, app


def test_every_subpackage_is_in_exactly_one_layer() -> None:
    layers = _layers()
    listed = [m for layer in layers for m in layer]
    assert len(listed) == len(set(listed)), "a subpackage is in two layers"
    assert set(listed) == _top_level()


def test_streamlit_is_forbidden_to_every_layer_below_the_app() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (forbidden,) = [c for c in config["contracts"] if c["type"] == "forbidden"]
    entry, app, *lower = _layers()
    assert app == {"skinlab.app"}
    assert set(forbidden["source_modules"]) == set().union(*lower)
    assert forbidden["forbidden_modules"] == ["streamlit"]


def test_every_module_is_listed_in_its_subpackages_docstring() -> None:
    import importlib
    import re

    import skinlab

    rooms = set(re.findall(r":mod:`(skinlab\.\w+)`", skinlab.__doc__ or ""))
    assert _subpackages() <= rooms, "skinlab/__init__.py maps every subpackage"
    for name in sorted(_subpackages() - {"skinlab.bench"}):
        package = importlib.import_module(name)
        listed = set(re.findall(rf":mod:`{re.escape(name)}\.(\w+)`", package.__doc__ or ""))
        modules = {p.stem for p in (ROOT / name.replace(".", "/")).glob("*.py")} - {"__init__"}
        assert listed == modules, f"{name}'s docstring lists its modules"


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


#: Lines a module of skinlab may have before it must say at its top why it is one module.
MAX_MODULE_LINES = 300


def test_a_module_over_300_lines_says_why_it_is_one_module() -> None:
    import ast

    unexplained = []
    for path in sorted((ROOT / "skinlab").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) <= MAX_MODULE_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if "Why one module: " not in docstring:
            unexplained.append(str(path.relative_to(ROOT)))
    assert not unexplained, f"split these, or say why each is one module: {unexplained}"


def test_every_streamlit_cache_is_declared_in_skinlab_app_caches() -> None:
    import re

    declared = re.compile(r"st\.cache_(data|resource)\(|@st\.cache_(data|resource)\b")
    elsewhere = [
        str(path.relative_to(ROOT))
        for path in sorted([*(ROOT / "skinlab").rglob("*.py"), *(ROOT / "pages").glob("*.py")])
        if path.name != "caches.py"
        and any(declared.search(line) for line in path.read_text(encoding="utf-8").splitlines())
    ]
    assert not elsewhere, f"declare these caches in skinlab/app/caches.py: {elsewhere}"
    assert declared.search((ROOT / "skinlab" / "app" / "caches.py").read_text(encoding="utf-8"))


def test_status_json_is_changed_only_through_the_run_state_machine() -> None:
    """One writer per file (issue 16): once a run exists, every write of its ``status.json``
    is a step of :func:`skinlab.core.lifecycle.change`, which checks it against the state
    machine; ``runs.new_run`` writes the first status of the run it creates."""
    import re

    call = re.compile(r"\bwrite_status\(")
    allowed = {"skinlab/core/lifecycle.py", "skinlab/core/runs.py"}
    writers = {
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "skinlab").rglob("*.py"))
        if call.search(path.read_text(encoding="utf-8"))
    }
    assert writers <= allowed, f"change a run's state with lifecycle.change: {writers - allowed}"
    runs_source = (ROOT / "skinlab" / "core" / "runs.py").read_text(encoding="utf-8")
    calls = [line.strip() for line in runs_source.splitlines() if call.search(line)]
    assert sorted(calls) == [
        "def write_status(paths: RunPaths, status: RunStatus) -> None:",
        'write_status(paths, RunStatus("queued", total_epochs=config.total_epochs))',
    ]


def test_every_cross_reference_in_a_docstring_names_something_that_exists() -> None:
    """``:func:`skinlab.x.y``` and the like point at a real module, function, class or field,
    so a move or a rename cannot leave a stale reference behind."""
    import dataclasses
    import importlib
    import re

    reference = re.compile(r":(?:func|class|mod|data|meth|attr|exc):`~?(skinlab(?:\.\w+)+)`")
    stale = []
    for path in sorted((ROOT / "skinlab").rglob("*.py")):
        for ref in sorted(set(reference.findall(path.read_text(encoding="utf-8")))):
            parts = ref.split(".")
            for cut in range(len(parts), 0, -1):  # the longest importable prefix
                try:
                    target: object = importlib.import_module(".".join(parts[:cut]))
                except ImportError:
                    continue
                break
            else:
                stale.append(f"{path.relative_to(ROOT)}: {ref}")
                continue
            for name in parts[cut:]:
                fields = (
                    {f.name for f in dataclasses.fields(target)}
                    if (isinstance(target, type) and dataclasses.is_dataclass(target))
                    else set()
                )
                if name in fields:
                    break
                if not hasattr(target, name):
                    stale.append(f"{path.relative_to(ROOT)}: {ref}")
                    break
                target = getattr(target, name)
    assert not stale, stale


def test_evaluation_rebuilds_a_runs_rows_without_importing_training():
    # The data preparation that scoring and the familiarity gate share with training lives in
    # skinlab/data/run_split.py, below both: evaluate never reaches up into train.training.
    offenders = [
        path.name
        for path in (ROOT / "skinlab" / "evaluate").glob("*.py")
        if "skinlab.train.training" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
