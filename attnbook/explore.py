"""Interactive explorers (ipywidgets 8) that every chapter reuses.

* :func:`maps` -> :class:`MapsExplorer`: layer / head / sample / view / colour controls over one
  :class:`~attnbook.maps.AttentionMaps`, a figure and a table of the selected head's statistics.
* :func:`text` -> :class:`TextExplorer`: type or upload text, press *Analyse*, explore the maps.

All drawing goes through :func:`render` (a plain function, testable without a kernel). Figures
are put into the ``Output`` widget as PNG ``display_data`` (``output.outputs = ...``), so they show
in a live kernel, in saved widget state (the built book) and in tests alike.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from . import checks, plots
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
    :func:`attnbook.plots.heatmap`: gamma, robust, log, top_percent, cmap).
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
    _show(output, fig)
    info.value = text
    return True


def _show(output: widgets.Output, fig: Figure) -> None:
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


# -- the text explorer -------------------------------------------------------------------------
def _uploaded_file(value: Any) -> tuple[str, bytes] | None:
    """(name, content) of the first file in a FileUpload value (ipywidgets 8 tuple, or 7 dict)."""
    items = list(value.values()) if isinstance(value, Mapping) else list(value or ())
    if not items:
        return None
    item = items[0]
    return str(item.get("name", "file")), bytes(item["content"])


class TextExplorer:
    """Text area + .txt upload + *Analyse* button; shows a :class:`MapsExplorer` of the result.

    Child widgets: ``textarea``, ``upload``, ``button``, ``message`` (HTML: notes and red errors),
    ``result`` (VBox holding the explorer and the token highlight); ``explorer`` is the current
    :class:`MapsExplorer` (None before the first successful analysis).
    """

    def __init__(
        self,
        analyse: Callable[[str], AttentionMaps],
        *,
        initial_text: str = "",
        importance: Callable[[AttentionMaps], Sequence[float]] | None = None,
        stats: Stats | None = None,
        max_chars: int = 2000,
        title: str | None = None,
        heatmap_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        for name, function in (("analyse", analyse), ("importance", importance), ("stats", stats)):
            if function is not None and not callable(function):
                raise bad_argument(InvalidInputError, name, "a callable", function)
        if analyse is None:
            raise bad_argument(InvalidInputError, "analyse", "a callable str -> AttentionMaps", analyse)
        if isinstance(max_chars, bool) or not isinstance(max_chars, numbers.Integral) or max_chars < 1:
            raise bad_argument(InvalidInputError, "max_chars", "a positive integer", max_chars)
        self._analyse, self.importance, self.stats = analyse, importance, stats
        self.max_chars, self.title, self.heatmap_kwargs = int(max_chars), title, heatmap_kwargs
        self.explorer: MapsExplorer | None = None
        self.highlight: widgets.Output | None = None
        self._build(str(initial_text))
        if str(initial_text).strip():
            self.analyse()

    def _build(self, initial_text: str) -> None:
        self.textarea = widgets.Textarea(
            value=initial_text, placeholder="Type or paste text here, or upload a .txt file",
            rows=5, layout=widgets.Layout(width="100%"),
        )
        self.upload = widgets.FileUpload(accept=".txt", multiple=False, description="Upload .txt")
        self.button = widgets.Button(description="Analyse", button_style="primary", icon="play")
        self.message = widgets.HTML()
        self.result = widgets.VBox()
        self.upload.observe(self._on_upload, names="value")
        self.button.on_click(lambda _button: self.analyse())
        self.widget = widgets.VBox([self.textarea, widgets.HBox([self.upload, self.button]), self.message, self.result])

    def say(self, message: str, error: bool = False) -> None:
        """Show ``message`` under the buttons (red when ``error``; '' clears it)."""
        colour = ERROR_COLOUR if error else "#444"
        self.message.value = f'<div style="color:{colour}">{html.escape(message)}</div>' if message else ""

    def _on_upload(self, change: Mapping[str, Any]) -> None:
        upload = _uploaded_file(change["new"])
        if upload is None:
            return
        name, content = upload
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.say(f"{name}: expected UTF-8 text, but the file could not be decoded as UTF-8.", error=True)
        else:
            self.textarea.value = text
            self.say(f"Loaded {name} ({len(text)} characters). Press Analyse.")
        self.upload.value = ()  # so that the same file can be uploaded again

    def _token_scores(self, result: AttentionMaps) -> widgets.Output:
        scores = [float(s) for s in self.importance(result)]
        tokens = result.tokens(0) or [f"#{j}" for j in range(result.n_keys)]
        if len(scores) != len(tokens):  # scores may cover only the unpadded keys
            valid = result.key_mask()[0].any(0).tolist()
            tokens = [t for t, keep in zip(tokens, valid) if keep] if len(scores) == sum(valid) else tokens
        out = widgets.Output()
        _show(out, plots.token_highlight(tokens, scores, title="token importance · sample 0"))
        return out

    def analyse(self, text: str | None = None) -> MapsExplorer | None:
        """Analyse ``text`` (default: the text area) and show the result; None after an error."""
        text = self.textarea.value if text is None else text
        if not text.strip():
            self.say("Type or upload some text first.", error=True)
            return None
        note = f"Only the first {self.max_chars} characters were analysed." if len(text) > self.max_chars else ""
        explorer = highlight = None
        try:
            result = self._analyse(text[: self.max_chars])
            if not isinstance(result, AttentionMaps):
                raise bad_argument(InvalidInputError, "analyse", "a function returning AttentionMaps", type(result).__name__, raw=True)
            explorer = MapsExplorer(result, stats=self.stats, title=self.title, heatmap_kwargs=self.heatmap_kwargs)
            highlight = self._token_scores(result) if self.importance is not None else None
        except AttnbookError as exc:
            if explorer is not None:
                explorer.close()
            self._replace(None, None)
            self.say(str(exc), error=True)
            return None
        self._replace(explorer, highlight)
        self.say(note)
        return explorer

    def _replace(self, explorer: MapsExplorer | None, highlight: widgets.Output | None) -> None:
        if self.explorer is not None:
            self.explorer.close()
        if self.highlight is not None:
            self.highlight.close()
        self.explorer, self.highlight = explorer, highlight
        self.result.children = tuple(w for w in (highlight, None if explorer is None else explorer.widget) if w is not None)

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def text(
    analyse: Callable[[str], AttentionMaps],
    *,
    initial_text: str = "",
    importance: Callable[[AttentionMaps], Sequence[float]] | None = None,
    stats: Stats | None = None,
    max_chars: int = 2000,
    title: str | None = None,
    heatmap_kwargs: Mapping[str, Any] | None = None,
) -> TextExplorer:
    """Explorer for text a reader types or uploads: ``analyse(text)`` -> maps explorer (+ token scores).

    Errors (:class:`~attnbook.errors.AttnbookError`) raised by ``analyse`` or ``importance`` are
    shown as a red message. Runs once at construction when ``initial_text`` is not blank.
    """
    return TextExplorer(
        analyse, initial_text=initial_text, importance=importance, stats=stats,
        max_chars=max_chars, title=title, heatmap_kwargs=heatmap_kwargs,
    )


# -- the time-series explorer ------------------------------------------------------------------
import numpy as np  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402


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

    Left: :func:`attnbook.plots.series_attention` of window ``sample`` with the weights
    ``maps.weights[layer, sample, head, query]`` (and target / forecast when the view has them);
    right: :func:`attnbook.plots.head_map` of that head with the query row outlined. The HTML
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
    plots.series_attention(
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
