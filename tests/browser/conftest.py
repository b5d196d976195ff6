"""Real-browser fixtures: a `streamlit run` server on a loopback port and headless Chromium
driven by Playwright (Debian's /usr/bin/chromium; `.ci/run` installs it)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SKINLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_home(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("browser-home")
    return {"data": base / "data", "models": base / "models"}


@pytest.fixture(scope="session")
def server(app_home) -> Iterator[str]:
    """Start the app once for the session; yields its base URL."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        message = "Chromium is not installed (apt-get install -y chromium); .ci/run installs it"
        if os.environ.get("SKINLAB_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    env = {
        **os.environ,
        "SKINLAB_DATA_DIR": str(app_home["data"]),
        "SKINLAB_MODELS_DIR": str(app_home["models"]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    log = open(app_home["data"].parent / "streamlit.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
            "--server.port", str(port), "--server.address", "127.0.0.1",
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("streamlit did not become healthy in 90 s")
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
    from skinlab import runs
    from skinlab.config import RunConfig
    from skinlab.demo import ensure_demo_dataset
    from skinlab.training import train

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
