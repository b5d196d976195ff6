"""The bottom layer: what every other room stands on. No TensorFlow, no Streamlit.

* :mod:`skinlab.core.config`: a run's options (one frozen dataclass) and the presets
* :mod:`skinlab.core.classes`: the nine ISIC classes, their names and risk tiers
* :mod:`skinlab.core.errors`: skinlab's exceptions, each with a sentence a user can act on
* :mod:`skinlab.core.paths`: where datasets and runs live
* :mod:`skinlab.core.atomic`: atomic writes (temp file + rename) and JSON reads
* :mod:`skinlab.core.disk`: the one write path: no link followed below a root, no special file
* :mod:`skinlab.core.processes`: process identity (is that pid still the process that wrote it?)
* :mod:`skinlab.core.confine`: path confinement for user-given names
* :mod:`skinlab.core.manifest`: ``manifest.json`` as one typed record (what travels with the weights)
* :mod:`skinlab.core.runs`: the run folder: its files, status, manifest, history and how to find a run
* :mod:`skinlab.core.lifecycle`: a run's state machine, the one writer of ``status.json``
* :mod:`skinlab.core.record`: one typed reader of a run folder (``RunRecord``), for pages, CLI and bench
* :mod:`skinlab.core.probability`: writing probabilities for people
* :mod:`skinlab.core.spreadsheet`: tables as CSV whose cells a spreadsheet shows as text
* :mod:`skinlab.core.quiet`: TensorFlow's start-up noise, hidden
"""
