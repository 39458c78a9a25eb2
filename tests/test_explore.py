"""Tests of attnbook.explore without a kernel: widget values drive ``render`` and the outputs."""

from __future__ import annotations

import datetime

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402

from attnbook import explore  # noqa: E402
from attnbook.lm import explorer as text_explorer  # noqa: E402
from attnbook.errors import InvalidInputError, OutOfRangeError  # noqa: E402
from attnbook.maps import AttentionMaps  # noqa: E402

WORDS = ["a", "quick", "brown", "fox", "jumps"]


def make_maps(words: list[str], layers: int = 2, batch: int = 2, heads: int = 3, seed: int = 0) -> AttentionMaps:
    gen = torch.Generator().manual_seed(seed)
    n = len(words)
    weights = torch.softmax(torch.randn(layers, batch, heads, n, n, generator=gen), -1)
    return AttentionMaps(weights, layer_names=tuple(f"block{i}" for i in range(layers)),
                         query_labels=[words] * batch, key_labels=[words] * batch)


class StubStats:
    """Records every selection it is given; one row per call."""

    def __init__(self) -> None:
        self.calls: list[AttentionMaps] = []

    def __call__(self, maps: AttentionMaps) -> list[dict]:
        self.calls.append(maps)
        return [{"layer": 0, "head": 0, "mean": float(maps.weights.mean()), "max": float(maps.weights.max()), "n": 1}]


@pytest.fixture
def maps() -> AttentionMaps:
    return make_maps(WORDS)


def _png(output) -> str:
    (entry,) = output.outputs
    return entry["data"]["image/png"]


# -- render ------------------------------------------------------------------------------------
def test_render_head_view_names_layer_and_head(maps):
    stats = StubStats()
    fig, table = explore.render(maps, 1, 2, sample=1, view="head", stats=stats)
    assert fig.axes[0].get_title() == "block1 · head 2 · sample 1"
    assert "block1 · head 2 · sample 1" in table and "<table" in table
    (selection,) = stats.calls
    assert selection.shape == (1, 1, 1, 5, 5)
    # a selection is the same numbers, not close ones: exact, not assert_close's dtype-dependent default tolerance
    torch.testing.assert_close(selection.weights[0, 0, 0], maps.head(1, 2, 1), rtol=0, atol=0)
    assert ">block1<" in table and ">2<" in table  # layer/head entries show the real layer and head
    plt.close(fig)


@pytest.mark.parametrize(("view", "n_images"), [("layer", 3), ("model", 6)])
def test_render_layer_and_model_views(maps, view, n_images):
    fig, _ = explore.render(maps, "block1", 0, view=view, stats=StubStats())
    assert sum(len(ax.images) for ax in fig.axes) == n_images
    if view == "layer":
        assert "block1" in fig.get_suptitle()
    plt.close(fig)


def test_render_gamma_overrides_heatmap_kwargs(maps):
    fig, _ = explore.render(maps, 0, 0, gamma=0.5, stats=StubStats(), heatmap_kwargs={"log": True})
    assert isinstance(fig.axes[0].images[0].norm, mcolors.PowerNorm)
    plt.close(fig)
    fig, _ = explore.render(maps, 0, 0, gamma=1.0, stats=StubStats(), heatmap_kwargs={"gamma": 0.3})
    assert type(fig.axes[0].images[0].norm) is mcolors.Normalize
    plt.close(fig)


def test_render_rejects_bad_arguments(maps):
    with pytest.raises(InvalidInputError, match="^view:"):
        explore.render(maps, 0, 0, view="sideways", stats=StubStats())
    with pytest.raises(OutOfRangeError, match="^head:"):
        explore.render(maps, 0, 9, stats=StubStats())
    with pytest.raises(OutOfRangeError, match="^layer:"):
        explore.render(maps, 4, 0, stats=StubStats())


def test_stats_table_reports_stats_errors(maps):
    def broken(_maps):
        raise InvalidInputError("special: expected token ids, got nothing")

    table = explore.stats_table(maps, 0, 1, stats=broken)
    assert "statistics unavailable" in table and "special: expected" in table


