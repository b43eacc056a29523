"""mmslim: learned compression of mmWave radar range-Doppler maps (MaskNet + two VQ-VAEs).

The package is read from the bottom up: ``data`` (simulator, loader), ``nn`` (blocks,
quantizers, MaskNet, the model), ``train``, ``codec``, then ``metrics``, ``viz`` and ``widgets``.
Importing it does not touch a GPU.
"""

__version__ = "0.1.0"
