"""Real-browser fixtures: a `streamlit run` server on a loopback port and headless Chromium
driven by Playwright (Debian's /usr/bin/chromium; `.ci/run` installs it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import start_app

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SKINLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def app_home(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("browser-home")
    return {"data": base / "data", "models": base / "models"}


@pytest.fixture(scope="session")
def app_env(app_home) -> dict[str, str]:
    """The environment the app runs with (added to the tests' own)."""
    return {
        "SKINLAB_DATA_DIR": str(app_home["data"]),
        "SKINLAB_MODELS_DIR": str(app_home["models"]),
        # Journeys may open temporary folders and the shared ISIC images (skinlab.core.confine).
        "SKINLAB_EXTRA_DIRS": os.pathsep.join(
            [str(app_home["data"].parent.parent), str(ROOT.parent / "shared" / "datasets")]
        ),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        # No warm standby (skinlab.jobs.standby): it would outlive the server by minutes. Its
        # hand-over is tested with real processes in tests/test_standby.py.
        "SKINLAB_STANDBY": "0",
    }


@pytest.fixture(scope="session")
def server(app_home, app_env) -> Iterator[str]:
    """Start the app once for the session; yields its base URL."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        message = "Chromium is not installed (apt-get install -y chromium); .ci/run installs it"
        if os.environ.get("SKINLAB_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    log = open(app_home["data"].parent / "streamlit.log", "wb")  # noqa: SIM115 - closed below
    proc, url = start_app(app_env, log)
    yield url
    os.killpg(proc.pid, 15)
    proc.wait(timeout=20)
    log.close()


@pytest.fixture(scope="session")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def trained_run(server, app_home) -> str:
    """A tiny real run in the app's models folder (trained in-process: fast and certain)."""
    from skinlab.core import runs
    from skinlab.core.config import RunConfig
    from skinlab.data.demo import ensure_demo_dataset
    from skinlab.train.training import train

    saved = {k: os.environ.get(k) for k in ("SKINLAB_DATA_DIR", "SKINLAB_MODELS_DIR")}
    os.environ["SKINLAB_DATA_DIR"] = str(app_home["data"])
    os.environ["SKINLAB_MODELS_DIR"] = str(app_home["models"])
    try:
        root = ensure_demo_dataset()
        config = RunConfig(
            data_root=str(root), backbone="custom", image_size=32, epochs=2, batch_size=16
        )
        result = train(config)
        assert runs.read_status(result.paths).state == "finished"
        return result.paths.run_id
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
