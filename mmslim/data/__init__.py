"""Data: :mod:`~mmslim.data.radar` (the FMCW radar and its FFT chain), :mod:`~mmslim.data.walker`
(gait kinematics), :mod:`~mmslim.data.simulator` (scenes to range-Doppler maps),
:mod:`~mmslim.data.layout` (file names of the original captures), :mod:`~mmslim.data.dataset`
(loading, the one per-frame normalisation, subject splits) and :mod:`~mmslim.data.samples`
(where the shipped sample and checkpoints are)."""
