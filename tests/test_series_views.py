"""Tests of the time-series figures (plots) and the series explorer (explore), without a kernel."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from attnbook import plots  # noqa: E402
from attnbook.errors import InvalidInputError, OutOfRangeError  # noqa: E402
from attnbook.timeseries import explorer as series_explorer  # noqa: E402
from attnbook.timeseries.explorer import SeriesView  # noqa: E402
from attnbook.timeseries.figures import series_attention  # noqa: E402
from attnbook.maps import AttentionMaps  # noqa: E402
from attnbook.train import History  # noqa: E402

WINDOW, HORIZON = 10, 4


def _close(fig: Figure) -> None:
    plt.close(fig)
    fig.clear()


def _twin(fig: Figure):
    """The axes holding the attention bars (its y label is 'attention weight')."""
    (ax,) = [a for a in fig.axes if a.get_ylabel() == "attention weight" and a.containers]  # not the colorbar
    return ax


def _value_axes(fig: Figure):
    (ax,) = [a for a in fig.axes if a.get_ylabel() == "value"]
    return ax


def _bar_heights(ax) -> np.ndarray:
    (container,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    return np.array([p.get_height() for p in container.patches])


def _line(ax, label: str):
    (line,) = [x for x in ax.lines if x.get_label() == label]
    return line


def _history(scale: float, best: int) -> History:
    steps = [0, 10, 20, 30]
    val = [scale * v for v in (1.0, 0.5, 0.3, 0.4)]
    return History(steps=steps, train_loss=[math.nan, 0.8 * scale, 0.4 * scale, 0.3 * scale], val_loss=val,
                   best_step=steps[best], best_val=val[best])


def make_view(seed: int, layers: int = 2, batch: int = 2, heads: int = 2, k: int = WINDOW, horizon: int | None = HORIZON):
    gen = torch.Generator().manual_seed(seed)
    weights = torch.softmax(torch.randn(layers, batch, heads, k, k, generator=gen) * 2, -1)
    rng = np.random.default_rng(seed)
    maps = AttentionMaps(weights, layer_names=tuple(f"block{i}" for i in range(layers)))
    if horizon is None:
        return SeriesView(maps, rng.normal(size=(batch, k)))
    return SeriesView(maps, rng.normal(size=(batch, k)), rng.normal(size=(batch, horizon)), rng.normal(size=(batch, horizon)))


# -- training_curves ---------------------------------------------------------------------------
def test_training_curves_two_runs():
    fig = plots.training_curves({"small": _history(1.0, 2), "large": _history(2.0, 1)}, title="runs")
    ax = fig.axes[0]
    solid = [x for x in ax.lines if x.get_linestyle() == "-"]
    dashed = [x for x in ax.lines if x.get_linestyle() == "--"]
    assert [x.get_label() for x in solid] == ["small", "large"]
    assert len(dashed) == 2
    assert all(len(x.get_xdata()) == 3 and x.get_xdata()[0] == 10 for x in dashed)  # the NaN at step 0 is skipped
    assert solid[0].get_color() != solid[1].get_color()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["small", "large"] and {"validation", "training", "best step"} <= set(legend)
    stars = np.concatenate([c.get_offsets() for c in ax.collections])
    np.testing.assert_allclose(stars, [[20, 0.3], [10, 1.0]])
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("runs", "step", "MSE (normalised units)")
    assert ax.get_yscale() == "log"
    _close(fig)


def test_training_curves_single_history_and_errors():
    fig = plots.training_curves(_history(1.0, 2), log=False, ylabel="loss")
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "loss" and ax.get_title() == "training curves"
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "run"
    _close(fig)
    with pytest.raises(InvalidInputError, match="^histories"):
        plots.training_curves({"a": [1, 2, 3]})
    bad = _history(1.0, 2)
    bad.val_loss = bad.val_loss[:2]
    with pytest.raises(InvalidInputError, match=r"histories\['a'\].val_loss"):
        plots.training_curves({"a": bad})
    zero = _history(1.0, 2)
    zero.val_loss[1] = 0.0
    with pytest.raises(InvalidInputError, match="^log"):
        plots.training_curves(zero)


# -- series_overview ---------------------------------------------------------------------------
def test_series_overview_panels():
    rng = np.random.default_rng(0)
    series = {f"gen{i}": rng.normal(size=50) for i in range(4)}
    fig = plots.series_overview(series, families={"gen0": "noise", "gen1": "trend"}, n=20, ncols=3, title="all")
    assert fig.get_suptitle() == "all"
    assert len(fig.axes) == 4  # the two unused cells of the 2x3 grid are removed
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["gen0 (noise)", "gen1 (trend)", "gen2", "gen3"]
    for ax, values in zip(fig.axes, series.values()):
        (line,) = ax.lines
        np.testing.assert_allclose(line.get_ydata(), values[:20])
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("time step", "value")
    _close(fig)
    fig = plots.series_overview(series)
    assert "4 series" in fig.get_suptitle()
    _close(fig)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"series": {}}, "series"), ({"series": {"a": [1.0, np.nan]}}, r"series\['a'\]"),
     ({"series": {"a": [1.0]}, "n": 0}, "n"), ({"series": {"a": [1.0]}, "ncols": 0}, "ncols")],
)
def test_series_overview_errors(kwargs, argument):
    with pytest.raises(InvalidInputError, match=f"^{argument}:"):
        plots.series_overview(**kwargs)


# -- series_attention --------------------------------------------------------------------------
def test_series_attention_bars_lines_and_labels():
    rng = np.random.default_rng(1)
    window, weights = rng.normal(size=WINDOW), rng.dirichlet(np.ones(WINDOW))
    target, forecast = rng.normal(size=HORIZON), rng.normal(size=HORIZON)
    fig = series_attention(window, weights, target=target, forecast=forecast, query=6, title="one window")
    ax, twin = _value_axes(fig), _twin(fig)
    np.testing.assert_allclose(_bar_heights(twin), weights)
    np.testing.assert_allclose(_line(ax, "input window").get_xdata(), np.arange(WINDOW))
    np.testing.assert_allclose(_line(ax, "input window").get_ydata(), window)
    truth, guess = _line(ax, "true future"), _line(ax, "forecast")
    np.testing.assert_allclose(truth.get_xdata(), np.arange(WINDOW, WINDOW + HORIZON))
    np.testing.assert_allclose(guess.get_xdata(), np.arange(WINDOW, WINDOW + HORIZON))
    np.testing.assert_allclose(truth.get_ydata(), target)
    assert guess.get_linestyle() == "--" and truth.get_linestyle() == "-"
    marker = _line(ax, "query t=6")
    assert list(marker.get_xdata()) == [6, 6]
    assert ax.get_xlabel() == "time step (input window, then horizon)"
    assert ax.get_title() == "one window"
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"input window", "true future", "forecast", "query t=6", "attention weight (query 6)"} <= legend
    _close(fig)


def test_series_attention_defaults_to_last_query_without_horizon():
    fig = series_attention(np.arange(5.0), [0.1, 0.1, 0.2, 0.2, 0.4])
    ax = _value_axes(fig)
    assert [x.get_label() for x in ax.lines] == ["input window", "query t=4"]
    assert "query 4" in ax.get_title()
    _close(fig)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"weights": [0.5, 0.5]}, "weights"),
        ({"window": [0.0, np.nan, 1.0]}, "window"),
        ({"weights": [0.2, np.inf, 0.3]}, "weights"),
        ({"query": 3}, "query"),
        ({"query": -4}, "query"),
        ({"query": 1.5}, "query"),
        ({"target": [1.0, np.nan]}, "target"),
        ({"target": [1.0, 2.0], "forecast": [1.0]}, "forecast"),
        ({"window": [], "weights": []}, "window"),
    ],
)
def test_series_attention_bad_input(kwargs, argument):
    args = {"window": [1.0, 2.0, 3.0], "weights": [0.2, 0.3, 0.5], **kwargs}
    with pytest.raises(InvalidInputError, match=f"^{argument}:"):
        series_attention(**args)


# -- grouped_bars ------------------------------------------------------------------------------
def test_grouped_bars():
    groups = [f"generator_{i}" for i in range(9)]
    values = {"forecaster": np.linspace(0.2, 1.0, 9), "best baseline": np.linspace(0.3, 0.9, 9)}
    fig = plots.grouped_bars(values, errors={"forecaster": np.full(9, 0.05)}, group_labels=groups,
                             title="MSE by generator", ylabel="MSE", reference=1.0)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [len(c.patches) for c in bars] == [9, 9]
    np.testing.assert_allclose([p.get_height() for p in bars[1].patches], values["best baseline"])
    assert bars[0].patches[0].get_facecolor() != bars[1].patches[0].get_facecolor()
    assert [t.get_text() for t in ax.get_xticklabels()] == groups
    assert all(t.get_rotation() > 0 for t in ax.get_xticklabels())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["forecaster", "best baseline", "reference 1"]
    assert len(ax.containers) == 3  # two bar sets + the error bars of the first
    assert (ax.get_title(), ax.get_ylabel()) == ("MSE by generator", "MSE")
    (reference,) = ax.lines[-1:]
    assert list(reference.get_ydata()) == [1.0, 1.0]
    _close(fig)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"values": {"a": [1.0, 2.0, 3.0]}}, r"values\['a'\]"),
        ({"group_labels": "xy"}, "group_labels"),
        ({"errors": {"c": [0.1, 0.1]}}, "errors"),
        ({"errors": {"a": [0.1, -0.1]}}, r"errors\['a'\]"),
        ({"reference": math.inf}, "reference"),
        ({"values": {}}, "values"),
    ],
)
def test_grouped_bars_bad_input(kwargs, argument):
    args = {"values": {"a": [1.0, 2.0], "b": [2.0, 1.0]}, "group_labels": ["x", "y"], **kwargs}
    with pytest.raises(InvalidInputError, match=f"^{argument}:"):
        plots.grouped_bars(**args)


# -- SeriesView, render_series and the explorer ------------------------------------------------
def test_series_view_validates_shapes():
    view = make_view(0)
    assert view.horizon == HORIZON and view.inputs.dtype == np.float64
    assert make_view(0, horizon=None).horizon == 0
    with pytest.raises(InvalidInputError, match="^inputs:"):
        SeriesView(view.maps, np.zeros((2, WINDOW + 1)))
    with pytest.raises(InvalidInputError, match="^targets:"):
        SeriesView(view.maps, view.inputs, np.zeros((3, HORIZON)))
    with pytest.raises(InvalidInputError, match="^forecasts:"):
        SeriesView(view.maps, view.inputs, np.zeros((2, HORIZON)), np.zeros((2, HORIZON + 1)))
    with pytest.raises(InvalidInputError, match="^maps:"):
        SeriesView(view.inputs, view.inputs)


def test_render_series_bars_equal_the_selected_row():
    view = make_view(3)
    fig, info = series_explorer.render_series(view, 1, 0, sample=1, query=7, name="garch")
    np.testing.assert_allclose(_bar_heights(_twin(fig)), view.maps.weights[1, 1, 0, 7].double().numpy(), rtol=1e-6)
    ax = _value_axes(fig)
    np.testing.assert_allclose(_line(ax, "input window").get_ydata(), view.inputs[1])
    np.testing.assert_allclose(_line(ax, "true future").get_xdata(), np.arange(WINDOW, WINDOW + HORIZON))
    np.testing.assert_allclose(_line(ax, "forecast").get_ydata(), view.forecasts[1])
    assert ax.get_title().startswith("garch · block1 · head 0 · window 1")
    assert sum(len(a.images) for a in fig.axes) == 1  # the head's map beside the series
    row = view.maps.weights[1, 1, 0, 7].double().numpy()
    entropy = -(row * np.log(row)).sum()
    assert "query 7" in info and f"entropy {entropy:.3f}" in info and f"lag {7 - int(row.argmax())}" in info
    _close(fig)
    with pytest.raises(OutOfRangeError, match="^query"):
        series_explorer.render_series(view, 0, 0, 0, WINDOW)


def test_series_explorer_rerenders_on_changes():
    views = {"ar1": make_view(0), "walk": make_view(1, layers=1, batch=3, heads=3, k=8, horizon=None)}
    ex = series_explorer.series(views, title="forecaster attention")
    try:
        assert ex.n_renders == 1 and ex.query.value == WINDOW - 1
        assert "query 9" in ex.info.value and "ar1" in ex.info.value
        assert len(ex.output.outputs) == 1 and "image/png" in ex.output.outputs[0]["data"]

        ex.layer.value, ex.head.value = 1, 1
        assert ex.n_renders == 3
        ex.generator.value = "walk"  # ranges follow the new view; one re-render
        assert ex.n_renders == 4
        assert (ex.layer.value, len(ex.layer.options)) == (0, 1)
        assert (ex.head.max, ex.sample.max, ex.query.max, ex.query.value) == (2, 2, 7, 7)
        assert "walk" in ex.info.value and "query 7" in ex.info.value

        ex.sample.value = 2
        ex.query.value = 3
        assert ex.n_renders == 6
        assert "window 2" in ex.info.value and "query 3" in ex.info.value
        fig, _ = ex.render()
        np.testing.assert_allclose(_bar_heights(_twin(fig)), views["walk"].maps.weights[0, 2, 1, 3].double().numpy(), rtol=1e-6)
        _close(fig)

        ex.generator.value = "ar1"  # values kept where they fit
        assert (ex.sample.value, ex.query.value, ex.head.value, ex.sample.max) == (1, 3, 1, 1)
        assert ex.n_renders == 7
        assert "_ipython_display_" in dir(ex) and "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()
    finally:
        ex.close()


def test_series_explorer_rejects_bad_views():
    with pytest.raises(InvalidInputError, match="^views:"):
        series_explorer.series({})
    with pytest.raises(InvalidInputError, match=r"^views\['a'\]:"):
        series_explorer.series({"a": make_view(0).maps})


def test_generators_view_embeds_each_process_with_its_inputs():
    from attnbook.timeseries.explorer import generators_view
    from attnbook.views import read

    views = {"AR1": make_view(0), "Sine": make_view(1)}
    data = read(generators_view(views, title="t").to_html())[0]
    assert data["facets"] == [{"name": "generator", "values": ["AR1", "Sine"]}]
    for entry, view in zip(data["entries"], views.values()):
        assert np.allclose(entry["samples"][1]["series"], view.inputs[1], rtol=1e-4, atol=1e-6)
        assert np.abs(entry["weights"][1] - view.maps.weights[:, 1].numpy()).max() < 0.005
        assert [s["label"] for s in entry["samples"]] == ["window 0", "window 1"]
    with pytest.raises(InvalidInputError, match="views"):
        generators_view({})
    with pytest.raises(InvalidInputError, match="SeriesView"):
        generators_view({"AR1": views["AR1"].maps})
