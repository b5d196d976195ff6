"""Tests of skinlab.core.atomic: readers see the old file or the new one, never a mix."""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from skinlab.core import atomic
from skinlab.core.atomic import RunFileError, atomic_path, read_json, write_bytes, write_json
from skinlab.core.errors import SkinlabError


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_json_creates_parents_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "status.json"
    write_json(path, {"b": 1, "a": [1.5, "x"], "path": Path("x/y")})
    assert read_json(path) == {"a": [1.5, "x"], "b": 1, "path": "x/y"}
    assert path.read_text().startswith('{\n  "a"')  # indented, keys sorted
    assert _leftovers(path.parent) == []


def test_nan_infinity_and_numpy_values_are_written_as_strict_json(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    obj = {"nan": math.nan, "inf": -math.inf, "f32": np.float32(0.5), "arr": np.arange(2)}
    write_json(path, obj)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"nan": None, "inf": None, "f32": 0.5, "arr": [0, 1]}


def test_read_json_returns_default_when_missing(tmp_path: Path) -> None:
    assert read_json(tmp_path / "missing.json") is None
    assert read_json(tmp_path / "missing.json", default={}) == {}


def test_malformed_json_raises_run_file_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text('{"state": "run')
    with pytest.raises(RunFileError, match="status.json") as info:
        read_json(path)
    assert isinstance(info.value, SkinlabError)


def test_failed_serialisation_keeps_previous_content_and_leaves_no_temp_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "status.json"
    write_json(path, {"version": 1})
    with pytest.raises(TypeError):
        write_json(path, {"version": object()})
    assert read_json(path) == {"version": 1}
    assert _leftovers(tmp_path) == []


def test_failed_replace_keeps_previous_content_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "status.json"
    write_json(path, {"version": 1})

    def disk_full(src: object, dst: object, **dir_fds: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_json(path, {"version": 2})
    assert read_json(path) == {"version": 1}
    assert _leftovers(tmp_path) == []


def test_failed_write_keeps_previous_content_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "blob.bin"
    write_bytes(path, b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_atomic_path_keeps_the_suffix_and_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "best.weights.h5"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".weights.h5")
        assert not tmp.exists()
        tmp.write_bytes(b"weights")
    assert target.read_bytes() == b"weights"
    assert _leftovers(tmp_path) == []


def test_atomic_path_discards_the_temp_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    target.write_bytes(b"old model")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a mod")
        raise RuntimeError("writer crashed")
    assert target.read_bytes() == b"old model"
    assert _leftovers(tmp_path) == []


def test_concurrent_readers_never_see_a_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    padding = "x" * 20_000  # big enough that a non-atomic write would be seen half-done
    write_json(path, {"i": 0, "pad": padding})
    done = threading.Event()
    problems: list[str] = []

    def writer() -> None:
        try:
            for i in range(1, 501):
                write_json(path, {"i": i, "pad": padding})
        finally:
            done.set()

    def reader() -> None:
        last = 0
        while not done.is_set():
            try:
                data = read_json(path)
            except RunFileError as exc:
                problems.append(str(exc))
                return
            if data is None or data["pad"] != padding or data["i"] < last:
                problems.append(f"unexpected content {str(data)[:60]}")
                return
            last = data["i"]

    threads = [threading.Thread(target=reader) for _ in range(4)]
    threads.append(threading.Thread(target=writer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert problems == []
    assert read_json(path)["i"] == 500
    assert _leftovers(tmp_path) == []


def test_written_files_get_ordinary_permissions(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    write_json(path, {})
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_temp_files_of_killed_writers_are_removed_and_live_writers_files_kept(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    with atomic_path(tmp_path / "status.json") as live:  # this process is still writing it
        live.write_text("{}")
        orphan = live.with_name(live.name.replace(f"-{os.getpid()}-", f"-{ended.pid}-"))
        orphan.write_bytes(b"half a weights file")
        (tmp_path / "best.weights.h5").write_bytes(b"weights")
        assert atomic.remove_orphaned_temp_files(tmp_path) == [orphan]
        assert live.exists()
    assert _leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.weights.h5", "status.json"]
