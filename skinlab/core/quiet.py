"""Keeping TensorFlow's start-up chatter out of what people read.

Loading TensorFlow prints 8-10 lines (oneDNN, the CUDA stub, cpu_feature_guard; some twice)
before anything skinlab says, so a CLI error sentence or a run's log drowned in them.
``TF_CPP_MIN_LOG_LEVEL`` hides TensorFlow's C++ logging once it runs, but these lines are
written to file descriptor 2 by native code while the libraries load, before that setting
is read; so the import itself runs with descriptor 2 pointed at ``/dev/null``.

:func:`quiet_tensorflow` installs an import hook and returns at once: TensorFlow is still
imported only by the code that needs it (``runs status`` stays fast). ``--verbose`` on the
CLI, or ``SKINLAB_VERBOSE=1``, leaves everything as TensorFlow prints it. A failing import
still raises as usual; only what the native code printed while loading is lost.

Example::

    quiet_tensorflow()         # first thing in a command that may import TensorFlow
    import tensorflow as tf    # no start-up lines
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

#: The packages whose import is silenced: importing Keras imports TensorFlow, which loads
#: its native libraries in both.
_NOISY = ("tensorflow",)


def verbose_requested() -> bool:
    return os.environ.get("SKINLAB_VERBOSE", "") not in ("", "0")


def quiet_tensorflow(verbose: bool = False) -> None:
    """Hide TensorFlow's native start-up and C++ log lines in this process and its children
    (unless ``verbose`` or ``SKINLAB_VERBOSE``). Idempotent; a no-op once TensorFlow is
    loaded, apart from the log level."""
    if verbose or verbose_requested():
        os.environ["SKINLAB_VERBOSE"] = "1"  # background workers started from here too
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietFinder())


@contextmanager
def _fd2_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with _fd2_silenced():
            self._loader.exec_module(module)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds the noisy packages with the other finders and wraps their loader."""

    def find_spec(self, name, path, target=None):  # noqa: ANN001 - importlib's signature
        if name not in _NOISY:
            return None
        sys.meta_path.remove(self)  # once: and so find_spec below does not come back here
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec
