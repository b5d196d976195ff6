"""Helpers for the real-browser tests (kept out of conftest so tests can import them)."""

from __future__ import annotations

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


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
