"""Training: :mod:`~mmslim.training.fit` (both stages with one function),
:mod:`~mmslim.training.evaluate` (reconstructions and validation metrics),
:mod:`~mmslim.training.checkpoint` (atomic, pickle-free checkpoint I/O) and
:mod:`~mmslim.training.device` (choosing CPU, CUDA or MPS). The objectives live in
:mod:`mmslim.nn.losses`, so training and evaluation do not import each other."""
