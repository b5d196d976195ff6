"""skinlab: a workbench for dermoscopic skin-lesion classification (research and teaching,
not a medical device).

The library holds all logic; the Streamlit pages and the ``python -m skinlab`` CLI are
thin layers over it. Modules by layer, lowest first; a module imports only from its own
layer and those below (the contract ``lint-imports`` checks, in ``pyproject.toml``; data
flow and the run state machine in ``docs/architecture.md``):

* core: :mod:`~skinlab.config` (a run's options, presets), :mod:`~skinlab.classes` (the
  nine ISIC classes), :mod:`~skinlab.errors`, :mod:`~skinlab.paths`,
  :mod:`~skinlab.atomic` (atomic writes), :mod:`~skinlab.processes`,
  :mod:`~skinlab.confine` (path confinement), :mod:`~skinlab.runs` (the run folder's files),
  :mod:`~skinlab.probability` (writing probabilities), :mod:`~skinlab.quiet`
* data: :mod:`~skinlab.images` (the one safe decoder), :mod:`~skinlab.sniff`,
  :mod:`~skinlab.discovery` (folder -> table), :mod:`~skinlab.audit`,
  :mod:`~skinlab.splits`, :mod:`~skinlab.pipeline` (``tf.data``), :mod:`~skinlab.importer`,
  :mod:`~skinlab.demo` and :mod:`~skinlab.demo_drawing` (the synthetic demo),
  :mod:`~skinlab.near_duplicates`, :mod:`~skinlab.overrides` (review decisions, dataset
  versions), :mod:`~skinlab.negatives` (non-dermoscopy images for the gate)
* model: :mod:`~skinlab.backbones` (registry and factory), :mod:`~skinlab.augment`,
  :mod:`~skinlab.geometry`, :mod:`~skinlab.views` (test-time views), :mod:`~skinlab.weights`,
  :mod:`~skinlab.modelio` (save/load), :mod:`~skinlab.precision`, :mod:`~skinlab.distribute`
* train and evaluate: :mod:`~skinlab.training`, :mod:`~skinlab.preflight`,
  :mod:`~skinlab.callbacks`, :mod:`~skinlab.checkpoint`, :mod:`~skinlab.budget`,
  :mod:`~skinlab.schedules`, :mod:`~skinlab.losses`, :mod:`~skinlab.imbalance`,
  :mod:`~skinlab.features`, :mod:`~skinlab.lr_find`, :mod:`~skinlab.cv`,
  :mod:`~skinlab.ablation`, :mod:`~skinlab.scoring`, :mod:`~skinlab.evaluation`,
  :mod:`~skinlab.calibration`, :mod:`~skinlab.intervals`, :mod:`~skinlab.ood`,
  :mod:`~skinlab.familiarity` and :mod:`~skinlab.familiarity_fit` (the unfamiliar-image
  gate), :mod:`~skinlab.review` and :mod:`~skinlab.out_of_fold` (the review queue)
* predict and runs: :mod:`~skinlab.predict`, :mod:`~skinlab.gradcam`, :mod:`~skinlab.explain`,
  :mod:`~skinlab.export`, :mod:`~skinlab.modelcard`, :mod:`~skinlab.ood_report`;
  :mod:`~skinlab.manager`, :mod:`~skinlab.worker`, :mod:`~skinlab.standby`,
  :mod:`~skinlab.repeats`
* app (only the pages use them): :mod:`~skinlab.ui`, :mod:`~skinlab.catalog`,
  :mod:`~skinlab.settings`, :mod:`~skinlab.charts`, :mod:`~skinlab.colours`,
  :mod:`~skinlab.explore_view`, :mod:`~skinlab.gallery`, :mod:`~skinlab.linked_views`,
  :mod:`~skinlab.review_view`,
  :mod:`~skinlab.uploads`, :mod:`~skinlab.train_fields`, :mod:`~skinlab.train_form`,
  :mod:`~skinlab.train_widgets`, :mod:`~skinlab.train_preview`,
  :mod:`~skinlab.train_monitor`, :mod:`~skinlab.train_lr_find`, :mod:`~skinlab.run_panel`,
  :mod:`~skinlab.curves`, :mod:`~skinlab.compare`, :mod:`~skinlab.runs_view`,
  :mod:`~skinlab.run_stats`,
  :mod:`~skinlab.cv_view`,
  :mod:`~skinlab.predict_view`, :mod:`~skinlab.prediction_report`,
  :mod:`~skinlab.familiarity_view`, :mod:`~skinlab.quick_model`
* entry points: :mod:`~skinlab.cli` (``python -m skinlab``) and :mod:`skinlab.bench`
"""

__version__ = "0.1.0"

NOT_A_MEDICAL_DEVICE = (
    "skinlab is a research and teaching tool, not a medical device: "
    "it must not be used to diagnose anyone."
)
