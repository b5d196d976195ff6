"""The app's `.streamlit/config.toml`: the security-relevant values are set explicitly, and
every key is one Streamlit knows (it ignores misspelt ones with only a log line)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml"


@pytest.fixture(scope="module")
def settings() -> dict:
    with open(CONFIG, "rb") as handle:
        return tomllib.load(handle)


def test_uploads_are_capped_and_protected_against_cross_site_posts(settings) -> None:
    server = settings["server"]
    assert server["maxUploadSize"] == 50  # MB
    assert server["enableXsrfProtection"] is True
    assert server["enableCORS"] is True
    assert server["enableStaticServing"] is False


def test_browsers_see_no_tracebacks_and_no_statistics_are_sent(settings) -> None:
    assert settings["client"]["showErrorDetails"] == "type"
    assert settings["browser"]["gatherUsageStats"] is False


def test_no_deploy_button_is_offered(settings) -> None:
    # "viewer" hides the developer items (Deploy, Rerun, Clear cache), even on localhost.
    assert settings["client"]["toolbarMode"] == "viewer"


def test_every_key_is_a_streamlit_option(settings) -> None:
    from streamlit import config

    config.get_option("server.port")  # loads the option registry
    known = set(config._config_options)
    keys = {f"{section}.{key}" for section, values in settings.items() for key in values}
    assert keys <= known, keys - known


def test_the_upload_limit_is_what_skinlab_accepts(settings) -> None:
    # One number: Streamlit refuses bigger files in the browser and on the server (which
    # holds uploads in memory), and nothing under it is refused later for its size.
    from skinlab.app.uploads import MAX_UPLOAD_MB
    from skinlab.data.images import MAX_FILE_BYTES

    assert settings["server"]["maxUploadSize"] == MAX_UPLOAD_MB == MAX_FILE_BYTES // 2**20
