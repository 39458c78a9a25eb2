"""attnbook.plots.legibility: how large a figure's text reads on the page, what figure_png records,
and the book's figure functions held to the floor at the sizes the chapters draw them."""

from __future__ import annotations

import io
import json
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image  # noqa: E402

from attnbook import plots  # noqa: E402
from attnbook.errors import InvalidInputError  # noqa: E402
from attnbook.maps import AttentionMaps  # noqa: E402
from attnbook.plots import legibility  # noqa: E402


def _figure(width: float = 4.0, height: float = 3.0) -> plots.BookFigure:
    return plots.BookFigure(figsize=(width, height), layout="constrained")


def _entries(fig) -> dict[str, str]:
    return Image.open(io.BytesIO(plots.figure_png(fig))).text


def test_page_px_by_hand():
    # fits the 735 px column: 8 pt at 100 dpi is 8 / 72 * 100 = 11.11 px
    assert legibility.page_px(8, 7.0, 100) == pytest.approx(100 / 9)
    # 14 in at 100 dpi is 1400 px, shown at 735: 8 pt reads as 8 / 72 * 735 / 14 = 5.83 px, whatever the dpi
    assert legibility.page_px(8, 14.0, 100) == pytest.approx(8 / 72 * 735 / 14)
    assert legibility.page_px(8, 14.0, 300) == pytest.approx(8 / 72 * 735 / 14)
    assert legibility.BOOK_WIDTH_IN == pytest.approx(7.35)
    assert legibility.page_px(legibility.MIN_FONT_PT, legibility.BOOK_WIDTH_IN, plots.PNG_DPI) >= legibility.MIN_TEXT_PX
    for bad in ({"width_in": 0}, {"dpi": -1}, {"column_px": math.inf}, {"size_pt": -1}):
        args = {"size_pt": 8, "width_in": 7.0, "dpi": 100, **bad}
        with pytest.raises(InvalidInputError, match=f"^{next(iter(bad))}:"):
            legibility.page_px(**args)


@settings(max_examples=60, deadline=None)
@given(st.floats(1, 30), st.floats(0.5, 30), st.sampled_from([50, 72, 100, 200]))
def test_readable_pt_is_the_inverse_of_page_px(size, width, dpi):
    px = legibility.page_px(size, width, dpi)
    assert px == pytest.approx(min(size / 72 * dpi, size / 72 * 735 / width))
    assert legibility.page_px(size + 1, width, dpi) > px and legibility.page_px(size, width + 1, dpi) <= px
    need = legibility.readable_pt(width, dpi)
    assert need >= legibility.MIN_FONT_PT
    assert legibility.page_px(need, width, dpi) >= legibility.MIN_TEXT_PX - 1e-9
    if need > legibility.MIN_FONT_PT:  # the floor itself decides: a smaller font would read below it
        assert legibility.page_px(need * 0.99, width, dpi) < legibility.MIN_TEXT_PX


def test_text_sizes_counts_only_what_the_figure_draws():
    fig = _figure()
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set_title("title", fontsize=12)
    ax.text(0.5, 0.5, "small", fontsize=6)
    ax.text(0.5, 0.4, "hidden", fontsize=3).set_visible(False)
    ax.text(0.5, 0.3, "   ", fontsize=2)
    fig.text(5.0, 5.0, "off the figure", fontsize=1)
    ax.tick_params(labelsize=9)
    sizes = legibility.text_sizes(fig)
    texts = {t for _, t in sizes}
    assert {"title", "small"} <= texts and not {"hidden", "   ", "off the figure"} & texts
    assert legibility.smallest_text_pt(fig) == 6
    assert legibility.smallest_page_px(fig, 100) == pytest.approx(6 / 72 * 100)
    small = legibility.too_small(fig, 100)
    assert [t for t, _ in small] == ["small"] and small[0][1] == pytest.approx(6 / 72 * 100)
    empty = _figure()
    assert legibility.smallest_text_pt(empty) == math.inf and legibility.too_small(empty, 100) == []


