"""pancreas-fl's local tools: what runs on an analyst's machine, never on a FLAME node.

* :mod:`~pancreas_fl_tools.cli`: the ``pancreas-fl`` command.
* :mod:`~pancreas_fl_tools.simulation`: hospital folders as FLAME's s3 data, run with the
  offline engine (:mod:`flame_offline`).
* :mod:`~pancreas_fl_tools.report`: the summary, the JSON report and the plot of a run
  (:mod:`~pancreas_fl_tools.convergence`: the stopping rule's panel).
* :mod:`~pancreas_fl_tools.show`: a result file read back as a table or JSON
  (``pancreas-fl show``); :mod:`~pancreas_fl_tools.forest`: its forest plot.
* :mod:`~pancreas_fl_tools.metrics`: accuracy and ROC AUC of a result at each hospital.
* :mod:`~pancreas_fl_tools.sample`: synthetic cohorts (no real patients).
* :mod:`~pancreas_fl_tools.output`: writing every output, or none.

pip installs this package beside :mod:`pancreas_fl`; the FLAME Hub upload (``make hub``) holds
only :mod:`pancreas_fl` and its entrypoint. Tools import the library, never the reverse.
"""
