"""Helpers for the real-browser tests (kept out of conftest so tests can import them)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"


def start_app(env: dict[str, str], log: IO[bytes]) -> tuple[subprocess.Popen, str]:
    """Start ``streamlit run streamlit_app.py`` on a free loopback port, in its own process
    group, with ``env`` added to this process's environment; returns the process and its base
    URL once it answers its health check.

    Raises:
        RuntimeError: the server was not healthy within 90 s.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
            "--server.port", str(port), "--server.address", "127.0.0.1",
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
        ],
        cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not become healthy in 90 s")


def shot(page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot as a test artefact (also used for the README)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def wait_idle(page, timeout: float = 90.0) -> None:
    """Wait until the app has rendered and Streamlit's "running" indicator has been gone
    for over a second (a rerun can start right after another ends)."""
    import time

    page.wait_for_selector("[data-testid='stApp']", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        running = page.locator("[data-testid='stStatusWidgetRunningIcon']").count()
        quiet = 0 if running else quiet + 1
        if quiet >= 4:
            return
        time.sleep(0.3)
    raise AssertionError("the app kept running for too long")


def open_page(page, server: str, title: str) -> None:
    """Open the app at its root (so the router runs) and click a page in the navigation."""
    page.goto(server)
    wait_idle(page)
    page.locator("[data-testid='stSidebarNav']").get_by_text(title, exact=True).click()
    wait_idle(page)


def stop_button(page):
    """The Train page's Stop button. Not Streamlit's own toolbar "Stop", which shows beside it
    whenever a rerun of the page is still running (a loaded machine makes that common)."""
    return page.get_by_test_id("stMainBlockContainer").get_by_role(
        "button", name="Stop", exact=True
    )


def uploader(page, timeout: float = 300.0):
    """The page's first file uploader, once it is there. On the Predict page it is drawn after
    the model has loaded, which on a loaded machine (a cold TensorFlow import in the server)
    can take longer than Playwright's default wait."""
    found = page.locator("[data-testid='stFileUploader'] input[type=file]").first
    found.wait_for(state="attached", timeout=timeout * 1000)
    return found
