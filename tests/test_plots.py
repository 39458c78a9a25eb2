"""Tests of attnbook.plots: every function returns a labelled Figure; bad input -> typed errors."""

from __future__ import annotations

import io
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from attnbook import plots  # noqa: E402
from attnbook.plots import legibility  # noqa: E402
from attnbook.errors import InvalidInputError, OutOfRangeError  # noqa: E402
from attnbook.maps import AttentionMaps  # noqa: E402

L, B, H, Q, K = 2, 2, 3, 5, 5
WORDS = ["the", "cat", "sat", "on", "mats"]


@pytest.fixture
def maps() -> AttentionMaps:
    """Random maps; sample 1 has its last two tokens padded (keys and queries)."""
    gen = torch.Generator().manual_seed(0)
    mask = torch.ones(B, Q, K, dtype=torch.bool)
    mask[1, :, 3:] = False
    mask[1, 3:, :] = False
    logits = torch.randn(L, B, H, Q, K, generator=gen).masked_fill(~mask[None, :, None], float("-inf"))
    weights = torch.softmax(logits, -1).nan_to_num(0.0)
    return AttentionMaps(weights, query_labels=[WORDS, WORDS], key_labels=[WORDS, WORDS], mask=mask)


@pytest.fixture
def attn() -> np.ndarray:
    return np.random.default_rng(0).dirichlet(np.ones(6), size=4)  # (4, 6), rows sum to 1


def _close(fig: Figure) -> None:
    plt.close(fig)
    fig.clear()


def _image_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


# -- heatmap -----------------------------------------------------------------------------------
def test_heatmap_returns_labelled_figure(attn):
    fig = plots.heatmap(attn, key_labels=list("abcdef"), query_labels=list("wxyz"), title="t")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # heatmap + colorbar
    ax = fig.axes[0]
    assert len(ax.images) == 1
    assert ax.get_title() == "t"
    assert "key" in ax.get_xlabel() and "query" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcdef")
    assert [t.get_text() for t in ax.get_yticklabels()] == list("wxyz")
    assert fig.axes[1].get_ylabel() == "attention weight"
    _close(fig)


def test_heatmap_default_title_and_tensor_input(attn):
    fig = plots.heatmap(torch.tensor(attn, dtype=torch.float32))
    assert fig.axes[0].get_title()
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), attn, rtol=1e-6)
    _close(fig)


def test_heatmap_thins_long_tick_labels():
    n = 200
    fig = plots.heatmap(np.full((n, n), 1 / n), key_labels=[f"t{i}" for i in range(n)], query_labels=[f"t{i}" for i in range(n)])
    ax = fig.axes[0]
    assert 1 < len(ax.get_xticks()) <= plots.MAX_TICKS
    assert 1 < len(ax.get_yticks()) <= plots.MAX_TICKS
    _close(fig)


def test_heatmap_draws_into_given_axes(attn):
    fig, ax = plt.subplots()
    assert plots.heatmap(attn, ax=ax) is fig
    assert len(ax.images) == 1
    plt.close(fig)


def test_heatmap_mask_cells_are_masked(attn):
    mask = np.ones_like(attn, dtype=bool)
    mask[:, 4:] = False
    data = attn.copy()
    data[:, 4:] = 0.0
    fig = plots.heatmap(data, mask=mask)
    image = fig.axes[0].images[0]
    np.testing.assert_array_equal(np.ma.getmaskarray(image.get_array()), ~mask)
    assert mcolors.same_color(image.cmap.get_bad(), "lightgrey")
    _close(fig)


def test_heatmap_gamma_uses_power_norm(attn):
    fig = plots.heatmap(attn, gamma=0.5)
    norm = fig.axes[0].images[0].norm
    assert isinstance(norm, mcolors.PowerNorm) and norm.gamma == 0.5
    _close(fig)


def test_heatmap_log_uses_log_norm_with_floor(attn):
    data = attn.copy()
    data[0, 0] = 0.0  # a zero must not break the log scale
    fig = plots.heatmap(data, log=True)
    image = fig.axes[0].images[0]
    assert isinstance(image.norm, mcolors.LogNorm)
    assert image.norm.vmin > 0
    assert np.ma.getdata(image.get_array()).min() >= image.norm.vmin
    _close(fig)


