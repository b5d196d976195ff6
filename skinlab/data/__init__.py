"""Dataset folder -> one table of images -> audit -> split -> ``tf.data`` pipeline.

* :mod:`skinlab.data.images`: the one safe image decoder
* :mod:`skinlab.data.sniff`: what a file really is, from its bytes
* :mod:`skinlab.data.discovery`: a dataset folder becomes one tidy table
* :mod:`skinlab.data.audit`: duplicates, label conflicts, leaks, unreadable files
* :mod:`skinlab.data.splits`: hash-grouped train/validation splits and k folds
* :mod:`skinlab.data.pipeline`: ``tf.data`` pipelines from the table
* :mod:`skinlab.data.importer`: importing a zip or folder safely
* :mod:`skinlab.data.label_import`: a HAM10000 / ISIC challenge folder planned as a dataset
* :mod:`skinlab.data.demo`: the synthetic demo dataset and its planted problems
* :mod:`skinlab.data.demo_drawing`: drawing the demo's lesions
* :mod:`skinlab.data.near_duplicates`: perceptual-hash near copies
* :mod:`skinlab.data.overrides`: review decisions and dataset versions
* :mod:`skinlab.data.negatives`: non-dermoscopy images for the familiarity gate
* :mod:`skinlab.data.collections`: which collection (archive) an image came from; diagnosis codes
* :mod:`skinlab.data.ground_truth`: the diagnosis CSVs of HAM10000 and the ISIC challenges
* :mod:`skinlab.data.external`: an external set in any of four layouts becomes one table
* :mod:`skinlab.data.overlap`: the external images a run's training data already holds
* :mod:`skinlab.data.run_split`: the rows a run trains and validates on, rebuilt from its config
* :mod:`skinlab.data.extra_collections`: other collections' rows added to a run's training side
* :mod:`skinlab.data.shortcuts`: can the label be told without the lesion (collections, statistics)
"""