def test_figure_png_records_the_smallest_text_and_what_is_cut():
    fig = _figure()
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    ax.tick_params(labelsize=7)
    ax.set_title("a title far longer than four inches of figure at twelve points, which wraps instead of being cut")
    entries = _entries(fig)
    assert float(entries[legibility.PNG_TEXT_KEY]) == pytest.approx(7 / 72 * plots.PNG_DPI, abs=0.01)
    assert json.loads(entries[legibility.PNG_CUT_KEY]) == []
    assert "\n" in ax.title._get_wrapped_text()  # drawn on two lines
    fig.text(0.8, 0.5, "a note that runs past the right edge", fontsize=8)  # figure text: constrained layout leaves it
    assert json.loads(_entries(fig)[legibility.PNG_CUT_KEY]) == ["a note that runs past the right edge"]
    bare = _figure()
    bare.subplots().set_axis_off()
    entries = _entries(bare)
    assert legibility.PNG_TEXT_KEY not in entries and json.loads(entries[legibility.PNG_CUT_KEY]) == []


def _maps(layers: int = 6, heads: int = 12, tokens: int = 12) -> AttentionMaps:
    w = torch.rand(layers, 1, heads, tokens, tokens, generator=torch.Generator().manual_seed(0))
    w = w / w.sum(-1, keepdim=True)
    labels = [["[CLS]", "the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", ".", "[SEP]"][:tokens]]
    return AttentionMaps(w, [f"encoder.layer.{i}.attention.self" for i in range(layers)], labels, labels, None, {})


def _book_figures():
    """The plots functions at the sizes the chapters draw them (MiniLM's 6 × 12 heads, 9 generators, 18 groups)."""
    rng = np.random.default_rng(0)
    maps = _maps()
    n = 72
    x = rng.random((n, 4))
    distances = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    yield "heatmap", plots.heatmap(rng.random((12, 12)), query_labels=[str(i) for i in range(12)], key_labels=[str(i) for i in range(12)])
    yield "head_view", plots.head_view(maps, 1)
    yield "model_view", plots.model_view(maps)
    yield "layer_head_grid", plots.layer_head_grid(rng.random((6, 12)), title="normalised entropy per head")
    yield "head_dendrogram", plots.head_dendrogram(distances, n_heads=12)
    yield "maps_grid", plots.maps_grid({f"generator {k}": rng.random((20, 20)) for k in range(9)}, ncols=3, title="nine maps")
    yield "token_highlight", plots.token_highlight(["[CLS]", "a", "sentence", "of", "tokens", "."] * 4, rng.random(24))
    yield "curves", plots.curves(rng.random((6, 30)), labels=[f"run {k}" for k in range(6)], legend_columns=3, marks=[10])
    yield "metric_bars", plots.metric_bars({f"process {k}": float(v) for k, v in enumerate(rng.random(20))}, threshold=0.5)
    yield "grouped_bars", plots.grouped_bars({"[CLS]": rng.random(18), "[SEP]": rng.random(18), "punctuation": rng.random(18)},
                                              group_labels=[f"L{k // 3} group {k}" for k in range(18)], reference=0.5)
    yield "series_overview", plots.series_overview({f"generator {k}": rng.random(200) for k in range(9)},
                                                   families={f"generator {k}": "stationary" for k in range(9)})
    yield "band_curves", plots.band_curves(np.arange(10), {"a": rng.random((3, 10)), "b": rng.random((3, 10))})
    yield "ablation_strips", plots.ablation_strips({f"role {k}": (0.5, rng.random(200)) for k in range(4)})


@pytest.mark.parametrize("name,fig", list(_book_figures()), ids=lambda v: v if isinstance(v, str) else "")
def test_book_figures_read_on_the_page(name, fig):
    small = legibility.too_small(fig, plots.PNG_DPI)
    assert small == [], f"{name}: {len(small)} texts below {legibility.MIN_TEXT_PX} px on the page, e.g. {small[:3]}"
    assert legibility.cut_texts(fig) == [], f"{name}: texts cut at the figure's edge"
