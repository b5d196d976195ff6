"""Property-based fuzzing of every reader of a file skinlab does not write itself (issue 29):
a run's files, cross-validation results, the app's settings and the standby's records. The
dataset side (folders, overrides, predictions' images, familiarity gates) is in
test_fuzz_datasets.py; the harness both share is here.

The property, for each reader and any content: it returns a value or raises a
:class:`skinlab.core.errors.SkinlabError` with a message, within a time and memory bound,
and never raises anything else. Each example runs in a forked child (:func:`bounded`) under
an address-space limit and an alarm, so a hang or an endless read (a FIFO, a link to
/dev/zero) fails the example instead of the test session.

Profiles: ``ci`` (the default: a few dozen examples per reader, derandomised, so CI is
reproducible) and ``long`` (2,000 per reader, by hand)::

    SKINLAB_FUZZ_PROFILE=long python -m pytest -p no:cacheprovider tests/test_fuzz_*.py
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import os
import pickle
import resource
import select
import signal
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from skinlab.app import compare
from skinlab.app import settings as app_settings
from skinlab.core import atomic, record, runs
from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError
from skinlab.core.manifest import Manifest
from skinlab.jobs import manager, standby, worker
from skinlab.train import cv

# Hypothesis keeps caches (and, on a failure, a patch) in a .hypothesis folder of the working
# directory: keep the checkout clean, as CI's clean clone would be.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "skinlab-hypothesis")
_COMMON = {
    "deadline": None,  # each example is bounded by bounded()'s alarm, not by Hypothesis
    "database": None,  # CI runs on a clean clone: no .hypothesis folder
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
# CI reports the first failing example as found: shrinking one that hangs would cost a
# TIME_BOUND_S per step. The long profile shrinks, to hand a fix its minimal input.
settings.register_profile(
    "ci", max_examples=20, derandomize=True, phases=[Phase.explicit, Phase.generate], **_COMMON
)
settings.register_profile("long", max_examples=2000, **_COMMON)
#: Applied to each fuzz test (not loaded globally, so other tests keep Hypothesis' defaults).
FUZZ = settings.get_profile(os.environ.get("SKINLAB_FUZZ_PROFILE", "ci"))

#: Seconds one call of a reader may take, and bytes of address space it may add: generous,
#: so a busy CI machine never fails a healthy reader, and small enough that a hang or an
#: endless read is caught within the session.
TIME_BOUND_S = 20
MEMORY_BOUND_BYTES = 2 * 2**30


@dataclass(frozen=True)
class Outcome:
    """How a call ended: ``"value"``, ``"error"`` (a SkinlabError), ``"crash"`` (any other
    exception), ``"hang"`` (past :data:`TIME_BOUND_S`) or ``"killed"``; ``detail`` is the
    message, the traceback's last line, or the value's ``repr``."""

    kind: str
    detail: str = ""


def bounded(call: Callable[[], Any]) -> Outcome:
    """Run ``call()`` in a forked child with at most :data:`MEMORY_BOUND_BYTES` more address
    space and :data:`TIME_BOUND_S` seconds (its alarm kills every thread of the child, so a
    reader blocked on a FIFO in a worker thread is caught too)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            limit = _address_space() + MEMORY_BOUND_BYTES
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            signal.alarm(TIME_BOUND_S)
            os.write(write_end, pickle.dumps(_outcome(call)))
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], TIME_BOUND_S + 30)
        data = _read_all(read_end) if ready else b""
    finally:
        os.close(read_end)
        if not data:
            _kill(pid)
    _, status = os.waitpid(pid, 0)
    if data:
        return pickle.loads(data)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
        return Outcome("hang", f"no answer within {TIME_BOUND_S} s")
    return Outcome("killed", f"the reader's process ended with status {status}")


def _outcome(call: Callable[[], Any]) -> Outcome:
    try:
        value = call()
    except SkinlabError as exc:
        return Outcome("error", str(exc)[:2000])
    except BaseException as exc:  # noqa: BLE001 - anything else is what the fuzz looks for
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
        return Outcome("crash", last[:2000] + where)
    return Outcome("value", repr(value)[:2000])