def test_heatmap_robust_clips_to_percentiles(attn):
    fig = plots.heatmap(attn, robust=(10, 90))
    norm = fig.axes[0].images[0].norm
    assert norm.vmin == pytest.approx(np.percentile(attn, 10))
    assert norm.vmax == pytest.approx(np.percentile(attn, 90))
    _close(fig)


def test_heatmap_linear_scale_starts_at_zero(attn):
    fig = plots.heatmap(attn)
    norm = fig.axes[0].images[0].norm
    assert norm.vmin == 0 and norm.vmax == pytest.approx(attn.max())
    _close(fig)


def test_heatmap_top_percent_outlines_the_top_cells():
    data = np.array([[0.1, 0.9], [0.5, 0.5]])
    fig = plots.heatmap(data, top_percent=25)  # one cell of four
    ax = fig.axes[0]
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines) == 1
    segments = {tuple(map(tuple, s)) for s in lines[0].get_segments()}
    assert len(segments) == 4  # the four edges of cell (0, 1)
    xs = {x for seg in segments for x, _ in seg}
    ys = {y for seg in segments for _, y in seg}
    assert xs == {0.5, 1.5} and ys == {-0.5, 0.5}
    _close(fig)


def test_heatmap_without_top_percent_draws_no_contour(attn):
    fig = plots.heatmap(attn)
    assert not fig.axes[0].collections
    _close(fig)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"attn": np.ones((2, 2, 2))}, "attn"),
        ({"attn": np.array([[0.5, np.nan]])}, "attn"),
        ({"attn": np.array([[0.5, np.inf]])}, "attn"),
        ({"attn": "not numbers"}, "attn"),
        ({"gamma": 0}, "gamma"),
        ({"gamma": -1.0}, "gamma"),
        ({"gamma": float("nan")}, "gamma"),
        ({"robust": (50, 10)}, "robust"),
        ({"robust": (-1, 50)}, "robust"),
        ({"robust": (5, 101)}, "robust"),
        ({"robust": 7}, "robust"),
        ({"top_percent": 0}, "top_percent"),
        ({"top_percent": 120}, "top_percent"),
        ({"log": True, "gamma": 0.5}, "log"),
        ({"mask": np.ones((2, 2), dtype=bool)}, "mask"),
        ({"mask": np.ones((4, 6))}, "mask"),
        ({"key_labels": ["a"]}, "key_labels"),
        ({"query_labels": "abcd"}, "query_labels"),
        ({"cmap": "no-such-colormap"}, "cmap"),
    ],
)
def test_heatmap_rejects_bad_input(attn, kwargs, argument):
    kwargs = {"attn": attn, **kwargs}
    with pytest.raises(InvalidInputError, match=f"^{argument}:"):
        plots.heatmap(kwargs.pop("attn"), **kwargs)


@settings(max_examples=15, deadline=None)
@given(
    data=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.floats(0, 1)),
    option=st.sampled_from([{}, {"gamma": 0.4}, {"log": True}, {"robust": (5, 95)}, {"top_percent": 30}]),
)
def test_heatmap_any_finite_map_gets_a_valid_colour_range(data, option):
    fig = plots.heatmap(data, **option)
    norm = fig.axes[0].images[0].norm
    assert norm.vmin < norm.vmax
    _close(fig)


