"""Benchmark section "app": what the Streamlit caches save, and the app's peak memory.

* Scan + audit: cold (caches cleared: :func:`~skinlab.data.discovery.discover` and
  :func:`~skinlab.data.audit.audit_dataset` run) vs cached (:func:`skinlab.app.ui.load_scan` again:
  only the fingerprint, one ``stat`` per file).
* The Explore page, run by ``AppTest`` on ``streamlit_app.py`` with the dataset given as
  ``?dataset=`` (as ``tests/test_explore_page.py`` does): cold (caches cleared, a fresh
  AppTest) vs a warm rerun of the same AppTest. AppTest recompiles every page script on every
  run, which a server does once per process; the headline figure shares one script cache
  across runs, as a server does, and the plain-AppTest rerun is reported beside it.
* The waits a new user feels: switching Explore tabs (each tab's first visit, when its
  caches fill, and a warm switch back to it), and the first page of a fresh process once the
  dataset exists (``python`` start, imports and the first script run, in a child process).
* Peak RSS of a process that runs the four pages once through AppTest.

Settings, runs and allowed folders point into the section's work folder, so the user's own
settings are never touched and no trained run is listed (the Predict page loads no model).
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

from skinlab.bench.core import BenchContext, Row, Section, median_seconds, timed
from skinlab.bench.workspace import environ
from skinlab.core.paths import PROJECT_ROOT

APP = PROJECT_ROOT / "streamlit_app.py"
PAGES = ("pages/train.py", "pages/predict.py", "pages/runs.py")
#: ``explore_cache_speedup`` the Explore page should reach.
TARGET = 20.0
#: Warm figures take this many times more repetitions: at ~10 ms each they are cheap, and
#: the most exposed to other work on the machine.
WARM_FACTOR = 4
#: Seconds a new user should wait at most (issue 12): for an Explore tab to show, and for
#: the first page of a fresh server once the dataset exists.
TAB_SWITCH_TARGET_S, FIRST_PAGE_TARGET_S = 1.0, 3.0

# Run in a child process so its peak memory is the app's alone. The child reads its own
# VmHWM: a child's ru_maxrss on Linux starts from its parent's resident size at fork.
_RSS_SCRIPT = """
import re, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=600)
at.query_params["dataset"] = sys.argv[2]
at.run()
for page in sys.argv[3:]:
    at.switch_page(page).run()
print("exceptions:", [e.value for e in at.exception])
with open("/proc/self/status") as status:
    print("VmHWM_kB:", re.search(r"VmHWM:\\s+(\\d+)", status.read()).group(1))
"""


# Also in a child process: a fresh interpreter, as a newly started server is. TensorFlow
# must not be among what the first page imports (it takes seconds).
_FIRST_PAGE_SCRIPT = """
import sys, time
start = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=600)
at.query_params["dataset"] = sys.argv[2]
at.run()
print("exceptions:", [e.value for e in at.exception])
print("first_page_s:", time.perf_counter() - start)
print("tensorflow:", "tensorflow" in sys.modules)
"""


def run(ctx: BenchContext) -> Section:
    import streamlit as st

    from skinlab.app import ui

    root = str(ctx.data_root)

    def clear() -> None:
        st.cache_data.clear()
        st.cache_resource.clear()

    def cold_scan() -> None:
        clear()
        ui.load_scan(root)

    with environ(**_environment(ctx)):
        ctx.log("[bench] app: scan + audit, cold and cached")
        scan_cold = median_seconds(cold_scan, reps=ctx.reps)
        scan_warm = median_seconds(lambda: ui.load_scan(root), reps=ctx.reps * WARM_FACTOR)
        ctx.log("[bench] app: Explore page through AppTest, cold and warm")
        with _server_like_script_cache():
            page_cold, page_warm = _page_times(root, ctx.reps, clear)
        assert page_cold is not None  # ctx.reps >= 1 cold runs were timed
        _, plain_warm = _page_times(root, ctx.reps, clear, cold_reps=0)
        ctx.log("[bench] app: Explore tab switches, and the first page of a fresh process")
        with _server_like_script_cache():
            tab_first, tab_warm = _tab_times(root, ctx.reps, clear)
        first_page, tensorflow = _first_page_seconds(root, ctx.reps)
        ctx.log("[bench] app: peak RSS of the four pages in a child process")
        child = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, str(APP), root, *PAGES],
            capture_output=True,
            text=True,
        )
    peak = re.search(r"VmHWM_kB: (\d+)", child.stdout)
    if child.returncode != 0 or "exceptions: []" not in child.stdout or not peak:
        raise RuntimeError(f"the pages failed in AppTest: {(child.stdout + child.stderr)[-500:]}")
    raw = {
        "scan_cold_s": scan_cold,
        "scan_cached_s": scan_warm,
        "explore_cold_s": page_cold,
        "explore_warm_s": page_warm,
        "explore_warm_plain_apptest_s": plain_warm,
        "explore_tab_first_visit_s": tab_first,
        "explore_tab_switch_s": tab_warm,
        "first_page_s": first_page,
        "first_page_imports_tensorflow": tensorflow,
        "app_peak_rss_mb": int(peak.group(1)) / 1024,
        "target_explore_cache_speedup": TARGET,
        "target_tab_switch_s": TAB_SWITCH_TARGET_S,
        "target_first_page_s": FIRST_PAGE_TARGET_S,
    }
    return _section(raw)


def _environment(ctx: BenchContext) -> dict[str, str | Path]:
    """Settings, runs and allowed folders in the section's work folder; no standby."""
    return {
        "SKINLAB_SETTINGS_FILE": ctx.workdir / "settings.json",
        "SKINLAB_MODELS_DIR": ctx.workdir / "models",
        "SKINLAB_EXTRA_DIRS": str(ctx.data_root),
        # The Train page readies a warm standby (skinlab.jobs.standby) when drawn: a trainer
        # importing TensorFlow beside these timings, outliving the bench. Not here.
        "SKINLAB_STANDBY": "0",
    }