# -- maps explorer -----------------------------------------------------------------------------
def test_explorer_renders_on_construction(maps):
    stats = StubStats()
    ex = explore.maps(maps, stats=stats, title="Demo")
    assert isinstance(ex, explore.MapsExplorer)
    assert ex.n_renders == 1 and len(stats.calls) == 1
    assert _png(ex.output)
    assert "block0 · head 0 · sample 0" in ex.stats_html.value
    assert ex.layer.options == (("block0", 0), ("block1", 1))
    assert ex.head.max == 2 and ex.sample.layout.display != "none"
    assert "Demo" in ex.title.value
    ex.close()


def test_changing_widgets_rerenders(maps):
    ex = explore.maps(maps, stats=StubStats())
    first = _png(ex.output)
    ex.layer.value = 1
    assert ex.n_renders == 2 and "block1 · head 0" in ex.stats_html.value
    ex.head.value = 2
    assert ex.n_renders == 3 and "block1 · head 2" in ex.stats_html.value
    assert _png(ex.output) != first
    ex.sample.value = 1
    assert "sample 1" in ex.stats_html.value
    head_png = _png(ex.output)
    ex.view.value = "layer"
    assert ex.n_renders == 5 and _png(ex.output) != head_png
    ex.view.value = "model"
    ex.gamma.value = 0.4
    assert ex.n_renders == 7 and len(ex.output.outputs) == 1
    ex.close()


def test_explorer_hides_sample_for_batch_one_and_displays_vbox():
    ex = explore.maps(make_maps(WORDS, batch=1), stats=StubStats())
    assert ex.sample.layout.display == "none"
    bundle = ex._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == ex.widget.model_id
    ex.close()


def test_explorer_shows_render_errors_instead_of_raising(maps):
    ex = explore.maps(maps, stats=StubStats(), heatmap_kwargs={"robust": (90, 10)})
    (entry,) = ex.output.outputs
    assert "robust" in entry["data"]["text/plain"]
    assert ex.n_renders == 0
    ex.close()


def test_explorer_rejects_non_maps():
    with pytest.raises(InvalidInputError, match="^maps:"):
        explore.maps(torch.zeros(2, 2))


