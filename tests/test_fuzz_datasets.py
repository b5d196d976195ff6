"""Property-based fuzzing of the dataset side's readers (issue 29): dataset folders as
:mod:`skinlab.data.discovery` scans them, a dataset's ``.skinlab/overrides.csv``, a run's
``predictions.csv`` and the images it points to, and a run's ``familiarity.npz``.

The property and the harness are test_fuzz_readers.py's: a value or a SkinlabError with a
message, within a time and memory bound, never another exception.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import image_bytes
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from test_fuzz_readers import (
    FUZZ,
    SPECIAL_KINDS,
    check,
    csv_file,
    fresh,
    json_values,
    make_run,
    plant,
    render,
)

from skinlab.app import compare
from skinlab.core import record
from skinlab.core.confine import within
from skinlab.data import discovery, overrides
from skinlab.evaluate.familiarity import (
    Detector,
    FamiliarityGate,
    FeatureBank,
    image_statistics,
    load_gate,
    save_gate,
)

# --- Dataset folders ----------------------------------------------------------------------

#: Names a folder or file may have: split and class names skinlab knows, and odd text...
text_names = st.one_of(
    st.sampled_from(
        ["Train", "test", "VALID", "melanoma", "Nevus", "nevvus", ".hidden", "__MACOSX"]
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=12),
).filter(lambda name: name not in (".", ".."))
#: ... or raw bytes that are not UTF-8 (``os.fsdecode`` keeps them as surrogates, as
#: ``iterdir`` does).
byte_names = st.binary(min_size=1, max_size=12).map(os.fsdecode)
NAMES = {
    "text names": text_names,
    "raw byte names": st.one_of(text_names, byte_names).filter(
        lambda name: "/" not in name and "\x00" not in name and name not in (".", "..")
    ),
}

contents = st.one_of(
    st.just(image_bytes()),
    st.just(image_bytes(fmt="PNG", mode="RGBA")),
    st.integers(0, len(image_bytes())).map(lambda n: image_bytes()[:n]),
    st.binary(max_size=300),
)


@st.composite
def dataset_trees(
    draw: st.DrawFn, names: st.SearchStrategy[str]
) -> list[tuple[tuple[str, ...], bytes]]:
    """Files at random paths up to four levels down, mostly under split/class folders."""
    files = []
    for _ in range(draw(st.integers(1, 8))):
        split = draw(st.sampled_from(["Train", "Test", "val"]) | names)
        label = draw(st.sampled_from(["melanoma", "nevus"]) | names)
        deeper = draw(st.lists(names, max_size=1))
        stem = draw(names)
        suffix = draw(st.sampled_from([".jpg", ".JPEG", ".png", ".txt", ""]))
        files.append(((split, label, *deeper, stem + suffix), draw(contents)))
    return files


def write_tree(root: Path, tree: list[tuple[tuple[str, ...], bytes]]) -> None:
    for parts, content in tree:
        path = root.joinpath(*parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        except OSError:  # a name drawn as a folder and as a file, or too long: skip it
            continue


def scan(root: Path) -> None:
    """Everything a page reads of a dataset folder; no image row may lie outside the folders
    the app may read (issue 29 item 2: a linked folder at any level is not followed out)."""
    discovery.fingerprint(root)
    dataset = discovery.discover(root, workers=2)
    outside = [path for path in dataset.table["path"] if within(path) is None]
    assert not outside, f"the scan followed links out of the allowed folders: {outside[:3]}"
    overrides.versions(root)


@pytest.mark.parametrize("names", sorted(NAMES))
def test_a_dataset_folder_is_scanned_or_refused_for_any_content(tmp_path: Path, names: str) -> None:
    @FUZZ
    @given(tree=dataset_trees(NAMES[names]))
    def fuzz(tree: list[tuple[tuple[str, ...], bytes]]) -> None:
        root = fresh(tmp_path)
        write_tree(root, tree)
        check(lambda: scan(root))

    fuzz()


@pytest.fixture
def outside() -> Iterator[Path]:
    """A folder outside every folder the app may read (tests may read pytest's temp dir)."""
    folder = Path(tempfile.mkdtemp(prefix="skinlab-outside-"))
    (folder / "melanoma").mkdir()
    (folder / "melanoma" / "secret.jpg").write_bytes(image_bytes(seed=7))
    (folder / "secret.jpg").write_bytes(image_bytes(seed=8))
    (folder / "Train" / "melanoma").mkdir(parents=True)  # a whole dataset, for a wrapper
    (folder / "Train" / "melanoma" / "secret.jpg").write_bytes(image_bytes(seed=8))
    yield folder
    shutil.rmtree(folder)


#: What can stand in a dataset folder besides images (each planted in a valid dataset).
DATASET_PLANTS = (
    "fifo.jpg",
    "dev-zero-link.jpg",
    "sparse-3gb.jpg",
    "image-link-outside.jpg",
    "class-link-outside",
    "split-link-outside",
    "wrapper-link-outside",
    "folder-link-loop",
    "non-utf8-names",
)


def plant_in_dataset(root: Path, plant_name: str, outside: Path) -> Path:
    """Plant ``plant_name`` in the valid dataset at ``root``; returns the folder to scan."""
    melanoma = root / "Train" / "melanoma"
    if plant_name == "fifo.jpg":
        os.mkfifo(melanoma / "fifo.jpg")
    elif plant_name == "dev-zero-link.jpg":
        (melanoma / "zero.jpg").symlink_to("/dev/zero")
    elif plant_name == "sparse-3gb.jpg":
        with open(melanoma / "sparse.jpg", "wb") as handle:
            handle.truncate(3 * 2**30)  # no disk used: a hole reads as zeros
    elif plant_name == "image-link-outside.jpg":
        (melanoma / "link.jpg").symlink_to(outside / "secret.jpg")
    elif plant_name == "class-link-outside":
        (root / "Train" / "nevus").symlink_to(outside / "melanoma")
    elif plant_name == "split-link-outside":
        (root / "Test").symlink_to(outside)
    elif plant_name == "wrapper-link-outside":
        wrapper = root.parent / "wrapper"
        wrapper.mkdir()
        (wrapper / "inner").symlink_to(outside, target_is_directory=True)
        return wrapper
    elif plant_name == "folder-link-loop":
        (melanoma / "loop").symlink_to(melanoma)
        (root / "Train" / "loop").symlink_to(root / "Train")
    else:
        folder = root / "Train" / os.fsdecode(b"mel\xffanoma")
        folder.mkdir()
        (folder / os.fsdecode(b"\xfe\xff.jpg")).write_bytes(image_bytes(seed=9))
    return root


@pytest.mark.parametrize("plant_name", DATASET_PLANTS)
def test_a_dataset_folder_with_special_files_and_links_is_scanned_in_time(
    tmp_path: Path, outside: Path, plant_name: str
) -> None:
    root = tmp_path / "ds"
    melanoma = root / "Train" / "melanoma"
    melanoma.mkdir(parents=True)
    (melanoma / "a.jpg").write_bytes(image_bytes(seed=1))
    target = plant_in_dataset(root, plant_name, outside)
    check(lambda: scan(target))


# --- Overrides ------------------------------------------------------------------------------


def small_dataset(root: Path) -> Path:
    for split, label, seed in (
        ("Train", "melanoma", 1),
        ("Train", "nevus", 2),
        ("Test", "nevus", 3),
    ):
        folder = root / split / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img{seed}.jpg").write_bytes(image_bytes(seed=seed))
    return root


def read_overrides(root: Path) -> None:
    """What Review and the Train page's version picker read of the overrides file."""
    overrides.read_log(root)
    overrides.current(root)
    for version in overrides.versions(root)[:3]:
        version.label()
        overrides.load_version(root, version.id)


VALID_DECISIONS = [
    ["2026-12-01T00:00:00+00:00", "me", "Train/melanoma/img1.jpg", "relabel", "nevus", ""],
    ["2026-12-01T00:00:01+00:00", "me", "Train/nevus/img2.jpg", "exclude", "", "blurry"],
]


@FUZZ
@given(content=csv_file(overrides.COLUMNS, VALID_DECISIONS))
def test_an_overrides_file_is_read_or_refused_for_any_content(
    tmp_path: Path, content: bytes
) -> None:
    root = small_dataset(fresh(tmp_path))
    (root / ".skinlab").mkdir()
    (root / ".skinlab" / "overrides.csv").write_bytes(content)
    check(lambda: read_overrides(root))


@pytest.mark.parametrize("kind", SPECIAL_KINDS)
def test_an_overrides_file_that_is_a_special_file_is_refused_in_time(
    tmp_path: Path, kind: str
) -> None:
    root = small_dataset(tmp_path / "ds")
    (root / ".skinlab").mkdir()
    plant(root / ".skinlab" / "overrides.csv", kind)
    check(lambda: read_overrides(root))


# --- Predictions and the images they point to ---------------------------------------------

#: The columns predictions.csv has (spelled out here: their home moves with issue 29's fixes).
PREDICTION_COLUMNS = ("path", "split", "true", "predicted", "confidence")
VALID_PREDICTIONS = [
    ["Test/nevus/img3.jpg", "Test", "nevus", "melanoma", "0.9"],
    ["Test/melanoma/img4.jpg", "Test", "melanoma", "melanoma", "0.8"],
]


def read_predictions(run_root: Path) -> None:
    """What the Runs page reads of predictions.csv: the table, a cell's rows, their images."""
    read = record.read_run(run_root)
    compare.read_predictions(read)
    for true, predicted in ((None, None), ("nevus", "melanoma"), ("melanoma", "melanoma")):
        compare.gallery(compare.examples(read, "Test", true=true, predicted=predicted))


@FUZZ
@given(content=csv_file(PREDICTION_COLUMNS, VALID_PREDICTIONS))
def test_a_predictions_table_is_read_or_refused_for_any_content(
    tmp_path: Path, content: bytes
) -> None:
    paths = make_run(fresh(tmp_path))
    paths.predictions.write_bytes(content)
    check(lambda: read_predictions(paths.root))


@pytest.mark.parametrize("kind", [*SPECIAL_KINDS, "sparse-3gb"])
@pytest.mark.parametrize("where", ["the table", "an image it points to"])
def test_predictions_and_their_images_refuse_special_files_in_time(
    tmp_path: Path, where: str, kind: str
) -> None:
    paths = make_run(tmp_path / "models")
    image = paths.root / "mistake.jpg"
    rows = [
        ["x", "Test", "nevus", "melanoma", "0.9"],
        [str(image), "Test", "nevus", "melanoma", "0.9"],
    ]
    paths.predictions.write_text("\n".join(",".join(row) for row in [PREDICTION_COLUMNS, *rows]))
    target = paths.predictions if where == "the table" else image
    if kind == "sparse-3gb":
        with open(target, "wb") as handle:
            handle.truncate(3 * 2**30)
    else:
        plant(target, kind)
    check(lambda: read_predictions(paths.root))


# --- Familiarity gates ----------------------------------------------------------------------


#: The valid gate's feature width, and what its detector takes (features, then statistics).
FEATURES = 4
WIDTH = FEATURES + len(image_statistics(Image.new("RGB", (8, 8))))


def use_gate(path: Path) -> None:
    """What a prediction does with the run's gate: load it, refuse one of other classes or
    feature width (as ``predictor._gate`` does), then score an image and name its nearest
    training cases (issue 29 item 13: labels out of range, a detector of another width)."""
    with contextlib.suppress(FileNotFoundError):  # "there is none": a dangling link
        gate = load_gate(path, "abc")
        if gate.bank.class_names != CLASSES or gate.bank.features.shape[1:] != (FEATURES,):
            return
        features = np.ones((1, FEATURES), np.float32)
        gate.scores(features, image_statistics(Image.new("RGB", (8, 8)))[None])
        index, _ = gate.bank.nearest(features, 5)
        [gate.bank.class_names[int(gate.bank.labels[j])] for j in index[0]]


CLASSES = ("melanoma", "nevus")


def _gate_arrays(tmp_path: Path) -> dict[str, bytes]:
    """The members of a valid ``familiarity.npz`` (file name -> .npy bytes)."""
    gate = FamiliarityGate(
        bank=FeatureBank(
            features=np.eye(3, 4, dtype=np.float16),
            labels=np.array([0, 1, 1], np.int16),
            relpaths=np.array(["a.jpg", "b.jpg", "c.jpg"]),
            class_names=CLASSES,
        ),
        detector=Detector(np.zeros(WIDTH), np.ones(WIDTH), np.linspace(-1, 1, WIDTH), 0.5),
        threshold=0.5,
        weights_sha256="abc",
    )
    path = tmp_path / "valid.npz"
    save_gate(path, gate)
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=True)
    return out.getvalue()


