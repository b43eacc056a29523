"""Metrics: :mod:`~mmslim.metrics.image` (SSIM, PSNR on normalised maps) and
:mod:`~mmslim.metrics.radar` (CA-CFAR detection scores, dB error on target cells, peak location,
circular phase error): what a radar user keeps."""
