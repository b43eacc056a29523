"""Benchmarks, one module per question; each prints figures and never passes or fails:
:mod:`~mmslim.bench.speed` (simulator and training speed; the codec against JPEG XL and JPEG
2000, with :mod:`~mmslim.bench.memory`), :mod:`~mmslim.bench.codec` (rates and
speeds of the real codec), :mod:`~mmslim.bench.rd` (rate-distortion against the classical codecs
of :mod:`~mmslim.bench.baselines` and the :mod:`~mmslim.bench.ablations`),
:mod:`~mmslim.bench.quantizers` (every quantizer variant on one budget) and
:mod:`~mmslim.bench.ddp` (training speed under ``torchrun`` with 1, 2... processes). Tables are
printed and stored with :mod:`mmslim.files`; plots are in :mod:`mmslim.viz.bench`."""
