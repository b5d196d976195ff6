"""Background runs: processes that train while the pages only watch.

* :mod:`skinlab.jobs.manager`: start, queue, watch, stop, resume, delete runs
* :mod:`skinlab.jobs.worker`: the process that trains one run
* :mod:`skinlab.jobs.standby`: a warm trainer waiting for the next start
* :mod:`skinlab.jobs.repeats`: seed repeats of one recipe
"""
