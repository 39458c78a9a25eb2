"""The series explorer of chapter 2: forecaster attention on input windows, by generator, layer,
head, window and query."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .. import checks, plots
from ..errors import InvalidInputError, bad_argument
from ..explore import redraw
from ..maps import AttentionMaps, check_index
from ..views import AttentionView
from .figures import series_attention

__all__ = ["SeriesView", "SeriesExplorer", "render_series", "series", "generators_view"]


def _series_array(name: str, value: Any, shape: tuple[int | None, ...]) -> np.ndarray:
    """``value`` as a finite float array of ``shape`` (None = any size on that axis)."""
    array = checks.array(name, value, (len(shape),))
    if any(want is not None and got != want for got, want in zip(array.shape, shape)):
        wanted = "(" + ", ".join("any" if w is None else str(w) for w in shape) + ")"
        raise bad_argument(InvalidInputError, name, f"shape {wanted}", f"shape {array.shape}", raw=True)
    return array


@dataclass(eq=False)
class SeriesView:
    """Attention of a forecaster on ``B`` input windows of one generator.

    ``maps``: ``(L, B, H, Q, K)`` attention over the ``K`` input steps; ``inputs``: ``(B, K)``
    the raw windows; ``targets`` and ``forecasts`` (optional): ``(B, horizon)`` the true future
    and the model's forecast, both of the same horizon. Arrays are validated and stored as
    float64 numpy arrays.
    """

    maps: AttentionMaps
    inputs: np.ndarray
    targets: np.ndarray | None = None
    forecasts: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.maps, AttentionMaps):
            raise bad_argument(InvalidInputError, "maps", "an AttentionMaps", self.maps)
        B, K = self.maps.batch_size, self.maps.n_keys
        self.inputs = _series_array("inputs", self.inputs, (B, K))
        horizon = None
        for name in ("targets", "forecasts"):
            value = getattr(self, name)
            if value is not None:
                array = _series_array(name, value, (B, horizon))
                if array.shape[1] == 0:
                    raise bad_argument(InvalidInputError, name, "a horizon of at least one step", f"shape {array.shape}", raw=True)
                horizon = array.shape[1]
                setattr(self, name, array)

    @property
    def horizon(self) -> int:
        """Forecast horizon (0 without targets and forecasts)."""
        for array in (self.targets, self.forecasts):
            if array is not None:
                return array.shape[1]
        return 0


def _query_step(view: SeriesView, query: int) -> int:
    """Time step of query ``query``: queries align with the end of the window when ``Q <= K``."""
    Q, K = view.maps.n_queries, view.maps.n_keys
    return query + K - Q if Q <= K else query


def _row_summary(row: np.ndarray, allowed: np.ndarray, step: int) -> tuple[float, float, int, int]:
    """(entropy in nats, entropy / log n_allowed, key of the largest weight, its lag = step - key)."""
    p = row[allowed & (row > 0)]
    entropy = float(-(p * np.log(p)).sum()) if p.size else 0.0
    n = int(allowed.sum())
    normalised = entropy / math.log(n) if n > 1 else 0.0
    key = int(np.argmax(np.where(allowed, row, -np.inf))) if allowed.any() else int(np.argmax(row))
    return entropy, min(1.0, max(0.0, normalised)), key, step - key


def render_series(
    view: SeriesView,
    layer: int | str,
    head: int,
    sample: int = 0,
    query: int = -1,
    *,
    name: str | None = None,
) -> tuple[Figure, str]:
    """The figure and info HTML of one window and one query row of one head.

    Left: :func:`attnbook.timeseries.figures.series_attention` of window ``sample`` with the weights
    ``maps.weights[layer, sample, head, query]`` (and target / forecast when the view has them);
    right: :func:`attnbook.plots.head_map <attnbook.plots.heatmaps.head_map>` of that head with the query row outlined. The HTML
    gives the row's entropy and the lag (query step − key) of its largest weight. ``name``
    (e.g. the generator) prefixes the titles.
    """
    if not isinstance(view, SeriesView):
        raise bad_argument(InvalidInputError, "view", "a SeriesView", view)
    maps = view.maps
    l = maps.layer_index(layer)
    h = check_index("head", head, maps.n_heads)
    b = check_index("sample", sample, maps.batch_size)
    q = check_index("query", query, maps.n_queries)
    row = maps.weights[l, b, h, q].detach().to("cpu").double().numpy()
    allowed = maps.key_mask()[b, q].detach().to("cpu").numpy()
    step = _query_step(view, q)
    prefix = f"{name} · " if name else ""
    where = f"{maps.layer_names[l]} · head {h} · window {b}"
    fig = plots.BookFigure(figsize=(12.0, 4.0), layout="constrained")
    series_ax, map_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.3, 1.0]})
    series_attention(
        view.inputs[b], row,
        target=None if view.targets is None else view.targets[b],
        forecast=None if view.forecasts is None else view.forecasts[b],
        query=step, title=f"{prefix}{where} · query {q}", ax=series_ax,
    )
    plots.head_map(maps, l, h, b, ax=map_ax, title=f"{where} (query {q} outlined)")
    map_ax.add_patch(Rectangle((-0.5, q - 0.5), maps.n_keys, 1.0, fill=False, edgecolor=plots.TOP_COLOUR, linewidth=1.5))
    entropy, normalised, key, lag = _row_summary(row, allowed, step)
    info = (
        f'<div class="attnbook-series-info">{html.escape(prefix + where)} · <b>query {q}</b> (t = {step}): '
        f"entropy {entropy:.3f} nats ({normalised:.2f} of the maximum) · "
        f"largest weight {row[key]:.3f} on key {key} · <b>lag {lag}</b></div>"
    )
    return fig, info


class SeriesExplorer:
    """Widgets over several :class:`SeriesView` (one per generator); display it (or ``.widget``).

    Child widgets: ``generator`` (Dropdown of the view names), ``layer`` (Dropdown, value =
    index), ``head``, ``sample`` (the window) and ``query`` (IntSliders; the query starts at the
    last one), ``output`` (the figure of :func:`render_series`), ``info`` (HTML line). Switching
    generator updates the ranges of the other controls, keeping their values where they fit.
    """

    def __init__(self, views: Mapping[str, SeriesView], *, title: str | None = None) -> None:
        if not isinstance(views, Mapping) or not views:
            raise bad_argument(InvalidInputError, "views", "a non-empty mapping name -> SeriesView", views)
        for key, view in views.items():
            if not isinstance(view, SeriesView):
                raise bad_argument(InvalidInputError, f"views[{str(key)!r}]", "a SeriesView", view)
        self.views = {str(k): v for k, v in views.items()}
        self.n_renders = 0
        self._syncing = False
        self._build(title)
        self.generator.observe(self._on_generator, names="value")
        for control in (self.layer, self.head, self.sample, self.query):
            control.observe(self._on_change, names="value")
        self.update()

    @property
    def view(self) -> SeriesView:
        """The selected generator's view."""
        return self.views[self.generator.value]

    def _build(self, title: str | None) -> None:
        first = next(iter(self.views))
        m = self.views[first].maps
        self.generator = widgets.Dropdown(options=list(self.views), value=first, description="generator")
        self.layer = widgets.Dropdown(options=[(n, i) for i, n in enumerate(m.layer_names)], value=0, description="layer")
        self.head = widgets.IntSlider(value=0, min=0, max=m.n_heads - 1, description="head", continuous_update=False)
        self.sample = widgets.IntSlider(value=0, min=0, max=m.batch_size - 1, description="window", continuous_update=False)
        self.query = widgets.IntSlider(value=m.n_queries - 1, min=0, max=m.n_queries - 1, description="query",
                                       continuous_update=False)
        self.output = widgets.Output()
        self.info = widgets.HTML()
        self.title = widgets.HTML(f"<h4>{html.escape(title)}</h4>" if title else "")
        wrap = widgets.Layout(flex_flow="row wrap")
        self._rows = (
            widgets.HBox([self.generator, self.layer], layout=wrap),
            widgets.HBox([self.head, self.sample, self.query], layout=wrap),
        )
        self.widget = widgets.VBox([self.title, *self._rows, self.output, self.info])

    def _on_generator(self, change: Mapping[str, Any]) -> None:
        m = self.view.maps
        self._syncing = True
        try:
            layer = self.layer.value if self.layer.value is not None and self.layer.value < m.n_layers else 0
            self.layer.options = [(n, i) for i, n in enumerate(m.layer_names)]
            self.layer.value = layer
            for slider, size in ((self.head, m.n_heads), (self.sample, m.batch_size)):
                value = min(slider.value, size - 1)
                slider.max = size - 1
                slider.value = value
            at_end = self.query.value == self.query.max
            self.query.max = m.n_queries - 1
            self.query.value = m.n_queries - 1 if at_end else min(self.query.value, m.n_queries - 1)
        finally:
            self._syncing = False
        self.update()

    def render(self) -> tuple[Figure, str]:
        """The figure and info HTML for the current widget values."""
        return render_series(self.view, self.layer.value, self.head.value, self.sample.value, self.query.value,
                             name=self.generator.value)

    def update(self) -> None:
        """Redraw the output and the info line for the current widget values."""
        if redraw(self.output, self.info, self.render):
            self.n_renders += 1

    def _on_change(self, change: Mapping[str, Any]) -> None:
        if not self._syncing:
            self.update()

    def close(self) -> None:
        """Close every widget of the explorer (frees their comms)."""
        for child in (self.title, self.generator, self.layer, self.head, self.sample, self.query, self.output, self.info,
                      *self._rows, self.widget):
            child.close()

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def series(views: Mapping[str, SeriesView], *, title: str | None = None) -> SeriesExplorer:
    """Explorer of forecaster attention on input windows: generator, layer, head, window, query.

    Shows the selected window with the query row's weights as bars (and the true future and the
    forecast after it), the head's map with that row outlined, and the row's entropy and the lag
    of its largest weight.
    """
    return SeriesExplorer(views, title=title)


def generators_view(views: Mapping[str, SeriesView], *, title: str = "", caption: str = "") -> AttentionView:
    """The static view: one entry per generator (facet ``generator``), every layer, head and window,
    each window's input drawn above its keys. Hovering the heatmap reads a query row's weights."""
    if not isinstance(views, Mapping) or not views:
        raise bad_argument(InvalidInputError, "views", "a non-empty mapping name -> SeriesView", views)
    view = AttentionView(title, caption=caption, facets=("generator",))
    for name, v in views.items():
        if not isinstance(v, SeriesView):
            raise bad_argument(InvalidInputError, f"views[{str(name)!r}]", "a SeriesView", v)
        view.add(v.maps, series=v.inputs, sample_labels=[f"window {b}" for b in range(v.maps.batch_size)], generator=str(name))
    return view
