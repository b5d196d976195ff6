"""Networks: the backbone registry, augmentation, weights and model I/O.

* :mod:`skinlab.model.registry`: one row per backbone: builder, weights source, sizes, preprocessing
* :mod:`skinlab.model.backbones`: the one factory that builds a registry row
* :mod:`skinlab.model.augment`: augmentation layers and presets
* :mod:`skinlab.model.geometry`: geometric augmentation layers
* :mod:`skinlab.model.frames`: frame randomisation (a dermatoscope's dark frame drawn or cropped)
* :mod:`skinlab.model.colour`: colour constancy (Shades of Gray), at training and prediction
* :mod:`skinlab.model.views`: test-time views (flips and quarter turns)
* :mod:`skinlab.model.weights`: ImageNet weights: where they come from, whether they are cached
* :mod:`skinlab.model.modelio`: saving and loading a run's model
* :mod:`skinlab.model.precision`: choosing float32 or mixed precision by measurement
* :mod:`skinlab.model.distribute`: the distribution strategy
"""
