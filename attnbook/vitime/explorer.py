"""Signal builder: up to three harmonics (amplitude and period sliders) → one head's time map and
lag profile, on a trained ViTime.

:func:`render_signal` draws (no widgets, testable); :class:`SignalExplorer` puts sliders around
it (``amp1 … amp3`` with amplitude 0 switching a harmonic off, ``period1 … period3`` in samples,
``layer``, ``head``). The model runs once per signal change; switching layer or head reuses the
analysis.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from ..errors import AttnbookError, InvalidInputError, bad_argument
from ..explore import message_output, redraw
from ..maps import check_index
from . import lags
from .harmonics import PERIOD_63, Analysis, Harmonic, analyse, signal
from ..views import AttentionView, LiveControl
from .model import ViTime

__all__ = ["render_signal", "SignalExplorer", "signals", "presets_view", "SIGNAL_LIVE"]

MAX_HARMONICS = 3


def _harmonics(components: Sequence[tuple[float, float]]) -> list[Harmonic]:
    if isinstance(components, (str, bytes)) or not isinstance(components, Sequence) or not 1 <= len(components) <= MAX_HARMONICS:
        raise bad_argument(InvalidInputError, "components", f"1 to {MAX_HARMONICS} (amplitude, period) pairs", components)
    out = [Harmonic(float(a), float(p)) for a, p in components if a != 0]
    if not out:
        raise bad_argument(InvalidInputError, "components", "at least one harmonic with a non-zero amplitude", components)
    return out


def render_signal(model: ViTime, analysis: Analysis, layer: int | str, head: int, *, title: str = "") -> tuple[Any, str]:
    """The seed's combined figure for one head of ``analysis`` and an HTML line with its period
    contrast and highest lag peaks."""
    li = analysis.maps.layer_index(layer)
    hi = check_index("head", head, analysis.maps.n_heads)
    spp = analysis.samples_per_patch
    name = analysis.maps.layer_names[li]
    fig = lags.correlation_figure(
        analysis.time_maps.weights[li, 0, hi], analysis.profiles[li, hi], spp, title=title or f"{name}, head {hi}",
        true_periods=[analysis.period * k for k in (1, 2, 3)],
    )
    peaks = ", ".join(f"{p:.0f}" for p in analysis.peaks(li, hi))
    info = (f"{html.escape(name)} head {hi}: contrast at {analysis.period:.1f} samples "
            f"<b>{analysis.head_contrast(li, hi):.2f}</b>; highest lag peaks (samples): {peaks}")
    return fig, info


class SignalExplorer:
    """Sliders for up to three harmonics, the layer and the head; display it (or ``.widget``).

    The contrast is measured at the period of the first harmonic (amplitude ≠ 0); the input is
    ``length`` samples with a horizon of ``horizon``.
    """

    def __init__(self, model: ViTime, *, length: int = 512, horizon: int = 720,
                 components: Sequence[tuple[float, float]] = ((1.0, PERIOD_63), (1.0, PERIOD_63 / 2), (0.0, 80.0)),
                 title: str | None = None) -> None:
        if not isinstance(model, ViTime):
            raise bad_argument(InvalidInputError, "model", "a ViTime model", type(model).__name__, raw=True)
        if len(components) != MAX_HARMONICS:
            raise bad_argument(InvalidInputError, "components", f"{MAX_HARMONICS} (amplitude, period) pairs", components)
        _harmonics(components)
        self.model, self.length, self.horizon = model, length, horizon
        self.analysis: Analysis | None = None
        self.n_analyses = 0
        self.n_renders = 0
        slider = dict(continuous_update=False, readout_format=".2f")
        self.amps = [widgets.FloatSlider(value=a, min=0.0, max=2.0, step=0.05, description=f"amp {k + 1}", **slider)
                     for k, (a, _) in enumerate(components)]
        self.periods = [widgets.FloatSlider(value=p, min=8.0, max=160.0, step=0.5, description=f"period {k + 1}",
                                            continuous_update=False, readout_format=".1f")
                        for k, (_, p) in enumerate(components)]
        names = [(n, i) for i, n in enumerate(self._layer_names())]
        self.layer = widgets.Dropdown(options=names, value=0, description="layer")
        self.head = widgets.IntSlider(value=0, min=0, max=model.config.num_heads - 1, description="head", continuous_update=False)
        self.output = widgets.Output()
        self.info = widgets.HTML()
        self.title = widgets.HTML(f"<h4>{html.escape(title)}</h4>" if title else "")
        wrap = widgets.Layout(flex_flow="row wrap")
        self._rows = tuple(widgets.HBox([a, p], layout=wrap) for a, p in zip(self.amps, self.periods))
        self._select = widgets.HBox([self.layer, self.head], layout=wrap)
        self.widget = widgets.VBox([self.title, *self._rows, self._select, self.output, self.info])
        for w in (*self.amps, *self.periods):
            w.observe(self._on_signal, names="value")
        for w in (self.layer, self.head):
            w.observe(self._on_select, names="value")
        self._on_signal(None)

    def _layer_names(self) -> list[str]:
        c = self.model.config
        return [f"model.blocks.{i}.attn" for i in range(c.depth)] + [f"model.decoder_blocks.{j}.attn" for j in range(c.decoder_depth)]

    def components(self) -> list[tuple[float, float]]:
        return [(a.value, p.value) for a, p in zip(self.amps, self.periods)]

    def _on_signal(self, _change: Mapping[str, Any] | None) -> None:
        try:
            harmonics = _harmonics(self.components())
            x = signal(harmonics, self.length)
            self.analysis = analyse(self.model, x, self.horizon, period=harmonics[0].period)
            self.n_analyses += 1
        except AttnbookError as exc:
            self.analysis = None
            self.output.outputs = (message_output(str(exc)),)
            self.info.value = ""
            return
        self.update()

    def _on_select(self, _change: Mapping[str, Any]) -> None:
        self.update()

    def update(self) -> None:
        """Redraw for the current layer and head (the analysis of the current signal)."""
        if self.analysis is None:
            return
        analysis = self.analysis
        draw = lambda: render_signal(self.model, analysis, self.layer.value, min(self.head.value, analysis.maps.n_heads - 1),  # noqa: E731
                                     title=" + ".join(h.describe() for h in _harmonics(self.components())))
        if redraw(self.output, self.info, draw):
            self.n_renders += 1

    def close(self) -> None:
        for child in (*self.amps, *self.periods, self.layer, self.head, self.output, self.info, self.title, *self._rows,
                      self._select, self.widget):
            child.close()

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def signals(model: ViTime, **kwargs: Any) -> SignalExplorer:
    """Explorer: build a signal from up to three harmonics, see each head's time map and lag profile."""
    return SignalExplorer(model, **kwargs)


