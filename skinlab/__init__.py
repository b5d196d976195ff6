"""skinlab: a workbench for dermoscopic skin-lesion classification (research and teaching,
not a medical device).

The library holds all logic; the Streamlit pages and the ``python -m skinlab`` CLI are
thin layers over it. Each subpackage is one layer, lowest first; a module imports only
from its own layer and those below (the contract ``lint-imports`` checks, in
``pyproject.toml``; data flow and the run state machine in ``docs/architecture.md``).
Each subpackage's docstring lists its modules.

* :mod:`skinlab.core`: options and presets, classes, errors, paths, atomic files, the run
  folder -- what everything stands on
* :mod:`skinlab.data`: dataset folder -> table -> audit -> split -> ``tf.data`` pipeline;
  the demo dataset; review decisions and dataset versions
* :mod:`skinlab.model`: the backbone registry, augmentation, weights, model I/O
* :mod:`skinlab.train` and :mod:`skinlab.evaluate`: fitting (the training loop, its
  callbacks, cross-validation) and scoring (metrics, calibration, the familiarity gate,
  the review queue)
* :mod:`skinlab.predict` and :mod:`skinlab.jobs`: using a trained run (predictions,
  Grad-CAM, export, model card) and background runs (manager, worker, standby)
* :mod:`skinlab.app`: what only the Streamlit pages use (no other layer imports Streamlit)
* entry points: :mod:`skinlab.cli` (``python -m skinlab``) and :mod:`skinlab.bench`
"""

__version__ = "0.1.0"

NOT_A_MEDICAL_DEVICE = (
    "skinlab is a research and teaching tool, not a medical device: "
    "it must not be used to diagnose anyone."
)
