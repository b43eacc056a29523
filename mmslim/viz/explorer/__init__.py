"""The mask explorer of notebook 08: what MaskNet sends where, and what each branch rebuilds.

Read in order: :mod:`~mmslim.viz.explorer.state` (everything shown for one frame and one
setting of the controls, as arrays and numbers), :mod:`~mmslim.viz.explorer.figure` (the
figure, laid out once and redrawn fast), :mod:`~mmslim.viz.explorer.widget` (the ipywidgets
controls, the cache and the debounce). All of it runs without a browser.
"""

from mmslim.viz.explorer.figure import ExplorerFigure, draw_explorer, symmetric_limits
from mmslim.viz.explorer.state import (
    UNITS,
    blended_mask,
    explorer_state,
    forward_with_mask,
    hard_mask,
    otsu_threshold,
    subject_frames,
)
from mmslim.viz.explorer.widget import (
    Debouncer,
    ExplorerConfig,
    MaskExplorer,
    mask_explorer,
    summary_html,
)

__all__ = [
    "UNITS",
    "Debouncer",
    "ExplorerConfig",
    "ExplorerFigure",
    "MaskExplorer",
    "blended_mask",
    "draw_explorer",
    "explorer_state",
    "forward_with_mask",
    "hard_mask",
    "mask_explorer",
    "otsu_threshold",
    "subject_frames",
    "summary_html",
    "symmetric_limits",
]
