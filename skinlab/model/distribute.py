"""``tf.distribute`` strategies for multi-GPU and multi-machine users.

``auto`` mirrors across local GPUs when there are several and otherwise uses the default
(single-device) strategy; ``mirrored`` mirrors across all local GPUs, or across all logical
CPUs when there is no GPU (which is how the tests exercise it); ``multiworker`` reads the
cluster from the ``TF_CONFIG`` environment variable.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from skinlab.core.errors import SkinlabError


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Return the strategy for ``name`` (``auto``, ``none``, ``mirrored``, ``multiworker``).

    Raises:
        SkinlabError: ``multiworker`` without a valid ``TF_CONFIG``, or an unknown name.
    """
    gpus = tf.config.list_logical_devices("GPU")
    if name == "none" or (name == "auto" and len(gpus) < 2):
        return tf.distribute.get_strategy()
    if name in ("auto", "mirrored"):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        raw = os.environ.get("TF_CONFIG", "")
        try:
            cluster = json.loads(raw)["cluster"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SkinlabError(
                "The multiworker strategy needs TF_CONFIG to describe the cluster "
                '(e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}); set it on every machine.'
            ) from exc
        del cluster
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise SkinlabError(f"Unknown strategy '{name}'; use auto, none, mirrored or multiworker.")