#: what chapter 3's explorer does that the page cannot: a new signal needs the model
SIGNAL_LIVE = (LiveControl("Amplitude and period of each harmonic", "range"),)


def presets_view(model: ViTime, presets: Mapping[str, Sequence[tuple[float, float]]], *, length: int = 512, horizon: int = 720,
                 title: str = "", caption: str = "") -> AttentionView:
    """The static view of the time maps (every layer and head) for each signal preset (facet
    ``signal``): ``presets[name]`` is 1–3 (amplitude, period) pairs; each head's note gives its
    period contrast at the first harmonic's period and its highest lag peaks. A preset may also be a
    list of :class:`~attnbook.vitime.harmonics.Harmonic` (phases and cosines kept)."""
    if not isinstance(model, ViTime):
        raise bad_argument(InvalidInputError, "model", "a ViTime model", type(model).__name__, raw=True)
    if not isinstance(presets, Mapping) or not presets:
        raise bad_argument(InvalidInputError, "presets", "a non-empty mapping name -> (amplitude, period) pairs", presets)
    view = AttentionView(title, caption=caption, facets=("signal",), live=SIGNAL_LIVE,
                         live_hint="build your own signal with the sliders of the explorer below, in JupyterLab")
    for name, components in presets.items():
        harmonics = list(components) if components and all(isinstance(c, Harmonic) for c in components) else _harmonics(components)
        a = analyse(model, signal(harmonics, length), horizon, period=harmonics[0].period)
        L, H = a.time_maps.n_layers, a.time_maps.n_heads
        notes = [[f"contrast at {a.period:.1f} samples {a.head_contrast(l, h):.2f}; lag peaks (samples) "
                  + ", ".join(f"{p:.0f}" for p in a.peaks(l, h)) for h in range(H)] for l in range(L)]
        parts = " + ".join(x.describe() for x in harmonics)
        view.add(a.time_maps, note=f"input: {parts}; time maps (query and key: the canvas's columns, labelled by their first sample)",
                 head_notes=notes, signal=str(name))
    return view
