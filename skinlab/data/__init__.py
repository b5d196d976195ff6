"""Dataset folder -> one table of images -> audit -> split -> ``tf.data`` pipeline.

* :mod:`skinlab.data.images`: the one safe image decoder
* :mod:`skinlab.data.sniff`: what a file really is, from its bytes
* :mod:`skinlab.data.discovery`: a dataset folder becomes one tidy table
* :mod:`skinlab.data.audit`: duplicates, label conflicts, leaks, unreadable files
* :mod:`skinlab.data.splits`: hash-grouped train/validation splits and k folds
* :mod:`skinlab.data.pipeline`: ``tf.data`` pipelines from the table
* :mod:`skinlab.data.importer`: importing a zip or folder safely
* :mod:`skinlab.data.demo`: the synthetic demo dataset and its planted problems
* :mod:`skinlab.data.demo_drawing`: drawing the demo's lesions
* :mod:`skinlab.data.near_duplicates`: perceptual-hash near copies
* :mod:`skinlab.data.overrides`: review decisions and dataset versions
* :mod:`skinlab.data.negatives`: non-dermoscopy images for the familiarity gate
"""