def huge_header(shape: tuple[int, ...]) -> bytes:
    """A .npy member that claims ``shape`` of float64 but holds 8 bytes (issue 29 item 13)."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    return out.getvalue() + bytes(8)


arrays = st.one_of(
    st.sampled_from(
        [
            np.zeros(0),
            np.zeros((3, 4), np.float16),
            np.array([0, 1, 99], np.int16),  # labels out of range
            np.array([-1, 0, 1], np.int16),
            np.zeros((3, 7), np.float16),  # a wrong feature width
            np.array(["x"] * 3),
            np.array([object()], dtype=object),  # needs pickle: refused
            np.array(np.nan),
        ]
    ),
    st.lists(st.floats(), max_size=6).map(np.array),
).map(npy)

members = st.one_of(
    arrays,
    json_values.map(lambda value: npy(np.array(render(value).decode("utf-8", "surrogatepass")))),
    st.sampled_from(
        [
            npy(np.array("[" * 100_000 + "]" * 100_000)),  # 100 k-deep meta
            huge_header((200_000, 200_000)),
            huge_header((2**40,)),
        ]
    ),
    st.binary(max_size=200),
)


@st.composite
def gate_files(draw: st.DrawFn, valid: dict[str, bytes]) -> bytes:
    """A valid gate's archive with members replaced, removed or added; or random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=400))
    chosen = dict(valid)
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(valid)))
        if draw(st.booleans()):
            chosen[name] = draw(members)
        else:
            chosen.pop(name, None)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in chosen.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_a_familiarity_gate_is_loaded_or_refused_for_any_content(tmp_path: Path) -> None:
    valid = _gate_arrays(tmp_path)

    @FUZZ
    @given(content=gate_files(valid))
    def fuzz(content: bytes) -> None:
        path = fresh(tmp_path) / "familiarity.npz"
        path.write_bytes(content)
        check(lambda: use_gate(path))

    fuzz()


@pytest.mark.parametrize("kind", SPECIAL_KINDS)
def test_a_familiarity_gate_that_is_a_special_file_is_refused_in_time(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "familiarity.npz"
    plant(path, kind)

    check(lambda: use_gate(path))