# -- maps-based views --------------------------------------------------------------------------
def test_head_map_uses_labels_mask_and_title(maps):
    fig = plots.head_map(maps, 1, 2, sample=1)
    ax = fig.axes[0]
    assert ax.get_title() == "layer1 · head 2 · sample 1"
    assert [t.get_text() for t in ax.get_xticklabels()] == WORDS
    image = ax.images[0]
    np.testing.assert_allclose(np.ma.getdata(image.get_array()), maps.head(1, 2, 1).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(np.ma.getmaskarray(image.get_array()), ~maps.mask[1].numpy())
    _close(fig)


def test_head_map_passes_heatmap_options(maps):
    fig = plots.head_map(maps, "layer0", 0, gamma=0.3, title="custom")
    ax = fig.axes[0]
    assert ax.get_title() == "custom"
    assert isinstance(ax.images[0].norm, mcolors.PowerNorm)
    _close(fig)


@pytest.mark.parametrize(("args", "argument"), [((5, 0), "layer"), ((0, 3), "head"), ((0, 0, 2), "sample"), (("nope", 0), "layer")])
def test_head_map_out_of_range(maps, args, argument):
    with pytest.raises(OutOfRangeError, match=argument):
        plots.head_map(maps, *args)


def test_head_view_grid_with_shared_scale(maps):
    fig = plots.head_view(maps, 1, sample=0)
    panels = _image_axes(fig)
    assert len(panels) == H
    assert len(fig.axes) == H + 1  # plus one shared colorbar
    norms = {(ax.images[0].norm.vmin, ax.images[0].norm.vmax) for ax in panels}
    assert len(norms) == 1
    assert norms.pop()[1] == pytest.approx(float(maps.weights[1, 0].max()))
    assert "layer1" in fig.get_suptitle()
    assert panels[0].get_ylabel() == "query" and panels[0].get_xlabel() == "key"
    assert [ax.get_title() for ax in panels] == ["head 0", "head 1", "head 2"]
    _close(fig)


def test_head_view_chosen_heads_and_crop(maps):
    fig = plots.head_view(maps, 0, sample=1, heads=[2, 0], gamma=0.5)
    panels = _image_axes(fig)
    assert [ax.get_title() for ax in panels] == ["head 2", "head 0"]
    assert panels[0].images[0].get_array().shape == (3, 3)  # padding cropped
    assert isinstance(panels[0].images[0].norm, mcolors.PowerNorm)
    _close(fig)


def test_head_view_many_heads_wraps_rows():
    maps = AttentionMaps(torch.softmax(torch.randn(1, 1, 6, 4, 4), -1))
    fig = plots.head_view(maps, 0)
    panels = _image_axes(fig)
    assert len(panels) == 6 and len(fig.axes) == 7
    _close(fig)


def test_head_view_rejects_bad_heads(maps):
    with pytest.raises(OutOfRangeError, match="head"):
        plots.head_view(maps, 0, heads=[7])
    with pytest.raises(InvalidInputError, match="heads"):
        plots.head_view(maps, 0, heads=[])


def test_model_view_has_layers_times_heads_panels(maps):
    fig = plots.model_view(maps, sample=0)
    panels = _image_axes(fig)
    assert len(panels) == L * H
    assert all(not ax.get_xticks().size and not ax.get_yticks().size for ax in panels)
    assert [ax.get_ylabel() for ax in panels if ax.get_ylabel()] == [f"L{l}" for l in range(L)]
    assert [ax.get_title() for ax in panels if ax.get_title()] == [f"H{h}" for h in range(H)]
    assert "key" in fig.get_supxlabel() and "query" in fig.get_supylabel()
    width, _ = fig.get_size_inches()
    assert width <= legibility.BOOK_WIDTH_IN + 1e-9  # shown at its own size on a page, text >= 8 pt is >= 10 px
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
    assert texts and min(t.get_fontsize() for t in texts) >= legibility.MIN_FONT_PT
    assert fig.get_suptitle()
    assert len({(ax.images[0].norm.vmin, ax.images[0].norm.vmax) for ax in panels}) == 1
    _close(fig)


def test_model_view_crops_to_unpadded_length(maps):
    fig = plots.model_view(maps, sample=1, layers=[1], heads=[0, 2])
    panels = _image_axes(fig)
    assert len(panels) == 2
    n = maps.n_valid_keys(1)
    assert all(ax.images[0].get_array().shape == (n, n) for ax in panels)
    np.testing.assert_allclose(np.ma.getdata(panels[1].images[0].get_array()), maps.head(1, 2, 1)[:n, :n].numpy(), rtol=1e-6)
    _close(fig)
    fig = plots.model_view(maps, sample=1, crop=False)
    assert _image_axes(fig)[0].images[0].get_array().shape == (Q, K)
    _close(fig)


# -- other figures -----------------------------------------------------------------------------
def test_token_highlight_draws_each_token_and_a_colorbar():
    tokens = ["Hello", "world", "$x$", "\n", "again"]
    fig = plots.token_highlight(tokens, [0.1, 0.9, 0.5, 0.0, 0.3], title="importance")
    ax = fig.axes[0]
    assert len(fig.axes) == 2
    assert ax.get_title() == "importance"
    assert [t.get_text() for t in ax.texts] == ["Hello", "world", "$x$", "⏎", "again"]
    assert all(t.get_bbox_patch() is not None for t in ax.texts)
    faces = [t.get_bbox_patch().get_facecolor() for t in ax.texts]
    assert faces[1] != faces[3]  # the highest and lowest scores get different colours
    assert plots.figure_png(fig).startswith(b"\x89PNG")  # draws: "$x$" is not parsed as mathtext
    _close(fig)


def test_token_highlight_wraps_long_text():
    tokens = [f"word{i}" for i in range(120)]
    fig = plots.token_highlight(tokens, np.linspace(0, 1, 120))
    rows = {t.get_position()[1] for t in fig.axes[0].texts}
    assert len(rows) > 3
    _close(fig)


@pytest.mark.parametrize(
    ("tokens", "scores", "argument"),
    [(["a", "b"], [1.0], "scores"), (["a"], [np.nan], "scores"), ("ab", [1.0, 2.0], "tokens"), ([], [], "tokens")],
)
def test_token_highlight_rejects_bad_input(tokens, scores, argument):
    with pytest.raises(InvalidInputError, match=f"^{argument}:"):
        plots.token_highlight(tokens, scores)


def test_lag_profile_lines_and_periods():
    fig = plots.lag_profile(np.random.default_rng(1).random((3, 10)), labels=["a", "b", "c"], true_periods=[4, 8])
    ax = fig.axes[0]
    assert len(ax.lines) == 3 + 2
    assert ax.get_xlabel() == "lag (steps)" and ax.get_ylabel() == "mean attention"
    assert ax.get_title() and ax.get_legend() is not None
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert sorted(line.get_xdata()[0] for line in dashed) == [4, 8]
    _close(fig)


def test_lag_profile_single_curve_and_errors():
    fig = plots.lag_profile([0.5, 0.3, 0.2], true_periods=2, title="p")
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].get_title() == "p"
    _close(fig)
    with pytest.raises(InvalidInputError, match="^profile:"):
        plots.lag_profile(np.ones((2, 2, 2)))
    with pytest.raises(InvalidInputError, match="^labels:"):
        plots.lag_profile(np.ones((2, 3)), labels=["a"])
    with pytest.raises(InvalidInputError, match="^true_periods:"):
        plots.lag_profile(np.ones(3), true_periods=[float("nan")])


