"""Only the Streamlit pages use these: layout helpers, caches, charts and page logic.

* :mod:`skinlab.app.ui`: the shared page frame, router, active dataset and model
* :mod:`skinlab.app.caches`: every Streamlit cache of the app, with its key and why
* :mod:`skinlab.app.catalog`: the datasets the app can use
* :mod:`skinlab.app.settings`: the user's settings file
* :mod:`skinlab.app.charts`: Plotly charts
* :mod:`skinlab.app.colours`: the colour scheme
* :mod:`skinlab.app.curves`: training curves
* :mod:`skinlab.app.explore_view`: the Explore page
* :mod:`skinlab.app.gallery`: image galleries
* :mod:`skinlab.app.linked_views`: Altair linked views
* :mod:`skinlab.app.review_view`: the Review tab
* :mod:`skinlab.app.shortcut_view`: the shortcut check, on a dataset and a run's training images
* :mod:`skinlab.app.uploads`: uploaded files
* :mod:`skinlab.app.train_fields`: the Train form's fields as data
* :mod:`skinlab.app.train_form`: the Train form
* :mod:`skinlab.app.train_widgets`: Train page widgets
* :mod:`skinlab.app.train_extra`: the Train page's "Also train on" (extra collections)
* :mod:`skinlab.app.train_preview`: the augmentation preview
* :mod:`skinlab.app.train_monitor`: watching background runs
* :mod:`skinlab.app.train_lr_find`: the learning-rate finder button
* :mod:`skinlab.app.run_panel`: a run's panel
* :mod:`skinlab.app.compare`: comparing runs
* :mod:`skinlab.app.runs_view`: the Runs page
* :mod:`skinlab.app.external_view`: the Runs page's External test tab
* :mod:`skinlab.app.run_stats`: run statistics
* :mod:`skinlab.app.cv_view`: cross-validation wording
* :mod:`skinlab.app.predict_view`: the Predict page
* :mod:`skinlab.app.prediction_report`: a prediction's report
* :mod:`skinlab.app.familiarity_view`: the familiarity panel
* :mod:`skinlab.app.quick_model`: the quick model of the Predict page
"""
