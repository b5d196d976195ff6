"""Pages are layout only (issue 16): ruff's banned-API rule, configured in pages/ruff.toml,
keeps Keras, TensorFlow, PIL and file I/O out of them, and the pages obey it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("import keras", "keras"),
        ("import tensorflow as tf", "tensorflow"),
        ("from PIL import Image", "PIL"),
        ("from pathlib import Path", "pathlib"),
        ("import shutil", "shutil"),
    ],
)
def test_a_page_that_imports_the_library_s_business_is_refused(line: str, what: str) -> None:
    probe = f'"""A page."""\n\n{line}\n\nprint({line.split()[-1]})\n'
    result = _ruff("--stdin-filename", "pages/probe.py", "-", stdin=probe)
    assert result.returncode == 1
    assert f"TID251 `{what}" in result.stdout


def test_a_page_that_opens_a_file_is_refused() -> None:
    probe = '"""A page."""\n\nwith open("notes.txt") as notes:\n    print(notes.read())\n'
    result = _ruff("--stdin-filename", "pages/probe.py", "-", stdin=probe)
    assert result.returncode == 1 and "PTH123" in result.stdout


def test_the_library_may_import_what_pages_may_not() -> None:
    probe = '"""A module."""\n\nimport keras\n\nprint(keras)\n'
    result = _ruff("--stdin-filename", "skinlab/probe.py", "-", stdin=probe)
    assert result.returncode == 0, result.stdout


def test_the_pages_obey_the_contract() -> None:
    result = _ruff("pages", "streamlit_app.py")
    assert result.returncode == 0, result.stdout


def test_every_page_is_at_most_120_lines_of_layout() -> None:
    pages = sorted((ROOT / "pages").glob("*.py"))
    assert len(pages) == 4
    long = {p.name: n for p in pages if (n := len(p.read_text().splitlines())) > 120}
    assert not long, f"move logic into skinlab/app: {long}"
