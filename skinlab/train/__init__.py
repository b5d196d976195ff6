"""Fitting a model: the training loop, its callbacks and the recipes' parts; cross-validation.

* :mod:`skinlab.train.training`: a run end to end: data -> split -> model -> fit -> evaluate -> files
* :mod:`skinlab.train.preflight`: the one pre-flight check before any run starts
* :mod:`skinlab.train.callbacks`: RunMonitor: progress, heartbeat and stop requests
* :mod:`skinlab.train.checkpoint`: BestWeights: which weights a run keeps
* :mod:`skinlab.train.budget`: the time budget and fitting the schedule to it
* :mod:`skinlab.train.schedules`: the one-cycle learning-rate schedule
* :mod:`skinlab.train.losses`: the label-smoothed loss
* :mod:`skinlab.train.imbalance`: class weights, oversampling and balanced sampling
* :mod:`skinlab.train.features`: cached backbone features for head-only training
* :mod:`skinlab.train.lr_find`: the learning-rate range test
* :mod:`skinlab.train.cv`: k-fold cross-validation of a recipe
* :mod:`skinlab.train.ablation`: the ablation table
"""
