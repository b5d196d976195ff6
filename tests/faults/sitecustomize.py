"""Test-only fault injection for the kill -9 tests (tests/test_faults.py).

Python imports ``sitecustomize`` at start-up from ``sys.path``; the tests put this folder on
``PYTHONPATH`` of a background run, so the real ``python -m skinlab.jobs.worker`` processes run
with one change: every weights checkpoint, and every output of the final evaluation, writes
a marker file and then pauses before it is moved into place, so a test can kill the trainer
*during a checkpoint write* or *during the evaluation* on purpose, however fast the machine.
Nothing in ``skinlab/`` knows about this. Without ``SKINLAB_FAULT_MARKERS`` it does nothing.
"""

from __future__ import annotations

import os

_MARKERS = os.environ.get("SKINLAB_FAULT_MARKERS")

if _MARKERS:
    import contextlib
    import json
    import time
    from pathlib import Path

    from skinlab.core import atomic

    _real_atomic_path = atomic.atomic_path
    _pause = float(os.environ.get("SKINLAB_FAULT_PAUSE", "0.5"))
    _OUTPUTS = ("predictions.csv", "metrics.json", "manifest.json", "model.keras")

    def _mark(name: str, text: str = "") -> None:
        with open(Path(_MARKERS) / name, "a") as handle:
            handle.write(f"{time.time()} {os.getpid()} {text}\n")

    @contextlib.contextmanager
    def _slow_atomic_path(path, root=None):
        path = Path(path)
        checkpoint = path.name.endswith(".weights.h5")
        if not checkpoint and path.name not in _OUTPUTS:
            with _real_atomic_path(path, root) as tmp:
                yield tmp
            return
        _mark("checkpoint-start" if checkpoint else "output-start", path.name)
        with _real_atomic_path(path, root) as tmp:
            yield tmp
            time.sleep(_pause)  # the file is written, not yet in place
        # Which epoch these weights hold: the epoch status.json reports while it is saved.
        status = json.loads((path.parent / "status.json").read_text())
        _mark(f"saved-{path.name}", str(status.get("epoch")))

    atomic.atomic_path = _slow_atomic_path
