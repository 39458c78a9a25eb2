"""Interactive explorers (ipywidgets 8) that every chapter reuses.

* :func:`maps` -> :class:`MapsExplorer`: layer / head / sample / view / colour controls over one
  :class:`~attnbook.maps.AttentionMaps`, a figure and a table of the selected head's statistics.
* the chapters' own explorers (e.g. :func:`attnbook.lm.explorer.text`) build on these; they live in
  the chapters' folders (the core never imports a chapter).

All drawing goes through :func:`render` (a plain function, testable without a kernel). Figures
are put into the ``Output`` widget as PNG ``display_data`` (``output.outputs = ...``), so they show
in a live kernel, in saved widget state (the built book) and in tests alike.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from . import plots
from .errors import AttnbookError, InvalidInputError, bad_argument
from .maps import AttentionMaps, check_index

Stats = Callable[[AttentionMaps], list[dict]]
VIEWS = ("head", "layer", "model")
ERROR_COLOUR = "#c62828"


# -- rendering (no widgets) --------------------------------------------------------------------
def _colour_kwargs(heatmap_kwargs: Mapping[str, Any] | None, gamma: float | None) -> dict[str, Any]:
    """``heatmap_kwargs`` with ``gamma`` applied (1.0 = linear); a gamma replaces ``log``."""
    kwargs = dict(heatmap_kwargs or {})
    if gamma is None:
        return kwargs
    kwargs.pop("gamma", None)
    if not math.isclose(float(gamma), 1.0):
        kwargs["gamma"] = float(gamma)
        kwargs.pop("log", None)
    return kwargs


def render(
    maps: AttentionMaps,
    layer: int | str,
    head: int,
    sample: int = 0,
    view: str = "head",
    *,
    gamma: float | None = None,
    stats: Stats | None = None,
    heatmap_kwargs: Mapping[str, Any] | None = None,
) -> tuple[Figure, str]:
    """The figure of ``view`` ('head', 'layer' or 'model') and the HTML statistics of one head.

    ``gamma`` (1.0 = linear) overrides the one in ``heatmap_kwargs`` (colour options of
    :func:`attnbook.plots.heatmap <attnbook.plots.heatmaps.heatmap>`: gamma, robust, log, top_percent, cmap).
    """
    l = maps.layer_index(layer)
    h = check_index("head", head, maps.n_heads)
    b = check_index("sample", sample, maps.batch_size)
    if view not in VIEWS:
        raise bad_argument(InvalidInputError, "view", f"one of {list(VIEWS)}", view)
    kwargs = _colour_kwargs(heatmap_kwargs, gamma)
    if view == "head":
        fig = plots.head_map(maps, l, h, b, **kwargs)
    elif view == "layer":
        fig = plots.head_view(maps, l, b, **kwargs)
    else:
        fig = plots.model_view(maps, b, **kwargs)
    return fig, stats_table(maps, l, h, b, stats)


def _default_stats() -> Stats | None:
    try:
        from .metrics import head_summary
    except ImportError:
        return None
    return head_summary


def _cell(value: Any) -> str:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, bool) or value is None:
        return html.escape(str(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return "–" if math.isnan(value) else f"{float(value):.4g}"
    return html.escape(str(value))


def _table(caption: str, rows: list[Mapping[str, Any]], note: str = "") -> str:
    columns: list[str] = []
    for row in rows:
        columns += [str(k) for k in row if str(k) not in columns]
    style = 'style="border:1px solid #ddd;padding:2px 6px;text-align:right"'
    head = "".join(f"<th {style}>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td {style}>{_cell(dict((str(k), v) for k, v in row.items()).get(c, ''))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    extra = f'<div style="color:#666">{html.escape(note)}</div>' if note else ""
    return (
        f'<div style="overflow-x:auto"><table class="attnbook-stats" style="border-collapse:collapse;font-size:90%">'
        f"<caption style=\"text-align:left\"><b>statistics · {html.escape(caption)}</b></caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{extra}"
    )


def stats_table(maps: AttentionMaps, layer: int | str, head: int, sample: int = 0, stats: Stats | None = None) -> str:
    """HTML table of ``stats(maps.select(layers=layer, samples=sample, heads=head))``.

    ``stats`` defaults to :func:`attnbook.metrics.head_summary`. The 'layer' and 'head' entries of
    each row are replaced by the selected layer's name and head index (the selection renumbers them).
    """
    l = maps.layer_index(layer)
    h = check_index("head", head, maps.n_heads)
    b = check_index("sample", sample, maps.batch_size)
    caption = f"{maps.layer_names[l]} · head {h} · sample {b}"
    function = stats if stats is not None else _default_stats()
    if function is None:
        return _table(caption, [], "statistics unavailable: attnbook.metrics could not be imported")
    try:
        rows = [dict(row) for row in function(maps.select(layers=l, samples=b, heads=h))]
    except AttnbookError as exc:
        return _table(caption, [], f"statistics unavailable: {exc}")
    for row in rows:
        if "layer" in row:
            row["layer"] = maps.layer_names[l]
        if "head" in row:
            row["head"] = h
    return _table(caption, rows)


def figure_output(fig: Figure) -> dict[str, Any]:
    """A Jupyter ``display_data`` output holding ``fig`` as PNG (for ``Output.outputs``)."""
    png = base64.b64encode(plots.figure_png(fig)).decode("ascii")
    return {"output_type": "display_data", "data": {"image/png": png, "text/plain": repr(fig)}, "metadata": {}}


def message_output(message: str, error: bool = True) -> dict[str, Any]:
    """A ``display_data`` output showing ``message`` (red when ``error``)."""
    colour = ERROR_COLOUR if error else "#444"
    text = f'<div style="color:{colour}">{html.escape(message)}</div>'
    return {"output_type": "display_data", "data": {"text/html": text, "text/plain": message}, "metadata": {}}


def redraw(output: widgets.Output, info: widgets.HTML, draw: Callable[[], tuple[Figure, str]]) -> bool:
    """Show ``draw()``'s figure in ``output`` and its HTML in ``info``; an :class:`AttnbookError`
    becomes a red message (``info`` cleared). Returns whether a figure was drawn."""
    try:
        fig, text = draw()
    except AttnbookError as exc:
        output.outputs = (message_output(str(exc)),)
        info.value = ""
        return False
    show_figure(output, fig)
    info.value = text
    return True


def show_figure(output: widgets.Output, fig: Figure) -> None:
    """Replace what ``output`` shows by ``fig`` and release the figure."""
    try:
        output.outputs = (figure_output(fig),)
    finally:
        fig.clear()


# -- the maps explorer -------------------------------------------------------------------------
def _sample_options(maps: AttentionMaps) -> list[tuple[str, int]]:
    options = []
    for b in range(maps.batch_size):
        tokens = maps.tokens(b)
        preview = "" if tokens is None else ": " + " ".join(tokens[:6]) + (" …" if len(tokens) > 6 else "")
        options.append((f"sample {b}{preview}"[:60], b))
    return options


class MapsExplorer:
    """Widgets over one :class:`AttentionMaps`; display it (or ``.widget``) in a notebook.

    Child widgets: ``layer`` (Dropdown of layer names, value = index), ``head`` (IntSlider),
    ``sample`` (Dropdown, hidden for batch 1), ``view`` (ToggleButtons 'head'/'layer'/'model'),
    ``gamma`` (FloatSlider, 1 = linear colours), ``output`` (figure), ``stats_html`` (table).
    """

    def __init__(
        self,
        maps: AttentionMaps,
        *,
        stats: Stats | None = None,
        title: str | None = None,
        heatmap_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(maps, AttentionMaps):
            raise bad_argument(InvalidInputError, "maps", "an AttentionMaps", maps)
        if stats is not None and not callable(stats):
            raise bad_argument(InvalidInputError, "stats", "a callable AttentionMaps -> list[dict] or None", stats)
        self.maps = maps
        self.stats = stats
        self.heatmap_kwargs = dict(heatmap_kwargs or {})
        self.n_renders = 0
        self._build(title)
        for control in (self.layer, self.head, self.sample, self.view, self.gamma):
            control.observe(self._on_change, names="value")
        self.update()

    def _build(self, title: str | None) -> None:
        m = self.maps
        self.layer = widgets.Dropdown(options=[(name, i) for i, name in enumerate(m.layer_names)], value=0, description="layer")
        self.head = widgets.IntSlider(value=0, min=0, max=m.n_heads - 1, description="head", continuous_update=False)
        self.sample = widgets.Dropdown(options=_sample_options(m), value=0, description="sample")
        if m.batch_size == 1:
            self.sample.layout.display = "none"
        self.view = widgets.ToggleButtons(
            options=[("one head", "head"), ("all heads of the layer", "layer"), ("whole model", "model")],
            value="head",
            description="view",
        )
        gamma0 = float(self.heatmap_kwargs.get("gamma") or 1.0)
        self.gamma = widgets.FloatSlider(
            value=gamma0, min=0.1, max=2.0, step=0.05, description="colour γ", continuous_update=False,
            tooltip="power-law colour scale: below 1 brings out small weights, 1 = linear",
        )
        self.output = widgets.Output()
        self.stats_html = widgets.HTML()
        self.title = widgets.HTML(f"<h4>{html.escape(title)}</h4>" if title else "")
        controls = widgets.HBox([self.layer, self.head, self.sample], layout=widgets.Layout(flex_flow="row wrap"))
        self.widget = widgets.VBox(
            [self.title, controls, widgets.HBox([self.view, self.gamma], layout=widgets.Layout(flex_flow="row wrap")),
             self.output, self.stats_html]
        )

    def render(self) -> tuple[Figure, str]:
        """The figure and statistics HTML for the current widget values."""
        return render(
            self.maps, self.layer.value, self.head.value, self.sample.value, self.view.value,
            gamma=self.gamma.value, stats=self.stats, heatmap_kwargs=self.heatmap_kwargs,
        )

    def update(self) -> None:
        """Redraw the output and the statistics for the current widget values."""
        if redraw(self.output, self.stats_html, self.render):
            self.n_renders += 1

    def _on_change(self, change: Mapping[str, Any]) -> None:
        self.update()

    def close(self) -> None:
        """Close every widget of the explorer (frees their comms)."""
        for child in (self.title, self.layer, self.head, self.sample, self.view, self.gamma, self.output, self.stats_html):
            child.close()
        for box in self.widget.children:
            if isinstance(box, widgets.Box):
                box.close()
        self.widget.close()

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def maps(
    maps: AttentionMaps,
    *,
    stats: Stats | None = None,
    title: str | None = None,
    heatmap_kwargs: Mapping[str, Any] | None = None,
) -> MapsExplorer:
    """The generic attention-map explorer (layer, head, sample, view, colour; stats of the head).

    ``stats(selection) -> list[dict]`` defaults to :func:`attnbook.metrics.head_summary`;
    ``heatmap_kwargs``: colour options passed to every view.
    """
    return MapsExplorer(maps, stats=stats, title=title, heatmap_kwargs=heatmap_kwargs)