# -- text explorer -----------------------------------------------------------------------------
class StubAnalyse:
    """Builds maps over the words of the text; raises InvalidInputError for a text with 'boom'."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, text: str) -> AttentionMaps:
        self.texts.append(text)
        if "boom" in text:
            raise InvalidInputError("text: expected no 'boom', got 'boom'")
        return make_maps(text.split(), layers=1, batch=1, heads=2)


def test_text_explorer_analyses_on_click():
    analyse = StubAnalyse()
    te = text_explorer.text(analyse, stats=StubStats())
    assert te.explorer is None and te.result.children == () and analyse.texts == []
    te.textarea.value = "the cat sat"
    te.button.click()
    assert analyse.texts == ["the cat sat"]
    assert te.explorer is not None and te.explorer.widget in te.result.children
    assert te.explorer.maps.tokens(0) == ["the", "cat", "sat"]
    assert _png(te.explorer.output)


def test_text_explorer_runs_initial_text_and_importance():
    analyse = StubAnalyse()
    te = text_explorer.text(analyse, initial_text="one two three four", stats=StubStats(),
                      importance=lambda m: m.weights[0, 0].mean(0).mean(0).tolist())
    assert analyse.texts == ["one two three four"]
    assert te.highlight is not None and te.highlight in te.result.children
    assert _png(te.highlight)
    old = te.explorer
    te.textarea.value = "five six"
    te.button.click()
    assert te.explorer is not old and te.explorer.maps.n_keys == 2


def test_text_explorer_upload_fills_textarea():
    te = text_explorer.text(StubAnalyse(), stats=StubStats())
    te.upload.value = ({"name": "a.txt", "type": "text/plain", "size": 5, "content": memoryview(b"hello"),
                        "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)},)
    assert te.textarea.value == "hello"
    assert "a.txt" in te.message.value
    assert te.upload.value == ()


def test_text_explorer_rejects_non_utf8_upload():
    te = text_explorer.text(StubAnalyse(), initial_text="", stats=StubStats())
    te.textarea.value = "kept"
    te.upload.value = ({"name": "b.txt", "type": "text/plain", "size": 2, "content": memoryview(b"\xff\xfe\xfa"),
                        "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)},)
    assert te.textarea.value == "kept"
    assert "UTF-8" in te.message.value and explore.ERROR_COLOUR in te.message.value


def test_text_explorer_shows_analyse_errors():
    te = text_explorer.text(StubAnalyse(), initial_text="fine text", stats=StubStats())
    assert te.explorer is not None
    te.textarea.value = "this goes boom"
    te.button.click()  # no exception
    assert "expected no &#x27;boom&#x27;" in te.message.value and explore.ERROR_COLOUR in te.message.value
    assert te.explorer is None and te.result.children == ()


def test_text_explorer_blank_text_long_text_and_bad_results():
    analyse = StubAnalyse()
    te = text_explorer.text(analyse, stats=StubStats(), max_chars=10)
    te.textarea.value = "   "
    te.button.click()
    assert analyse.texts == [] and explore.ERROR_COLOUR in te.message.value
    te.textarea.value = "aa bb cc dd ee ff"
    te.button.click()
    assert analyse.texts == ["aa bb cc d"] and "first 10 characters" in te.message.value
    bad = text_explorer.text(lambda text: "not maps", stats=StubStats())
    assert bad.analyse("x") is None and "analyse" in bad.message.value
    with pytest.raises(InvalidInputError, match="^max_chars:"):
        text_explorer.text(analyse, max_chars=0)


def test_chapter_explorers_live_in_their_chapters_not_in_the_core():
    # the core never imports a chapter (tests/test_architecture.py): the old aliases
    # explore.TextExplorer / explore.SeriesView / plots.series_attention are gone
    from attnbook import plots
    from attnbook.lm.explorer import TextExplorer  # noqa: F401
    from attnbook.timeseries.explorer import SeriesView  # noqa: F401
    from attnbook.timeseries.figures import series_attention  # noqa: F401

    for module, name in ((explore, "TextExplorer"), (explore, "SeriesView"), (plots, "series_attention"), (explore, "no_such_explorer")):
        assert not hasattr(module, name)


def test_sentences_view_holds_every_sentence_and_marks_the_text_box_live():
    from attnbook.views import read

    def analyse(sentences):
        widths = [len(s.split()) for s in sentences]
        T = max(widths)
        mask = torch.zeros(len(sentences), T, T, dtype=torch.bool)
        for b, n in enumerate(widths):
            mask[b, :n, :n] = True
        logits = torch.randn(2, len(sentences), 3, T, T).masked_fill(~mask[None, :, None], float("-inf"))
        toks = [s.split() + ["[PAD]"] * (T - len(s.split())) for s in sentences]
        return AttentionMaps(torch.nan_to_num(torch.softmax(logits, -1)), query_labels=toks, key_labels=toks, mask=mask)

    sentences = ["the cat sat", "a much longer sentence than the first one " * 3]
    data = read(text_explorer.sentences_view(analyse, sentences, title="t").to_html())[0]
    (entry,) = data["entries"]
    assert [s["keys"] for s in entry["samples"]][0] == ["the", "cat", "sat"]  # padding trimmed
    assert entry["samples"][1]["label"].endswith("…") and len(entry["samples"][1]["label"]) == 48
    assert [c["kind"] for c in data["live"]] == ["text", "file", "button"]
    notes = entry["head_notes"][1][2]  # layer 1, head 2: one line per sentence
    assert len(notes) == 2 and all(n.startswith("on this sentence: entropy (normalised) ") and "[SEP] mass" in n for n in notes)
    with pytest.raises(InvalidInputError, match="sentences"):
        text_explorer.sentences_view(analyse, "one sentence")
    with pytest.raises(InvalidInputError, match="sentences"):
        text_explorer.sentences_view(analyse, ["ok", "  "])