def _address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def check(call: Callable[[], Any]) -> None:
    """The fuzz property: ``call()`` returns or raises a SkinlabError with a message, in time."""
    outcome = bounded(call)
    assert outcome.kind in ("value", "error"), f"{outcome.kind}: {outcome.detail}"
    if outcome.kind == "error":
        assert outcome.detail.strip(), "a SkinlabError without a message"


# --- Contents -----------------------------------------------------------------------------

#: Raw JSON tokens json.dumps cannot write: a 5,000-digit integer, overflowing floats, and
#: the non-standard constants Python's parser accepts.
RAW_TOKENS = ("1" * 5000, "-" + "9" * 5000, "1e999999", "-1e999999", "NaN", "Infinity", "-0")
_RAW = "\x00raw{}\x00"

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from([_RAW.format(i) for i in range(len(RAW_TOKENS))])
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def render(value: Any) -> bytes:
    """``value`` as JSON text, with :data:`RAW_TOKENS` placeholders put in raw."""
    text = json.dumps(value)
    for i, token in enumerate(RAW_TOKENS):
        text = text.replace(json.dumps(_RAW.format(i)), token)
    return text.encode("utf-8", errors="surrogatepass")


@st.composite
def deep_nesting(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([31, 32, 33, 1000, 100_000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    return (opener * depth + "1" + closer * depth).encode()


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """``base`` with a few keys replaced, deleted or added (wrong types, huge numbers)."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "add" or not doc:
            doc[draw(st.text(max_size=12))] = draw(json_values)
            continue
        key = draw(st.sampled_from(sorted(doc)))
        if action == "delete":
            del doc[key]
        else:
            doc[key] = draw(json_values)
    return render(doc)


def json_file(base: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """Contents of a JSON file whose valid form is ``base``: mostly near-valid documents,
    then any JSON, deep nesting, truncations, random text and random bytes."""
    valid = render(base)
    return st.one_of(
        mutated(base),
        mutated(base),
        json_values.map(render),
        deep_nesting(),
        st.integers(0, len(valid)).map(lambda n: valid[:n]),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", errors="surrogatepass")),
        st.binary(max_size=300),
    )


csv_cells = st.one_of(
    st.sampled_from(
        ["", "nan", "inf", "-inf", "1", "0.5", "-1", "1e308", "1e309", "train", "\x00"]
    ),
    st.sampled_from(RAW_TOKENS),
    st.integers().map(str),
    st.floats().map(repr),
    st.text(max_size=20),
)


@st.composite
def csv_file(draw: st.DrawFn, columns: tuple[str, ...], valid_rows: list[list[str]]) -> bytes:
    """A CSV table over some of ``columns`` and random ones, with ragged rows of odd cells;
    or a valid table cut short; or random bytes."""
    form = draw(st.sampled_from(["table", "table", "wide", "truncated", "bytes"]))
    valid = _csv([list(columns), *valid_rows])
    if form == "truncated":
        return valid[: draw(st.integers(0, len(valid)))]
    if form == "bytes":
        return draw(st.binary(max_size=400))
    if form == "wide":  # many columns (a parse-cost probe, kept small for CI)
        header = [f"c{i}" for i in range(draw(st.sampled_from([1000, 5000])))]
        return _csv([list(columns) + header, *valid_rows])
    header = draw(
        st.lists(st.sampled_from(columns) | st.text(max_size=10), max_size=len(columns) + 2)
    )
    rows = draw(st.lists(st.lists(csv_cells, max_size=len(header) + 2), max_size=6))
    return _csv([header, *rows])


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8", errors="surrogatepass")


# --- Special files --------------------------------------------------------------------------

#: What can stand in a file's place besides content: parametrised, not drawn, so that each
#: is tried once and a hang costs one :data:`TIME_BOUND_S`, not one per shrinking step.
SPECIAL_KINDS = ("fifo", "dev-zero-link", "folder", "dangling-link", "link-loop", "empty")


def plant(path: Path, kind: str) -> None:
    """Put ``kind`` (one of :data:`SPECIAL_KINDS`) at ``path``, replacing the file there."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero-link":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    elif kind == "dangling-link":
        path.symlink_to(path.with_name("no-such-file"))
    elif kind == "link-loop":
        path.symlink_to(path.name)
    else:
        path.write_bytes(b"")


def fresh(tmp_path: Path) -> Path:
    """A new empty folder for one example (a test's ``tmp_path`` is shared by its examples)."""
    return Path(tempfile.mkdtemp(dir=tmp_path))


# --- Run files ------------------------------------------------------------------------------


def make_run(models: Path) -> runs.RunPaths:
    """A complete, valid run folder written by skinlab's own writers."""
    paths = runs.new_run(RunConfig(backbone="custom", name="fuzz"), root=models)
    runs.append_history(paths, {"epoch": 1, "loss": 0.9, "val_accuracy": 0.5, "phase": "train"})
    atomic.write_json(paths.metrics, METRICS)
    runs.write_manifest(paths, Manifest("custom", ("melanoma", "nevus"), 64))
    return paths


_SCORES = {
    "balanced_accuracy": 0.5,
    "accuracy": 0.5,
    "class_names": ["melanoma", "nevus"],
    "confusion_matrix": [[1, 0], [0, 1]],
}
METRICS = {"validation": _SCORES, "test": _SCORES}


def _read_everything(paths: runs.RunPaths) -> None:
    """What the pages and ``runs list`` read of a run: every file, each through its reader."""
    runs.run_summary(paths).to_dict()
    record.read_run(paths).section("validation")
    shown = compare.load_run(paths.root)  # the Runs page: tables and figures of the metrics
    compare.curves_figure([shown])
    for split in ("Val", "Test"):
        compare.metrics_table([shown], split)
        compare.confusion(shown, split)
    for reader in (runs.read_status, runs.read_config, runs.read_history, runs.read_manifest):
        with contextlib.suppress(SkinlabError):
            reader(paths)


RUN_FILES = {
    runs.STATUS: lambda: json_file(runs.RunStatus("finished", epoch=1, total_epochs=1).to_dict()),
    runs.CONFIG: lambda: json_file(RunConfig(backbone="custom", name="fuzz").to_dict()),
    runs.MANIFEST: lambda: json_file(Manifest("custom", ("melanoma", "nevus"), 64).to_dict()),
    runs.METRICS: lambda: json_file(METRICS),
    runs.HISTORY: lambda: csv_file(
        runs.HISTORY_COLUMNS, [["1", "0.9", "", "", "0.5", "", "", "train"]]
    ),
}


def _confusion(classes: int) -> bytes:
    """metrics.json with a ``classes`` × ``classes`` confusion matrix (issue 29 item 11)."""
    names = [f"c{i}" for i in range(classes)]
    scores = {**_SCORES, "class_names": names, "confusion_matrix": [[0] * classes] * classes}
    return render({"validation": scores, "test": scores})


#: The issue's own attacks on each file, tried before the drawn examples.
ATTACKS = {
    runs.STATUS: [b'{"state": "running", "pid": ' + RAW_TOKENS[0].encode() + b"}"],
    runs.HISTORY: [b"epoch\r\ninf\r\n", b"epoch,val_accuracy\nnan,0.5\n"],
    runs.METRICS: [_confusion(1000)],
}


@pytest.mark.parametrize(
    "name",
    [
        runs.CONFIG,
        runs.HISTORY,
        runs.MANIFEST,
        runs.METRICS,
        runs.STATUS,
    ],
)
def test_every_run_file_reader_returns_or_says_why_for_any_content(
    tmp_path: Path, name: str
) -> None:
    @FUZZ
    @given(content=RUN_FILES[name]())
    def fuzz(content: bytes) -> None:
        paths = make_run(fresh(tmp_path))
        (paths.root / name).write_bytes(content)
        check(lambda: _read_everything(paths))

    for content in ATTACKS.get(name, ()):  # tried first, in every profile
        fuzz = example(content=content)(fuzz)
    fuzz()


@pytest.mark.parametrize("kind", SPECIAL_KINDS)
@pytest.mark.parametrize("name", [*sorted(RUN_FILES), runs.LOG])
def test_every_run_file_reader_refuses_special_files_in_time(
    tmp_path: Path, name: str, kind: str
) -> None:
    paths = make_run(tmp_path / "models")
    plant(paths.root / name, kind)
    check(lambda: (_read_everything(paths), manager.read_log(paths)))


@pytest.mark.parametrize("kind", SPECIAL_KINDS)
def test_the_scheduler_lock_is_taken_in_time_whatever_stands_at_its_old_file(
    tmp_path: Path, kind: str
) -> None:
    plant(tmp_path / ".scheduler.lock", kind)  # a FIFO there blocked every start (item 10)

    def lock() -> None:
        with manager.scheduler_lock(tmp_path):
            pass

    check(lock)


# --- Files beside the runs: cross-validation results, settings, the standby's records -------

CV_RESULT = cv.CVResult(
    "quick",
    {"backbone": "custom"},
    (cv.FoldResult(1, "run-a", 0.5, 0.5, 0.5, 1.0),),
    "20261201-000000",
).to_dict()


def _read_cv(models: Path) -> None:
    for result in cv.load_results(models):
        cv.result_label(result)
        cv.fold_table(result)
        result.summary()


@FUZZ
@given(content=json_file(CV_RESULT))
def test_cross_validation_results_are_read_or_skipped_for_any_content(
    tmp_path: Path, content: bytes
) -> None:
    models = fresh(tmp_path)
    cv.save_result(cv.CVResult.from_dict(CV_RESULT), models)
    (cv.results_dir(models) / "20261202-000000-fuzz.json").write_bytes(content)
    check(lambda: _read_cv(models))


@pytest.mark.parametrize("kind", SPECIAL_KINDS)
def test_cross_validation_results_refuse_special_files_in_time(tmp_path: Path, kind: str) -> None:
    folder = cv.results_dir(tmp_path)
    folder.mkdir()
    plant(folder / "20261202-000000-fuzz.json", kind)
    check(lambda: _read_cv(tmp_path))


SETTINGS = {"dataset": "/data/isic", "model": "20261201-000000-custom-abcdef"}


def _read_settings() -> None:
    app_settings.load()
    app_settings.get("dataset")


@FUZZ
@given(content=json_file(SETTINGS))
def test_settings_are_read_for_any_content(tmp_path: Path, content: bytes) -> None:
    app_settings.settings_file().write_bytes(content)
    check(_read_settings)


@pytest.mark.parametrize("kind", SPECIAL_KINDS)
def test_settings_refuse_special_files_in_time(kind: str) -> None:
    plant(app_settings.settings_file(), kind)
    check(_read_settings)


def _standby_record(models: Path) -> None:
    os.environ["SKINLAB_STANDBY"] = "1"  # in the child only: take() looks only when enabled
    standby.ready(models)
    standby.take(models, standby.launch_env(models))
    standby.discard(models)


@FUZZ
@given(content=json_file({"pid": os.getpid(), "start": 12345, "env": "0123456789abcdef"}))
def test_the_standby_record_is_read_for_any_content(tmp_path: Path, content: bytes) -> None:
    models = fresh(tmp_path)
    (models / standby.RECORD).write_bytes(content)
    check(lambda: _standby_record(models))


@pytest.mark.parametrize(
    ("name", "kind"),
    [(name, kind) for name in (standby.RECORD, standby.LOG) for kind in SPECIAL_KINDS],
)
def test_the_standby_record_and_log_refuse_special_files_in_time(
    tmp_path: Path, name: str, kind: str
) -> None:
    plant(tmp_path / name, kind)
    check(lambda: _standby_record(tmp_path))


#: Where a crafted claim may send the standby (resolved in the child, see _claim_outcome).
CLAIM_TARGETS = ("<run>", "<outside>", "<link-to-outside>", "<models>", "", ".", "..", "/")


def claims() -> st.SearchStrategy[bytes]:
    """``.standby-claim.json`` contents naming the standby (``<me>``, its pid once forked)."""
    base = {"pid": "<me>", "run": "<run>"}
    targets = st.sampled_from(CLAIM_TARGETS).map(lambda run: render({"pid": "<me>", "run": run}))
    return st.one_of(targets, json_file(base))


def _standby_claim(models: Path, outside: Path, content: bytes | None) -> list[Path]:
    """Run the standby's loop on ``content`` as its claim, with its training child, its log
    and the run's supervision stubbed out; fail if it would take a run that is not a real
    folder inside ``models`` (issue 29 item 1d)."""
    me = os.getpid()
    for placeholder, value in {
        "<me>": str(me),  # a number, not a string
        "<run>": json.dumps(str(found[0].root) if (found := runs.list_runs(models)) else ""),
        "<outside>": json.dumps(str(outside)),
        "<link-to-outside>": json.dumps(str(models / "link")),
        "<models>": json.dumps(str(models)),
    }.items():
        if content is not None:
            content = content.replace(json.dumps(placeholder).encode(), value.encode())
    if content is not None:  # else a special file stands there already
        (models / standby.CLAIM).write_bytes(content)
    atomic.write_json(models / standby.RECORD, {"pid": me})
    taken: list[Path] = []

    class Child:
        stdin = io.BytesIO()

        def poll(self) -> None:
            return None

        def kill(self) -> None:
            pass

        def wait(self) -> int:
            return 0

    worker.subprocess.Popen = lambda *a, **k: Child()  # type: ignore[assignment]
    worker._STANDBY_POLL_SECONDS = 0
    worker._write_to_log = lambda run: None
    worker._adopt = lambda run, child: taken.append(Path(run))
    worker._watch = lambda run, child: 0
    os.environ["SKINLAB_STANDBY_IDLE_SECONDS"] = "0"
    worker.standby_supervise(models)
    for run in taken:
        real = Path(os.path.realpath(run))
        assert real.is_dir() and real.parent == Path(os.path.realpath(models)), (
            f"the standby took {run}, which is not a run folder inside {models}"
        )
    return taken


@FUZZ
@given(content=claims())
def test_the_standby_takes_only_a_run_folder_inside_its_models_folder_for_any_claim(
    tmp_path: Path, content: bytes
) -> None:
    base = fresh(tmp_path)
    models, outside = base / "models", base / "outside"
    make_run(models)
    outside.mkdir()
    (models / "link").symlink_to(outside)
    check(lambda: _standby_claim(models, outside, content))


def test_the_fuzzed_standby_takes_the_run_folder_a_valid_claim_names(tmp_path: Path) -> None:
    """The harness above stubs the standby's loop: it must still take a valid claim."""
    run = make_run(tmp_path)
    claim = render({"pid": "<me>", "run": "<run>"})
    outcome = bounded(lambda: _standby_claim(tmp_path, tmp_path, claim))
    assert outcome == Outcome("value", repr([run.root]))


@pytest.mark.parametrize("kind", SPECIAL_KINDS)
def test_the_standby_claim_refuses_special_files_in_time(tmp_path: Path, kind: str) -> None:
    def claim() -> None:
        plant(tmp_path / standby.CLAIM, kind)
        _standby_claim(tmp_path, tmp_path, None)

    check(claim)


# --- The models folder as a whole -----------------------------------------------------------

#: Run folder names: ids, odd text, and raw bytes that are not UTF-8 (issue 29 item 8).
run_names = st.one_of(
    st.just("20261201-000000-custom-abcdef"),
    st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=20),
    st.binary(min_size=1, max_size=20).map(os.fsdecode),
).filter(lambda name: "/" not in name and "\x00" not in name and name not in (".", ".."))


def _read_models(models: Path) -> None:
    """What every page's sidebar and ``runs list`` read of the models folder."""
    for paths in runs.list_runs(models):
        assert runs.run_summary(paths).label
        record.read_run(paths).summary.to_dict()


@FUZZ
@given(names=st.lists(run_names, min_size=1, max_size=4, unique=True), broken=st.booleans())
def test_the_models_folder_is_listed_for_any_run_folder_names(
    tmp_path: Path, names: list[str], broken: bool
) -> None:
    models = fresh(tmp_path)
    for name in names:
        with contextlib.suppress(OSError):  # a name the file system refuses (too long)
            make_run(models).root.rename(models / name)
            if broken:
                (models / name / runs.STATUS).write_bytes(b"{")
    check(lambda: _read_models(models))
