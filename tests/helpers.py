"""Small helpers tests import (kept out of conftest.py: the browser tests have their own
conftest, and two modules named ``conftest`` cannot both be imported by name)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

#: The real ISIC images beside the repository, when this checkout has them (CI does).
SHARED_ISIC = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "isic9"


def image_bytes(
    mode: str = "RGB",
    size: tuple[int, int] = (32, 24),
    fmt: str = "JPEG",
    colour: int | tuple[int, ...] | None = None,
    seed: int = 0,
    **save_kwargs,
) -> bytes:
    """Encode a small random (or single-colour) image; distinct seeds give distinct files."""
    rng = np.random.default_rng(seed)
    if colour is None:
        rgb = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), "RGB")
        img = rgb.convert(mode) if mode != "RGB" else rgb
    else:
        img = Image.new(mode, size, colour)
    buf = io.BytesIO()
    img.save(buf, fmt, **save_kwargs)
    return buf.getvalue()


def wait_for_run(paths, predicate, timeout: float = 180.0, *, allow_failed: bool = False):
    """Poll a background run's status (through ``manager.refresh``) until ``predicate``
    holds; a failed run raises with its log unless ``allow_failed``."""
    import time

    from skinlab.jobs import manager

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = manager.refresh(paths)
        if predicate(status):
            return status
        if status.state == "failed" and not allow_failed:
            raise AssertionError(f"run failed: {status.error}\n{manager.read_log(paths, 40)}")
        time.sleep(0.05)
    raise AssertionError(f"timed out; last status {status}; log:\n{manager.read_log(paths, 40)}")


def kill_run_processes(models: Path) -> None:
    """Kill every background run's process group under ``models``, and its standby (test
    clean-up: never leave a training process behind)."""
    import os
    import signal
    from contextlib import suppress

    from skinlab.core import runs
    from skinlab.core.processes import is_alive

    for paths in runs.list_runs(models):
        pid = runs.read_status(paths).supervisor_pid  # background runs lead their own group
        if pid and is_alive(pid):
            with suppress(ProcessLookupError, PermissionError):
                group = os.getpgid(pid)
                if group != os.getpgid(0):
                    os.killpg(group, signal.SIGKILL)
    if models.is_dir():  # and a warm standby (skinlab.jobs.standby) waiting for the next run
        from skinlab.jobs import manager, standby

        with manager.scheduler_lock(models):
            standby.discard(models)


def offline_keras_home(home: Path, monkeypatch) -> Path:
    """Point Keras' cache at ``home`` (created) and cut the network: downloads fail at once."""
    import urllib.error

    import keras.src.backend.config as keras_config
    import keras.src.utils.file_utils as keras_file_utils

    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    # Keras reads KERAS_HOME once, at import; point its copy here too.
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(home))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known (test)")

    monkeypatch.setattr(keras_file_utils, "urlretrieve", offline)
    return home


def seed_keras_cache(backbone: str, size: int, folder: Path, monkeypatch) -> list[np.ndarray]:
    """Put random stand-in "ImageNet" weights of ``backbone`` in ``folder`` and make both
    skinlab and Keras accept their hash; returns the weights written."""
    import dataclasses
    import hashlib

    import keras
    import keras.src.applications.efficientnet as keras_efficientnet
    import keras.src.applications.resnet as keras_resnet

    from skinlab.model import weights
    from skinlab.model.registry import BACKBONES

    keras.utils.set_random_seed(42)
    path = weights.write_stand_in_weights(backbone, size, folder)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    row = BACKBONES[backbone]
    source = row.imagenet
    assert source is not None
    monkeypatch.setitem(
        BACKBONES, backbone, dataclasses.replace(row, imagenet=dataclasses.replace(source, md5=md5))
    )
    if backbone == "efficientnetb0":
        monkeypatch.setitem(keras_efficientnet.WEIGHTS_HASHES, "b0", ("", md5))
    if backbone == "resnet50":
        monkeypatch.setitem(keras_resnet.WEIGHTS_HASHES, "resnet50", ("", md5))
    application = getattr(keras.applications, source.application)
    model = application(include_top=False, weights=None, input_shape=(size, size, 3))
    model.load_weights(path)
    return model.get_weights()


def train_quick_run(folder: Path, models: Path):
    """A real run of the "quick" preset (1 epoch) on a small demo dataset made in ``folder``,
    saved in ``models``; returns ``(RunPaths, demo root)``. Takes a few seconds on a CPU."""

    from skinlab.bench.workspace import environ
    from skinlab.core.config import preset
    from skinlab.data.demo import generate_demo_dataset
    from skinlab.train.training import train

    demo = generate_demo_dataset(folder / "demo", scale=0.3)
    with environ(SKINLAB_MODELS_DIR=models):
        result = train(preset("quick", data_root=str(demo), epochs=1))
    return result.paths, demo


def open_app_page(dataset: Path, page: str):
    """A fresh AppTest tab on ``page`` (``"pages/train.py"``) with ``dataset`` active; the
    router runs first, as a browser's first load would, so the sidebar is drawn."""
    from streamlit.testing.v1 import AppTest

    app = Path(__file__).resolve().parents[1] / "streamlit_app.py"
    at = AppTest.from_file(str(app), default_timeout=120)
    at.query_params["dataset"] = str(dataset)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


#: HAM10000 ``dx`` codes of three demo classes, for :func:`ham_external_set`.
HAM_CODES = {"melanoma": "mel", "nevus": "nv", "pigmented benign keratosis": "bkl"}


def ham_external_set(demo: Path, base: Path, per_class: int = 4) -> Path:
    """A tiny external set in HAM10000's layout made in ``base``: ``per_class`` Test images of
    each of :data:`HAM_CODES`'s demo classes copied under ISIC names into ``images/``, and
    ``HAM10000_metadata.csv`` naming their ``dx``; returns ``base``."""
    import shutil

    from skinlab.data.discovery import discover

    test = discover(demo).images("Test")
    lines = ["lesion_id,image_id,dx,dx_type,age,sex,localization\n"]
    (base / "images").mkdir(parents=True)
    for label, code in HAM_CODES.items():
        for row in test[test["label"] == label].head(per_class).itertuples():
            image_id = f"ISIC_{24400 + len(lines):07d}"
            shutil.copy(row.path, base / "images" / f"{image_id}{Path(row.path).suffix}")
            lines.append(f"HAM_{len(lines):07d},{image_id},{code},histo,50.0,male,back\n")
    (base / "HAM10000_metadata.csv").write_text("".join(lines))
    return base
