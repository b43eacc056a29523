"""Views (matplotlib): :mod:`~mmslim.viz.maps` (range-Doppler maps, masks, reconstructions,
training curves), :mod:`~mmslim.viz.codebooks` (code usage, index grids, rate breakdown),
:mod:`~mmslim.viz.bench` (benchmark plots) and :mod:`~mmslim.viz.explorer` (the ipywidgets mask
explorer)."""
