"""Several sessions predicting at once on one cached model, as Streamlit does: each
session's script runs in its own thread of one server process."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from skinlab.core import runs
from skinlab.core.config import RunConfig
from skinlab.predict.predictor import Prediction, load_predictor

SESSIONS = 6
ROUNDS = 15
#: Allowed resident-memory growth while the sessions predict, after one warm-up round each:
#: results are small, so growth beyond allocator noise would be a per-call leak.
RSS_GROWTH_LIMIT_MB = 150


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[runs.RunPaths, list[Path]]:
    from skinlab.data.demo import generate_demo_dataset
    from skinlab.train.training import train

    demo = generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", scale=0.5)
    os.environ["SKINLAB_MODELS_DIR"] = str(tmp_path_factory.mktemp("models"))
    try:
        config = RunConfig(
            data_root=str(demo), backbone="custom", image_size=32, batch_size=16, epochs=1
        )
        result = train(config)
    finally:
        del os.environ["SKINLAB_MODELS_DIR"]
    images = sorted((demo / "Test").rglob("*.jpg"))[::3][: SESSIONS * 2]
    return result.paths, images


def _fresh_copy(paths: runs.RunPaths, tmp_path: Path) -> runs.RunPaths:
    """The same run under a new folder: a key the predictor cache has never seen."""
    return runs.RunPaths(shutil.copytree(paths.root, tmp_path / paths.run_id))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _in_sessions(work, count: int = SESSIONS) -> list:
    """Run ``work(session)`` in ``count`` threads released at the same moment."""
    start = threading.Barrier(count)
    out: list = [None] * count
    errors: list[BaseException] = []

    def session(i: int) -> None:
        try:
            start.wait()
            out[i] = work(i)
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return out


def test_sessions_asking_for_a_cold_model_at_once_share_one_loaded_predictor(
    trained, tmp_path
) -> None:
    paths = _fresh_copy(trained[0], tmp_path)
    loaded = _in_sessions(lambda _: load_predictor(paths))
    assert len({id(predictor) for predictor in loaded}) == 1
    assert load_predictor(paths) is loaded[0]


def test_concurrent_sessions_each_get_their_own_images_results(trained, tmp_path) -> None:
    paths, images = trained
    predictor = load_predictor(paths)
    # Each session predicts two images of its own, the second as a batch of both.
    mine = [images[2 * i : 2 * i + 2] for i in range(SESSIONS)]
    expected = {str(image): predictor.predict_paths([image])[0].probabilities for image in images}

    def session(i: int) -> list[Prediction]:
        results = []
        for _ in range(ROUNDS):
            results += load_predictor(paths).predict_paths(mine[i][:1])
            results += load_predictor(paths).predict_paths(mine[i])
        return results

    for i, results in enumerate(_in_sessions(session)):
        assert {r.path for r in results} == {str(p) for p in mine[i]}
        for result in results:
            got = np.array(list(result.probabilities.values()))
            want = np.array(list(expected[result.path].values()))
            np.testing.assert_allclose(got, want, atol=1e-5, err_msg=result.path)


def test_memory_stays_bounded_while_sessions_predict(trained) -> None:
    paths, images = trained
    predictor = load_predictor(paths)

    def session(i: int) -> None:
        for _ in range(ROUNDS):
            predictor.predict_paths([images[i % len(images)]], tta=2)

    _in_sessions(session)  # warm-up: thread pools, traced graphs, allocator arenas
    before = _rss_mb()
    for _ in range(3):
        _in_sessions(session)
    growth = _rss_mb() - before
    assert growth < RSS_GROWTH_LIMIT_MB, f"RSS grew by {growth:.0f} MB"
