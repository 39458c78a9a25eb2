"""Figures of attention maps (matplotlib only, safe with the Agg backend).

Every function returns a :class:`matplotlib.figure.Figure` (or draws into the ``ax`` it is given
and returns that axes' figure). New figures are ``BookFigure`` objects: they are not registered
with pyplot, so they never pile up as open figures and a notebook cell that returns one shows it
exactly once (as PNG). Heatmaps put keys on x and queries on y.

Every figure is at most the page's column wide (:data:`BOOK_WIDTH_IN`) with text of at least
:data:`MIN_FONT_PT`, or sized so its smallest text still reads at :data:`MIN_TEXT_PX` on the page.

Call everything from here (``plots.heatmap``, ``plots.curves``); the package has four files:

- :mod:`attnbook.plots.base`: ``BookFigure``, :func:`~attnbook.plots.base.figure_png`,
  :func:`~attnbook.plots.base.figure_and_axes`, the shared constants, the checks of masks, labels
  and colormaps, the colour scale and the tick labels.
- :mod:`attnbook.plots.legibility`: how large a figure's text reads on the page (the column's
  width, the smallest font, the measure :func:`~attnbook.plots.base.figure_png` stores in the PNG).
- :mod:`attnbook.plots.heatmaps`: the heatmap family (``heatmap``, ``head_map``, ``head_view``,
  ``model_view``, ``maps_grid``, ``layer_head_grid``, ``head_dendrogram``) and
  ``token_highlight`` (tokens on boxes coloured by score).
- :mod:`attnbook.plots.charts`: line and bar charts (``curves``, ``lag_profile``,
  ``metric_bars``, ``grouped_bars``, ``training_curves``, ``band_curves``, ``series_overview``,
  ``ablation_strips``)
  and the time-series colours.
"""

from __future__ import annotations

from .base import (
    GRID_MAX_TICKS,
    LOG_ABS_FLOOR,
    LOG_FLOOR,
    MASK_COLOUR,
    MAX_ANNOTATED_CELLS,
    MAX_LABEL_CHARS,
    MAX_TICKS,
    PNG_DPI,
    TOP_COLOUR,
    BookFigure,
    figure_and_axes,
    figure_png,
)
from .charts import (
    DEFAULT_LOSS_LABEL,
    FORECAST_COLOUR,
    TARGET_COLOUR,
    WEIGHT_COLOUR,
    WINDOW_COLOUR,
    ablation_strips,
    band_curves,
    curves,
    grouped_bars,
    lag_profile,
    metric_bars,
    series_overview,
    training_curves,
)
from .legibility import BOOK_WIDTH_IN, MIN_FONT_PT, MIN_TEXT_PX
from .heatmaps import head_dendrogram, head_map, head_view, heatmap, layer_head_grid, maps_grid, model_view, token_highlight

__all__ = [
    "BookFigure", "figure_png", "figure_and_axes",
    "heatmap", "head_map", "head_view", "model_view", "maps_grid", "layer_head_grid", "head_dendrogram", "token_highlight",
    "curves", "lag_profile", "metric_bars", "grouped_bars", "training_curves", "band_curves", "series_overview", "ablation_strips",
    "MAX_TICKS", "GRID_MAX_TICKS", "MAX_LABEL_CHARS", "MAX_ANNOTATED_CELLS", "LOG_FLOOR", "LOG_ABS_FLOOR", "MASK_COLOUR",
    "TOP_COLOUR", "PNG_DPI", "BOOK_WIDTH_IN", "MIN_FONT_PT", "MIN_TEXT_PX", "DEFAULT_LOSS_LABEL", "WINDOW_COLOUR", "WEIGHT_COLOUR", "TARGET_COLOUR", "FORECAST_COLOUR",
]