def test_metric_bars_from_dict_with_errors_and_threshold():
    fig = plots.metric_bars({"a": 0.2, "b": 0.7, "c": 0.4}, errors=[0.1, 0.0, 0.05], threshold=0.5, ylabel="score", title="bars")
    ax = fig.axes[0]
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_ylabel() == "score" and ax.get_title() == "bars"
    assert any(line.get_linestyle() == "--" and set(line.get_ydata()) == {0.5} for line in ax.lines)
    from matplotlib.container import BarContainer

    bars = next(c for c in ax.containers if isinstance(c, BarContainer))
    assert bars.errorbar is not None
    _close(fig)


def test_metric_bars_from_sequence_and_bad_input():
    fig = plots.metric_bars([1.0, 2.0], labels=["x", "y"], errors={"x": 0.1, "y": 0.2})
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["x", "y"]
    assert fig.axes[0].get_ylabel() == "value"
    _close(fig)
    with pytest.raises(InvalidInputError, match="^errors:"):
        plots.metric_bars([1.0, 2.0], errors=[0.1])
    with pytest.raises(InvalidInputError, match="^errors:"):
        plots.metric_bars([1.0, 2.0], errors=[0.1, -0.1])
    with pytest.raises(InvalidInputError, match="^values:"):
        plots.metric_bars([])
    with pytest.raises(InvalidInputError, match="^threshold:"):
        plots.metric_bars([1.0], threshold="high")


