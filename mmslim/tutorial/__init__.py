"""Notebook plumbing: :mod:`~mmslim.tutorial.runner` (run the series with papermill),
:mod:`~mmslim.tutorial.kernel` (the kernel client it uses), :mod:`~mmslim.tutorial.record`
(values a notebook records for its test) and :mod:`~mmslim.tutorial.demo` (``make demo``)."""
