"""mmslim: learned compression of mmWave radar range-Doppler maps (MaskNet + two VQ-VAEs).

Read the package bottom up, one subpackage per concept:

1. :mod:`mmslim.config`   typed configs and every set of allowed values
2. :mod:`mmslim.data`     FMCW radar, walker, simulator, loader (the one normalisation)
3. :mod:`mmslim.codec`    entropy prior, coders, frames, the ``.mmsl`` container, rates
4. :mod:`mmslim.nn`       blocks, quantizers, MaskNet, the model, losses
5. :mod:`mmslim.metrics`  image (SSIM, PSNR) and radar (CFAR, dB and phase errors) metrics
6. :mod:`mmslim.training` fit, evaluate, checkpoint I/O, devices
7. :mod:`mmslim.bench`, :mod:`mmslim.viz`, :mod:`mmslim.tutorial`, :mod:`mmslim.cli`

The public API is re-exported here::

    from mmslim import MMSlim, ModelConfig, load_model, compress_maps, decompress_maps

Importing it does not touch a GPU, nor import PyTorch: each name is imported on first use, so
that the parts that run without PyTorch (the exported codec, :mod:`mmslim.export.sensor`) load
without it.
"""

from mmslim.lazy import lazy_names

__version__ = "0.2.0"

_HOMES = {  # public name -> the module that defines it
    "BitstreamError": "mmslim.codec.frames",
    "compress_maps": "mmslim.codec.maps",
    "decompress_maps": "mmslim.codec.maps",
    "ModelConfig": "mmslim.config",
    "TrainConfig": "mmslim.config",
    "MMSlim": "mmslim.nn.model",
    "load_model": "mmslim.training.checkpoint",
}
__getattr__, __dir__ = lazy_names(__name__, _HOMES)


__all__ = [
    "BitstreamError",
    "MMSlim",
    "ModelConfig",
    "TrainConfig",
    "__version__",
    "compress_maps",
    "decompress_maps",
    "load_model",
]
