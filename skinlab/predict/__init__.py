"""Using a trained run: predictions, explanations, export and the model card.

* :mod:`skinlab.predict.predictor`: predictions that say what, how sure, and whether to trust them
* :mod:`skinlab.predict.gradcam`: Grad-CAM heat maps
* :mod:`skinlab.predict.explain`: explanations of a prediction
* :mod:`skinlab.predict.export`: export bundles (Keras, TFLite, SavedModel)
* :mod:`skinlab.predict.modelcard`: the model card
* :mod:`skinlab.predict.ood_report`: the unfamiliar-image report
"""
