"""``python -m skinlab bench``: skinlab's speed beside the seed notebook's way, on this machine.

Each section (:data:`SECTIONS`) is a module with ``run(ctx) -> Section`` (see
:mod:`skinlab.bench.core`). :func:`run_bench` runs the chosen ones, each in its own
temporary folder, and returns one JSON-able object; :mod:`skinlab.bench.report` prints it.
Sections are imported only when selected, so one that is missing or broken fails alone.

Example::

    result = run_bench(None, quick=True, only=["scaling"], log=print)
    result["ratios"]["audit_scaling_exponent"]
"""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from skinlab.bench.core import BenchContext, Section

#: Section name -> module, in the order they run and are reported.
SECTIONS: dict[str, str] = {
    "pipeline": "skinlab.bench.pipeline_bench",
    "training": "skinlab.bench.training_bench",
    "start": "skinlab.bench.start_bench",
    "throughput": "skinlab.bench.throughput_bench",
    "recipe": "skinlab.bench.recipe_bench",
    "frozen": "skinlab.bench.frozen_bench",
    "predict": "skinlab.bench.predict_bench",
    "app": "skinlab.bench.app_bench",
    "scaling": "skinlab.bench.scaling_bench",
    "load": "skinlab.bench.load_bench",
}

#: CPU flags worth knowing when reading CPU timings (bf16/AMX change what oneDNN can do).
_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def run_bench(
    data_root: Path | None,
    *,
    quick: bool = False,
    only: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark sections and return one JSON-able result.

    Args:
        data_root: a dataset folder; ``None`` uses the synthetic demo (generated if needed).
        quick: the reduced version (fewer images, epochs and repetitions).
        only: section names to run (default: all of :data:`SECTIONS`), run in registry order.
        log: receives one progress line at a time.

    Returns:
        ``{"machine", "data", "quick", "sections", "ratios", "seconds"}``; each section is
        ``{"name", "title", "rows", "ratios", "raw", "error", "seconds"}`` and a section that
        raised has its ``error`` set (the others still run).

    Raises:
        ValueError: ``only`` names an unknown section.
    """
    unknown = sorted(set(only or ()) - SECTIONS.keys())
    if unknown:
        raise ValueError(f"Unknown benchmark sections {unknown}; choose from {list(SECTIONS)}.")
    chosen = [name for name in SECTIONS if only is None or name in only]
    if data_root is None:
        from skinlab.app.catalog import default_dataset_root

        data_root = default_dataset_root()
    data_root = Path(data_root).resolve()
    start = time.perf_counter()
    sections = []
    for name in chosen:
        log(f"[bench] {name}: running…")
        sections.append(_run_section(name, data_root, quick, log))
        entry = sections[-1]
        outcome = f"failed: {entry['error']}" if entry["error"] else "done"
        log(f"[bench] {name}: {outcome} ({entry['seconds']:.1f} s)")
    ratios: dict[str, float] = {}
    for entry in sections:
        ratios.update(entry["ratios"])
    return {
        "machine": machine_info(),
        "data": data_info(data_root),
        "quick": quick,
        "sections": sections,
        "ratios": ratios,
        "seconds": time.perf_counter() - start,
    }


def _run_section(name: str, data_root: Path, quick: bool, log: Callable[[str], None]) -> dict:
    start = time.perf_counter()
    section, error = Section(name), None
    with tempfile.TemporaryDirectory(prefix=f"skinlab-bench-{name}-") as workdir:
        ctx = BenchContext(data_root, Path(workdir), quick=quick, reps=3 if quick else 5, log=log)
        try:
            # Keras progress bars and library prints would corrupt `--json` on stdout.
            with contextlib.redirect_stdout(sys.stderr):
                section = importlib.import_module(SECTIONS[name]).run(ctx)
        except Exception as exc:  # one broken section must not cost the others
            error = f"{type(exc).__name__}: {exc}"
    return {
        "name": name,
        "title": section.title,
        "rows": [row.to_dict() for row in section.rows],
        "ratios": dict(section.ratios),
        "raw": section.raw,
        "error": error,
        "seconds": time.perf_counter() - start,
    }


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, notable CPU flags and library versions (no TensorFlow import)."""
    cpuinfo, meminfo = _read("/proc/cpuinfo"), _read("/proc/meminfo")
    flags = (_field(cpuinfo, "flags") or "").split()
    mem_kb = int((_field(meminfo, "MemTotal") or "0 kB").split()[0])
    cores = (
        os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    )
    return {
        "cpu": _field(cpuinfo, "model name") or platform.processor() or platform.machine(),
        "cores": len(cores),
        "ram_gb": round(mem_kb / 2**20, 1),
        "flags": [f for f in _FLAGS if f in flags],
        "tensorflow": _version("tensorflow"),
        "keras": _version("keras"),
        "python": platform.python_version(),
    }


def data_info(root: Path) -> dict[str, Any]:
    """The dataset benchmarked: its root, how many image files it holds, and whether it is the demo."""
    from skinlab.data.demo import is_demo_dataset
    from skinlab.data.images import IMAGE_SUFFIXES

    images = sum(
        1
        for _, _, files in os.walk(root)
        for name in files
        if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
    )
    return {"root": str(root), "images": images, "is_demo": is_demo_dataset(root)}


def _field(text: str, key: str) -> str | None:
    """The value of the first ``key : value`` line of a ``/proc`` file."""
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon and name.strip() == key:
            return value.strip()
    return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
