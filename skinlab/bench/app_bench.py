"""Benchmark section "app": what the Streamlit caches save, and the app's peak memory.

* Scan + audit: cold (caches cleared: :func:`~skinlab.discovery.discover` and
  :func:`~skinlab.audit.audit_dataset` run) vs cached (:func:`skinlab.ui.load_scan` again:
  only the fingerprint, one ``stat`` per file).
* The Explore page, run by ``AppTest`` on ``streamlit_app.py`` with the dataset given as
  ``?dataset=`` (as ``tests/test_explore_page.py`` does): cold (caches cleared, a fresh
  AppTest) vs a warm rerun of the same AppTest. AppTest recompiles every page script on every
  run, which a server does once per process; the headline figure shares one script cache
  across runs, as a server does, and the plain-AppTest rerun is reported beside it.
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

from skinlab.bench.core import BenchContext, Row, Section, repeat_seconds, timed
from skinlab.bench.workspace import environ
from skinlab.paths import PROJECT_ROOT

APP = PROJECT_ROOT / "streamlit_app.py"
PAGES = ("pages/train.py", "pages/predict.py", "pages/runs.py")
#: ``explore_cache_speedup`` the Explore page should reach.
TARGET = 20.0
#: Warm figures take this many times more repetitions: at ~10 ms each they are cheap, and
#: the most exposed to other work on the machine.
WARM_FACTOR = 4

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


def run(ctx: BenchContext) -> Section:
    import streamlit as st

    from skinlab import ui

    root = str(ctx.data_root)
    env = {
        "SKINLAB_SETTINGS_FILE": ctx.workdir / "settings.json",
        "SKINLAB_MODELS_DIR": ctx.workdir / "models",
        "SKINLAB_EXTRA_DIRS": root,
    }

    def clear() -> None:
        st.cache_data.clear()
        st.cache_resource.clear()

    def cold_scan() -> None:
        clear()
        ui.load_scan(root)

    with environ(**env):
        ctx.log("[bench] app: scan + audit, cold and cached")
        scan_cold = statistics.median(repeat_seconds(cold_scan, reps=ctx.reps))
        scan_warm = statistics.median(
            repeat_seconds(lambda: ui.load_scan(root), reps=ctx.reps * WARM_FACTOR)
        )
        ctx.log("[bench] app: Explore page through AppTest, cold and warm")
        with _server_like_script_cache():
            page_cold, page_warm = _page_times(root, ctx.reps, clear)
        _, plain_warm = _page_times(root, ctx.reps, clear, cold_reps=0)
        ctx.log("[bench] app: peak RSS of the four pages in a child process")
        child = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, str(APP), root, *PAGES],
            capture_output=True,
            text=True,
        )
    peak = re.search(r"VmHWM_kB: (\d+)", child.stdout)
    if child.returncode != 0 or "exceptions: []" not in child.stdout or not peak:
        raise RuntimeError(f"the pages failed in AppTest: {(child.stdout + child.stderr)[-500:]}")
    peak_mb = int(peak.group(1)) / 1024
    return Section(
        "App (Streamlit caches)",
        rows=[
            Row(
                "scan + audit",
                scan_warm * 1000,
                scan_cold * 1000,
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
                plain_warm * 1000,
                page_cold * 1000,
                "ms",
                note="warm rerun that also recompiles the page scripts (AppTest only)",
            ),
            Row("app peak RSS, four pages", peak_mb, unit="MB", note="one AppTest process"),
        ],
        ratios={"explore_cache_speedup": page_cold / page_warm},
        raw={
            "scan_cold_s": scan_cold,
            "scan_cached_s": scan_warm,
            "explore_cold_s": page_cold,
            "explore_warm_s": page_warm,
            "explore_warm_plain_apptest_s": plain_warm,
            "app_peak_rss_mb": peak_mb,
            "target_explore_cache_speedup": TARGET,
        },
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
    warm = statistics.median(repeat_seconds(at.run, reps=reps * WARM_FACTOR))
    return (statistics.median(colds[1:]) if len(colds) > 1 else None), warm


@contextmanager
def _server_like_script_cache() -> Iterator[None]:
    """Let every AppTest share one compiled-script cache, as a server process does."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test

    shared = ScriptCache()
    original = app_test.ScriptCache
    app_test.ScriptCache = lambda: shared
    try:
        yield
    finally:
        app_test.ScriptCache = original