def _section(raw: dict) -> Section:
    """The section's table from its raw figures."""
    page_cold, page_warm = raw["explore_cold_s"], raw["explore_warm_s"]
    tab_first, tab_warm = raw["explore_tab_first_visit_s"], raw["explore_tab_switch_s"]
    return Section(
        "App (Streamlit caches)",
        rows=[
            Row(
                "scan + audit",
                raw["scan_cached_s"] * 1000,
                raw["scan_cold_s"] * 1000,
                "ms",
                note="cached (fingerprint only) vs cold (discover + audit)",
            ),
            Row(
                "Explore page run",
                page_warm * 1000,
                page_cold * 1000,
                "ms",
                note="warm rerun vs cold (caches cleared, fresh AppTest); one script cache "
                f"as a server keeps; target >= {TARGET:g}x",
            ),
            Row(
                "Explore page run, plain AppTest",
                raw["explore_warm_plain_apptest_s"] * 1000,
                page_cold * 1000,
                "ms",
                note="warm rerun that also recompiles the page scripts (AppTest only)",
            ),
            Row(
                "explore tab switch",
                max(tab_warm.values()) * 1000,
                max(tab_first.values()) * 1000,
                "ms",
                note="slowest warm switch vs slowest first visit (caches filling); target "
                f"<= {TAB_SWITCH_TARGET_S * 1000:g} ms",
            ),
            Row(
                "first page (demo exists)",
                raw["first_page_s"],
                unit="s",
                note="fresh process: imports + first Explore run; "
                f"target <= {FIRST_PAGE_TARGET_S:g} s; TensorFlow "
                + (
                    "imported (should not be)"
                    if raw["first_page_imports_tensorflow"]
                    else "not imported"
                ),
            ),
            Row(
                "app peak RSS, four pages",
                raw["app_peak_rss_mb"],
                unit="MB",
                note="one AppTest process",
            ),
        ],
        ratios={"explore_cache_speedup": page_cold / page_warm},
        raw=raw,
    )


def _page_times(
    root: str, reps: int, clear: Callable[[], None], *, cold_reps: int | None = None
) -> tuple[float | None, float]:
    """Median seconds of a cold Explore run and of a warm rerun (the first cold run, which
    also imports the page's libraries, is a warm-up)."""
    from streamlit.testing.v1 import AppTest

    def fresh() -> AppTest:
        clear()
        at = AppTest.from_file(str(APP), default_timeout=600)
        at.query_params["dataset"] = root
        return at

    colds = []
    for _ in range(1 + (reps if cold_reps is None else cold_reps)):
        at = fresh()
        seconds, _ = timed(at.run)
        if at.exception:
            raise RuntimeError(f"the Explore page failed: {at.exception[0].value}")
        colds.append(seconds)
    warm = median_seconds(at.run, reps=reps * WARM_FACTOR)
    return (statistics.median(colds[1:]) if len(colds) > 1 else None), warm


def _tab_times(
    root: str, reps: int, clear: Callable[[], None]
) -> tuple[dict[str, float], dict[str, float]]:
    """Per Explore tab: seconds of its first visit (caches cleared before the page opens,
    so the first tab's is the page's cold run), and the median seconds of switching to it
    from another tab once visited."""
    from streamlit.testing.v1 import AppTest

    clear()
    at = AppTest.from_file(str(APP), default_timeout=600)
    at.query_params["dataset"] = root
    opened, _ = timed(at.run)
    labels = [tab.label for tab in at.tabs]

    def show(label: str) -> float:
        at.session_state["explore_tab"] = label
        seconds, _ = timed(at.run)
        if at.exception:
            raise RuntimeError(f"the Explore tab {label!r} failed: {at.exception[0].value}")
        return seconds

    first = {labels[0]: opened} | {label: show(label) for label in labels[1:]}
    warm: dict[str, list[float]] = {label: [] for label in labels}
    for _ in range(reps):
        for label in labels:
            warm[label].append(show(label))
    return first, {label: statistics.median(times) for label, times in warm.items()}


def _first_page_seconds(root: str, reps: int) -> tuple[float, bool]:
    """Median seconds from a fresh interpreter to the first page drawn, and whether that
    imported TensorFlow."""
    times, tensorflow = [], False
    for _ in range(reps):
        child = subprocess.run(
            [sys.executable, "-c", _FIRST_PAGE_SCRIPT, str(APP), root],
            capture_output=True,
            text=True,
        )
        found = re.search(r"first_page_s: ([\d.]+)", child.stdout)
        if child.returncode != 0 or "exceptions: []" not in child.stdout or not found:
            raise RuntimeError(f"the first page failed: {(child.stdout + child.stderr)[-500:]}")
        times.append(float(found.group(1)))
        tensorflow |= "tensorflow: True" in child.stdout
    return statistics.median(times), tensorflow


@contextmanager
def _server_like_script_cache() -> Iterator[None]:
    """Let every AppTest share one compiled-script cache, as a server process does."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test

    shared = ScriptCache()
    with patch.object(app_test, "ScriptCache", lambda: shared):
        yield
