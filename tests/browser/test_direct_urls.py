"""A page's own address works as the first visit of a fresh server: a bookmark, a reload, or a
tab that reconnects after the app restarted. Streamlit runs a file of a ``pages/`` folder by
itself (its first multipage design) until some visit runs the router once; skinlab's pages
hand such a visit back to the router, so it gets the navigation and the dataset sidebar."""

from __future__ import annotations

import os
import signal

import pytest
from browser_helpers import start_app, wait_idle


@pytest.mark.parametrize(("path", "title"), [("train", "Train"), ("runs", "Compare runs")])
def test_the_first_visit_of_a_fresh_server_may_be_a_page_s_own_address(
    browser, app_env, tmp_path, path: str, title: str
) -> None:
    env = {**app_env, "SKINLAB_MODELS_DIR": str(tmp_path / "models")}
    with open(tmp_path / "app.log", "wb") as log:
        server, url = start_app(env, log)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(f"{url}/{path}")
        wait_idle(page, timeout=300)
        nav = page.locator("[data-testid='stSidebarNav']")
        # The router's navigation (titles), not the folder's file names ("streamlit app").
        for name in ("Explore", "Train", "Predict", "Runs"):
            nav.get_by_text(name, exact=True).wait_for()
        assert nav.get_by_text("streamlit app").count() == 0
        page.locator("[data-testid='stSidebar']").get_by_text("Dataset", exact=True).wait_for()
        page.get_by_role("heading", name=title).first.wait_for()
        assert page.url.rstrip("/").endswith(f"/{path}")
    finally:
        context.close()
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
