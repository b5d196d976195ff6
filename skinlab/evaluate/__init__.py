"""Scoring a model and deciding how far to trust it; the review queue.

* :mod:`skinlab.evaluate.scoring`: predictions and scores of a split
* :mod:`skinlab.evaluate.external`: a run scored on another collection, beside its own score
* :mod:`skinlab.evaluate.evaluation`: classification metrics
* :mod:`skinlab.evaluate.calibration`: temperature scaling and reliability
* :mod:`skinlab.evaluate.intervals`: confidence intervals and paired comparisons
* :mod:`skinlab.evaluate.ood`: input-quality checks and out-of-distribution flags
* :mod:`skinlab.evaluate.familiarity`: how familiar an image is to a model
* :mod:`skinlab.evaluate.familiarity_fit`: fitting and validating a run's familiarity gate
* :mod:`skinlab.evaluate.out_of_fold`: out-of-fold predictions for the review queue
* :mod:`skinlab.evaluate.review`: the review queue: the images to doubt, ranked
* :mod:`skinlab.evaluate.masking`: the lesion-masked test: does a run look at the lesion?
* :mod:`skinlab.evaluate.run_shortcuts`: can a run's training labels be told without the lesion?
* :mod:`skinlab.evaluate.saved_checks`: a run's external scores, masked test and shortcut
  check, as saved
"""