def test_layer_head_grid_annotated():
    values = np.arange(6, dtype=float).reshape(2, 3) / 10
    values[1, 2] = np.nan
    fig = plots.layer_head_grid(values, title="entropy", cbar_label="nats", layer_names=["l0", "l1"])
    ax = fig.axes[0]
    assert ax.images[0].get_array().shape == (2, 3)
    assert ax.get_xlabel() == "head" and ax.get_ylabel() == "layer"
    assert ax.get_title() == "entropy" and fig.axes[1].get_ylabel() == "nats"
    assert [t.get_text() for t in ax.texts] == ["0.00", "0.10", "0.20", "0.30", "0.40", "–"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["l0", "l1"]
    _close(fig)


def test_layer_head_grid_options_and_errors():
    fig = plots.layer_head_grid(torch.rand(3, 4), annotate=False)
    assert not fig.axes[0].texts
    _close(fig)
    with pytest.raises(InvalidInputError, match="^values:"):
        plots.layer_head_grid(np.ones(4))
    with pytest.raises(InvalidInputError, match="^fmt:"):
        plots.layer_head_grid(np.ones((2, 2)), fmt="%q")


def test_new_figures_stay_out_of_pyplot_and_render_as_png(attn):
    before = plt.get_fignums()
    fig = plots.heatmap(attn)
    assert plt.get_fignums() == before
    png = fig._repr_png_()
    assert png.startswith(b"\x89PNG")
    _close(fig)


def test_head_dendrogram_labels_and_errors():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, generator=g)
    d = torch.cdist(x, x)
    fig = plots.head_dendrogram(d, n_heads=3, title="t")
    ax = fig.axes[0]
    names = sorted(t.get_text() for t in ax.get_yticklabels())  # leaves run down the figure
    assert names == sorted(f"L{l}H{h}" for l in range(2) for h in range(3))
    assert ax.get_title() == "t" and "Jensen" in ax.get_xlabel()
    with pytest.raises(InvalidInputError, match="n_heads"):
        plots.head_dendrogram(d, n_heads=4)
    with pytest.raises(InvalidInputError, match="distances"):
        plots.head_dendrogram(d[:, :5], n_heads=3)


def test_band_curves_draws_mean_and_standard_error():
    import numpy as np

    from attnbook.plots import band_curves

    runs = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, np.nan]])
    fig = band_curves([0, 1, 2], {"a": runs}, title="t", ylabel="y")
    ax = fig.axes[0]
    assert np.allclose(ax.get_lines()[0].get_ydata(), [2.0, 2.0, 3.0])
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert np.isclose(band.max(), 2.0 + np.std([1, 3], ddof=1) / np.sqrt(2))  # the single-run point has no band
    assert ax.get_title() == "t" and "(n=2)" in ax.get_legend().get_texts()[0].get_text()
    with pytest.raises(InvalidInputError):
        band_curves([0, 1], {"a": runs})
    with pytest.raises(InvalidInputError):
        band_curves([0, 1, 2], {})


def test_curves_take_their_labels_as_arguments():
    fig = plots.curves(np.arange(12.0).reshape(2, 6), x=np.arange(1, 7), labels=["a", "b"], xlabel="pull", ylabel="regret",
                       title="t", marks=[3], mark_label="switch", legend_columns=2)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("pull", "regret", "t")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "switch"]
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3, 4, 5, 6]
    _close(fig)
    fig = plots.curves([1.0, 2.0])
    assert fig.axes[0].get_title() == "value against x" and fig.axes[0].get_legend() is None
    _close(fig)
    fig = plots.lag_profile([0.5, 0.3], xlabel="lag (samples)", ylabel="attention / mean")
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("lag (samples)", "attention / mean")
    _close(fig)
    for kwargs, match in (({"x": [1, 2, 3]}, "^x:"), ({"legend_columns": 0, "labels": ["a", "b"]}, "^legend_columns:")):
        with pytest.raises(InvalidInputError, match=match):
            plots.curves(np.ones((2, 2)), **kwargs)
    with pytest.raises(InvalidInputError, match="^values:"):
        plots.curves(np.ones((2, 0)))


def test_figure_png_stores_a_palette_that_keeps_what_the_figure_shows(attn):
    from PIL import Image

    fig = plots.heatmap(attn, title="palette")
    full = Image.open(io.BytesIO(plots.figure_png(fig, colours=None))).convert("RGB")
    png = plots.figure_png(fig)
    small = Image.open(io.BytesIO(png))
    assert small.mode == "P" and len(small.getcolors(maxcolors=1 << 16)) <= 256
    assert small.size == full.size and len(png) < len(plots.figure_png(fig, colours=None))
    diff = np.abs(np.asarray(small.convert("RGB"), dtype=np.int16) - np.asarray(full, dtype=np.int16))
    assert np.percentile(diff, 99) <= 8  # nearly every pixel within a few levels of the 32-bit rendering
    with pytest.raises(InvalidInputError, match="^colours:"):
        plots.figure_png(fig, colours=1)
    _close(fig)
