"""Writes never follow a link planted in data/ or models/, never open a special file, and
the review log replays in one pass (issue 29, items 1, 3, 10 and 11): what someone who can
write into those folders plants is refused with one sentence, and the file it points to is
left as it was."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest
from helpers import image_bytes, kill_run_processes

from skinlab.core import atomic, lifecycle, runs
from skinlab.core.config import RunConfig
from skinlab.core.disk import UnsafeFileError
from skinlab.core.errors import SkinlabError
from skinlab.data import overrides
from skinlab.jobs import manager, standby


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("SKINLAB_MODELS_DIR", str(folder))
    yield folder
    kill_run_processes(folder)  # only if a write path failed and a run or standby started


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside data/ and models/, with a file standing for ``~/.bashrc``."""
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / ".bashrc").write_text("# the owner's start-up file\n")
    return folder


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    for n, label in enumerate(("melanoma", "nevus")):
        (root / "Train" / label).mkdir(parents=True)
        (root / "Train" / label / "a.jpg").write_bytes(image_bytes(seed=n))
    return root


def _outside_run(outside: Path) -> runs.RunPaths:
    """A folder outside models/ that looks like a running run, with a temporary file
    named as a killed writer's."""
    paths = runs.new_run(RunConfig(backbone="custom"), root=outside)
    atomic.write_json(paths.status, runs.RunStatus("running", pid=2**22 - 7).to_dict())
    (paths.root / ".status.tmp-4194297-0123456789ab.json").write_text("keep me")
    return paths


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _returns_within(call: Callable[[], object], seconds: float = 60.0) -> bool:
    """Whether ``call`` returns (or raises) within ``seconds``; a hung call stays blocked in
    a daemon thread (its FIFO is unblocked by the caller)."""
    thread = threading.Thread(target=lambda: _swallow(call), daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def _swallow(call: Callable[[], object]) -> None:
    with suppress(Exception):
        call()


def _unblock(fifo: Path) -> None:
    """Open ``fifo`` from the other end, so a call blocked in its open returns, and remove
    it (the clean-up's own scheduler lock would otherwise wait on it)."""
    for flags in (os.O_RDONLY | os.O_NONBLOCK, os.O_WRONLY | os.O_NONBLOCK):
        with suppress(OSError):
            os.close(os.open(fifo, flags))
    fifo.unlink()


def test_a_linked_standby_log_is_refused_and_its_target_untouched(
    models: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1(a): the Train page, drawn with no run going, readies a standby and opened this "wb".
    monkeypatch.setenv("SKINLAB_STANDBY", "1")
    (models / standby.LOG).symlink_to(outside / ".bashrc")
    said = manager.ensure_standby()  # said on the Train page, which still draws (seen by hand)
    assert said and said.startswith("Runs start without a warm standby:") and "is a link" in said
    assert (outside / ".bashrc").read_text() == "# the owner's start-up file\n"
    assert atomic.read_json(models / standby.RECORD) is None  # nothing was started


@pytest.mark.parametrize("planted", ["overrides.csv", ".skinlab", "hard link"])
def test_review_decisions_never_write_through_a_planted_link(
    dataset: Path, outside: Path, planted: str
) -> None:
    # 1(b): each click appended a row, image name and all, to the link's target.
    target = outside / ".bashrc"
    if planted != ".skinlab":
        (dataset / ".skinlab").mkdir()
    if planted == "overrides.csv":
        (dataset / ".skinlab" / "overrides.csv").symlink_to(target)
    elif planted == ".skinlab":
        (dataset / ".skinlab").symlink_to(outside, target_is_directory=True)
    else:
        os.link(target, dataset / ".skinlab" / "overrides.csv")
    before = _snapshot(outside)
    for action in ("exclude", "keep"):
        with pytest.raises(UnsafeFileError, match="delete it and try again"):
            overrides.record(dataset, "Train/nevus/a.jpg", action)
    assert _snapshot(outside) == before


def test_a_linked_run_folder_is_not_a_run_and_nothing_outside_is_rewritten_or_swept(
    models: Path, outside: Path
) -> None:
    # 1(c): the scheduler marked the outside "running" status failed and swept its temporaries.
    real = runs.new_run(RunConfig(backbone="custom"), root=models)
    runs.write_status(real, runs.RunStatus("stopped"))  # so the scheduler starts nothing
    target = _outside_run(outside)
    (models / "sneaky").symlink_to(target.root, target_is_directory=True)
    before = _snapshot(outside)
    assert runs.list_runs() == [real]
    manager.schedule()  # refreshes every listed run
    linked = runs.RunPaths(models / "sneaky")
    assert atomic.remove_orphaned_temp_files(linked.root) == []
    for act in (
        lambda: manager.refresh(linked),
        lambda: lifecycle.change(linked, "failed"),
        lambda: runs.request_stop(linked),
        lambda: runs.append_history(linked, {"epoch": 1}),
        lambda: atomic.write_json(linked.metrics, {}),
    ):
        with pytest.raises(UnsafeFileError, match="'sneaky' there is a link"):
            act()
    for by_id in (runs.resolve_run, manager.stop_run):  # an id never names a link
        with pytest.raises(runs.RunNotFoundError, match="sneaky"):
            by_id("sneaky")
    assert _snapshot(outside) == before


def test_a_linked_log_or_subfolder_of_a_real_run_is_refused(models: Path, outside: Path) -> None:
    paths = runs.new_run(RunConfig(backbone="custom"))
    paths.log.symlink_to(outside / ".bashrc")
    (paths.root / "tensorboard").symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    with pytest.raises(UnsafeFileError, match="'train.log' there is a link"):
        manager.schedule()  # the launch opened train.log "ab" for the supervisor's output
    assert runs.read_status(paths).state == "queued"  # started once the link is deleted
    with pytest.raises(UnsafeFileError, match="'tensorboard' there is a link"):
        atomic.write_bytes(paths.tensorboard / "events", b"x")
    assert _snapshot(outside) == before


def test_special_files_where_skinlab_writes_are_refused_without_waiting(
    models: Path, dataset: Path
) -> None:
    paths = runs.new_run(RunConfig(backbone="custom"))
    os.mkfifo(paths.log)
    (dataset / ".skinlab").mkdir()
    os.mkfifo(dataset / ".skinlab" / "overrides.csv")
    try:
        # 3: a FIFO overrides.csv hung Review and the Train page's version picker.
        for call in (
            lambda: overrides.read_log(dataset),
            lambda: overrides.versions(dataset),
            lambda: overrides.record(dataset, "Train/nevus/a.jpg", "keep"),
        ):
            assert _returns_within(call), "a FIFO made the call wait"
            with pytest.raises(UnsafeFileError, match="a pipe"):
                call()
        with pytest.raises(UnsafeFileError, match="a pipe"):
            manager.schedule()
    finally:
        _unblock(dataset / ".skinlab" / "overrides.csv")
        _unblock(paths.log)


def test_a_fifo_as_the_scheduler_lock_blocks_no_start(models: Path) -> None:
    # 10: every start waited forever in the lock file's open.
    lock = models / ".scheduler.lock"
    os.mkfifo(lock)
    try:
        assert _returns_within(manager.schedule)
        with manager.scheduler_lock(models):
            pass
    finally:
        _unblock(lock)


def test_an_oversized_or_mangled_review_log_is_one_sentence(dataset: Path) -> None:
    (dataset / ".skinlab").mkdir()
    log = dataset / ".skinlab" / "overrides.csv"
    log.write_bytes(b"time,who,relpath,action\n" + b"x" * 16 * 2**20)  # the cap: 16 MB
    with pytest.raises(UnsafeFileError, match="larger than"):
        overrides.versions(dataset)
    log.write_bytes(b'time,who,relpath,action\n"' + b"x" * 200_000 + b'"\n')
    with pytest.raises(overrides.OverridesError, match="not a table"):
        overrides.read_log(dataset)
    log.write_bytes(b"time,who,relpath,action,label,reason\nt,\xff\xfe,Train/a.jpg,keep,,\n")
    assert overrides.read_log(dataset)[0].who == "\ufffd\ufffd"


def _review_log(dataset: Path, rows: int) -> None:
    """``rows`` decisions on ``rows // 2`` images, as a long real review leaves them."""
    lines = ["time,who,relpath,action,label,reason"]
    actions = ("relabel", "exclude", "keep", "undo")
    for i in range(rows):
        action = actions[(i * 7) % 4]
        label = "nevus" if action == "relabel" else ""
        lines.append(
            f"2026-12-01T00:00:{i % 60:02d}+00:00,me,Train/x/{i // 2:05d}.jpg,{action},{label},"
        )
    (dataset / ".skinlab").mkdir(exist_ok=True)
    (dataset / ".skinlab" / "overrides.csv").write_text("\n".join(lines) + "\n")


def test_replaying_the_review_log_hashes_each_row_a_bounded_number_of_times(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 11: every row rehashed every decision in force (38.6 s at 4,000 rows).
    _review_log(dataset, 2000)
    size = (dataset / ".skinlab" / "overrides.csv").stat().st_size
    hashed = []
    real_sha256 = hashlib.sha256

    def counting(data: bytes = b"") -> object:
        hashed.append(len(data))
        return real_sha256(data)

    monkeypatch.setattr(overrides.hashlib, "sha256", counting)
    found = overrides.versions(dataset)
    assert len(found) > 100
    assert sum(hashed) < 10 * size, f"{sum(hashed):,} bytes hashed for a {size:,}-byte log"
    newest = found[0]
    assert overrides.current_version(dataset) == newest
    assert newest.relabelled == sum(d.action == "relabel" for d in newest.decisions.values())


def test_a_version_id_of_the_first_scheme_is_still_found(dataset: Path) -> None:
    # Runs trained before the one-pass ids name their version by a hash of its sorted decisions.
    overrides.record(dataset, "Train/nevus/a.jpg", "relabel", label="melanoma")
    overrides.record(dataset, "Train/melanoma/a.jpg", "exclude")
    overrides.record(dataset, "Train/melanoma/a.jpg", "undo")
    text = "Train/nevus/a.jpg\trelabel\tmelanoma"
    old_id = hashlib.sha256(text.encode()).hexdigest()[:8]
    version = overrides.find_version(dataset, old_id)
    assert set(version.decisions) == {"Train/nevus/a.jpg"}
    loaded = overrides.load_version(dataset, old_id)
    assert set(loaded.table["label"]) == {"melanoma"}


def test_a_refused_write_is_one_sentence_naming_the_file(models: Path, outside: Path) -> None:
    (models / "sneaky").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SkinlabError) as caught:
        atomic.write_text(models / "sneaky" / "status.json", "{}")
    message = str(caught.value)
    assert message.count(". ") == 0 and message.endswith("try again.")
    assert str(models / "sneaky") in message
    assert not (outside / "status.json").exists()
