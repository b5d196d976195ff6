"""skinlab: a workbench for dermoscopic skin-lesion classification (research and teaching,
not a medical device).

The library holds all logic; the Streamlit pages and the ``python -m skinlab`` CLI are
thin layers over it. Modules, in the order data flows through them:

* :mod:`skinlab.classes` - the nine ISIC classes and their risk tiers
* :mod:`skinlab.images` - the one safe image decoder
* :mod:`skinlab.discovery` - dataset folder -> tidy table of images
* :mod:`skinlab.demo` - the synthetic demo dataset (the embedded default)
* :mod:`skinlab.importer` - importing a zip or folder into ``data/``
* :mod:`skinlab.audit` - duplicates, label conflicts, leaks, statistics
* :mod:`skinlab.review` - the review queue: images to doubt, ranked (with
  :mod:`skinlab.out_of_fold` and :mod:`skinlab.near_duplicates`)
* :mod:`skinlab.overrides` - review decisions (relabel/exclude/keep) and dataset versions
* :mod:`skinlab.splits` - leakage-free stratified train/validation split
* :mod:`skinlab.pipeline` - ``tf.data`` pipelines from the table
"""

__version__ = "0.1.0"

NOT_A_MEDICAL_DEVICE = (
    "skinlab is a research and teaching tool, not a medical device: "
    "it must not be used to diagnose anyone."
)
