"""The page's attention view: encoding bounds, the payload, trimming, the facet grid and every error path.

The browser side (drawing, hover values against :func:`attnbook.views.read`, export) is tested in
``test_browser.py`` on the built site and on a standalone page written by :meth:`AttentionView.save`.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from attnbook.errors import CorruptDataError, InvalidInputError
from attnbook.maps import AttentionMaps
from attnbook.views import AttentionView, LiveControl, read, strip_assets
from attnbook.views import encode as codec


def _maps(L=2, B=2, H=3, T=5, *, causal=False, labels=True, seed=0) -> AttentionMaps:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(L, B, H, T, T, generator=g) * 2
    mask = None
    if causal:
        mask = torch.ones(B, T, T, dtype=torch.bool).tril()
        logits = logits.masked_fill(~mask[None, :, None], float("-inf"))
    toks = [[f"tok{b}.{i}" for i in range(T)] for b in range(B)] if labels else None
    return AttentionMaps(torch.softmax(logits, -1), query_labels=toks, key_labels=toks, mask=mask)


# -- encoding ----------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 300), elements=st.floats(0.0, 1.0)), st.sampled_from(codec.ENCODINGS))
def test_decode_of_encode_is_within_the_documented_bound(p, encoding):
    back = codec.decode(codec.unpack(codec.pack(codec.encode(p, encoding))), encoding)
    assert back.shape == p.shape
    assert np.all(np.abs(back - p) <= codec.max_error(p, encoding) + 1e-7)


def test_u8sqrt_keeps_small_weights_finer_than_linear_bytes():
    p = np.array([0.0, 0.001, 0.01, 0.1, 1.0])
    back = codec.decode(codec.encode(p, "u8sqrt"), "u8sqrt")
    assert back[0] == 0 and back[-1] == 1
    assert abs(back[2] - 0.01) < 0.5 / 255  # a linear byte would be off by up to 1/510 ≈ 0.002 everywhere
    assert abs(back[2] - 0.01) <= 0.1 / 255 + 1 / 255**2  # √0.01 / 255 + 1 / 255²


def test_one_byte_a_weight_and_two_for_half_precision():
    p = np.full(100, 0.25)
    assert len(codec.encode(p, "u8sqrt")) == 100 and len(codec.encode(p, "f16")) == 200


@given(arrays(np.bool_, st.tuples(st.integers(1, 17), st.integers(1, 17))))
def test_mask_bits_round_trip(mask):
    assert np.array_equal(codec.unpack_mask(codec.pack_mask(mask), mask.shape), mask)


def test_damaged_data_raises_corrupt_data_errors():
    with pytest.raises(CorruptDataError, match="base64 of zlib"):
        codec.unpack("not base64 !!")
    with pytest.raises(CorruptDataError, match="base64 of zlib"):
        codec.unpack("aGVsbG8=")  # base64, but not zlib
    with pytest.raises(CorruptDataError, match="even number"):
        codec.decode(b"\x00\x01\x02", "f16")
    with pytest.raises(CorruptDataError, match="bits"):
        codec.unpack_mask(codec.pack_mask(np.ones(8, bool)), (3, 4))
    with pytest.raises(InvalidInputError, match="encoding"):
        codec.encode(np.zeros(2), "u4")


# -- the view --------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", codec.ENCODINGS)
def test_read_gives_back_every_layer_head_and_sample(encoding):
    maps = _maps(causal=True)
    view = AttentionView("t", encoding=encoding).add(maps, sample_labels=["a", "b"])
    (data,) = read(view.to_html())
    (entry,) = data["entries"]
    assert entry["layers"] == list(maps.layer_names) and entry["heads"] == maps.n_heads
    assert [s["label"] for s in entry["samples"]] == ["a", "b"]
    for b in range(maps.batch_size):
        w = maps.weights[:, b].numpy()
        assert entry["weights"][b].shape == w.shape
        assert np.all(np.abs(entry["weights"][b] - w) <= codec.max_error(w, encoding) + 1e-7)
        assert np.array_equal(entry["allowed"][b], maps.mask[b].numpy())
        assert entry["samples"][b]["keys"] == list(maps.key_labels[b])


def test_padding_is_trimmed_per_sample():
    T = 6
    mask = torch.ones(2, T, T, dtype=torch.bool)
    mask[1, :, 4:] = False  # sample 1 has 4 real tokens: padded keys ...
    mask[1, 4:, :] = False  # ... and padded query rows
    logits = torch.randn(1, 2, 2, T, T).masked_fill(~mask[None, :, None], float("-inf"))
    w = torch.nan_to_num(torch.softmax(logits, -1))
    toks = [[f"w{i}" for i in range(T)], ["a", "b", "c", "d", "[PAD]", "[PAD]"]]
    maps = AttentionMaps(w, query_labels=toks, key_labels=toks, mask=mask)
    (entry,) = read(AttentionView().add(maps).to_html())[0]["entries"]
    assert entry["samples"][0]["keys"] == toks[0] and entry["weights"][0].shape == (1, 2, 6, 6)
    assert entry["samples"][1]["keys"] == ["a", "b", "c", "d"] and entry["samples"][1]["queries"] == ["a", "b", "c", "d"]
    assert entry["weights"][1].shape == (1, 2, 4, 4) and entry["samples"][1]["mask"] is None  # nothing left to mask


def test_facets_form_a_grid_and_keep_their_order():
    view = AttentionView(facets=("dataset", "step"))
    for d in ("b", "a"):
        for s in ("10", "2"):
            view.add(_maps(seed=len(d + s)), dataset=d, step=s, note=f"{d}@{s}")
    data = read(view.to_html())[0]
    assert data["facets"] == [{"name": "dataset", "values": ["b", "a"]}, {"name": "step", "values": ["10", "2"]}]
    assert [(e["key"], e["note"]) for e in data["entries"]] == [([0, 0], "b@10"), ([0, 1], "b@2"), ([1, 0], "a@10"), ([1, 1], "a@2")]


def test_start_picks_the_facet_values_shown_first():
    view = AttentionView(facets=("dataset", "step"), start={"step": "2"})
    for d in ("b", "a"):
        for s in ("10", "2"):
            view.add(_maps(), dataset=d, step=s)
    assert view.payload()["initial"]["facets"] == [0, 1]
    with pytest.raises(InvalidInputError, match="start\\['step'\\]: expected one of \\['10'\\], got '7'"):
        AttentionView(facets=("step",), start={"step": "7"}).add(_maps(), step="10").payload()
    with pytest.raises(InvalidInputError, match="start"):
        AttentionView(facets=("step",), start={"epoch": "1"})


def test_labels_cannot_break_out_of_the_page():
    toks = [["</script>", "<!--", "<b>x</b>"]]
    w = torch.softmax(torch.randn(1, 1, 1, 3, 3), -1)
    html_text = AttentionView("<i>title</i>").add(AttentionMaps(w, query_labels=toks, key_labels=toks), note="</script><script>alert(1)").to_html()
    assert html_text.count("</script>") == 3  # the data block, the view script, the mount: nothing from the labels or the note
    entry = read(html_text)[0]["entries"][0]
    assert entry["samples"][0]["keys"] == toks[0] and entry["note"] == "</script><script>alert(1)"
    assert "<i>title</i>" not in html_text.split("<script")[0]  # the title is escaped in the markup


def test_the_block_is_self_contained():
    html_text = AttentionView("t", live=[LiveControl("Your own text", "text")]).add(_maps()).to_html()
    assert re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html_text) is None
    assert "http://" not in html_text.replace("http://www.w3.org/", "") and "https://" not in html_text
    assert 'class="attnbook-view"' in html_text and "window.attnbookView.mount" in html_text
    data = read(html_text)[0]
    assert data["live"] == [{"label": "Your own text", "kind": "text"}] and len(bytes.fromhex(data["cmap"])) == 768


def test_ids_differ_between_two_renderings_of_one_view():
    view = AttentionView().add(_maps())
    ids = [re.search(r'id="(attnbook-view-[^"]+)"', view.to_html()).group(1) for _ in range(2)]
    assert ids[0] != ids[1]


def test_series_and_head_notes_are_embedded():
    maps = _maps(L=2, B=2, H=3, T=5)
    series = np.arange(10.0).reshape(2, 5)
    notes = [[f"L{l}H{h}" for h in range(3)] for l in range(2)]
    entry = read(AttentionView().add(maps, series=series, head_notes=notes).to_html())[0]["entries"][0]
    assert entry["samples"][1]["series"] == [5.0, 6.0, 7.0, 8.0, 9.0] and entry["head_notes"] == notes
    per_sample = [[[f"L{l}H{h}s{b}" for b in range(2)] for h in range(3)] for l in range(2)]
    assert read(AttentionView().add(maps, head_notes=per_sample).to_html())[0]["entries"][0]["head_notes"] == per_sample


def test_save_writes_a_standalone_page(tmp_path):
    path = AttentionView("page").add(_maps()).save(tmp_path / "view.html")
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and len(read(text)) == 1


def test_size_guard_raises_before_writing():
    view = AttentionView(max_bytes=2_000).add(_maps(T=30))
    with pytest.raises(InvalidInputError, match="at most 2000 bytes"):
        view.to_html()
    with pytest.raises(InvalidInputError, match="max_bytes"):
        AttentionView(max_bytes=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(facets="dataset"), "facets"),
    (dict(facets=("a", "a")), "distinct"),
    (dict(encoding="png"), "encoding"),
    (dict(view="sankey"), "view"),
    (dict(gamma=3.0), "gamma"),
    (dict(cmap="no-such-map"), "cmap"),
    (dict(live=["Analyse"]), "LiveControl"),
    (dict(title=3), "title"),
])
def test_bad_view_arguments(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        AttentionView(**kwargs)


def test_bad_add_arguments_and_incomplete_grids():
    view = AttentionView(facets=("dataset",))
    with pytest.raises(InvalidInputError, match="an AttentionMaps"):
        view.add(torch.ones(1, 1, 1, 2, 2), dataset="a")
    with pytest.raises(InvalidInputError, match="a value for each"):
        view.add(_maps(), corpus="a")
    with pytest.raises(InvalidInputError, match="2 labels"):
        view.add(_maps(), dataset="a", sample_labels=["x"])
    with pytest.raises(InvalidInputError, match="head_notes"):
        view.add(_maps(), dataset="a", head_notes=[["x"]])
    with pytest.raises(InvalidInputError, match="lists of 2 strings"):
        view.add(_maps(), dataset="a", head_notes=[[["one sample only"]] * 3] * 2)
    with pytest.raises(InvalidInputError, match="series"):
        view.add(_maps(), dataset="a", series=np.zeros((2, 4)))
    with pytest.raises(InvalidInputError, match="series: expected finite values, got 10 NaN"):
        view.add(_maps(), dataset="a", series=np.full((2, 5), np.nan))
    nothing = AttentionMaps(torch.zeros(1, 1, 1, 2, 2), mask=torch.zeros(1, 2, 2, dtype=torch.bool))
    with pytest.raises(InvalidInputError, match="none in sample 0"):
        view.add(nothing, dataset="a")
    with pytest.raises(InvalidInputError, match="note"):
        view.add(_maps(), dataset="a", note=3)
    view.add(_maps(), dataset="a")
    with pytest.raises(InvalidInputError, match="not added before"):
        view.add(_maps(), dataset="a")
    with pytest.raises(InvalidInputError, match="at least one added"):
        AttentionView().to_html()
    grid = AttentionView(facets=("x", "y")).add(_maps(), x=1, y=1).add(_maps(), x=2, y=2)
    with pytest.raises(InvalidInputError, match="2 missing"):
        grid.to_html()
    with pytest.raises(InvalidInputError, match="label"):
        LiveControl(" ")
    with pytest.raises(InvalidInputError, match="kind"):
        LiveControl("Upload", "dropzone")


def test_the_payload_is_plain_json():
    data = AttentionView("t", facets=("k",)).add(_maps(), k=3).payload()
    assert json.loads(json.dumps(data)) == data and data["facets"][0]["values"] == ["3"]


# -- the block's layout: marked assets, strip_assets, the live line --------------------------------
def _parts(html_text: str) -> list[str]:
    """The top-level elements of a block, by their opening tag."""
    rest = html_text.split("</div>", 1)[1]
    return [m.group(1) for m in re.finditer(r"<(style|script)\b[^>]*>.*?</\1>", rest, re.S)]


def test_the_block_marks_its_assets_and_mounts_in_its_own_script():
    html_text = AttentionView("t").add(_maps()).to_html()
    uid = re.search(r'id="(attnbook-view-[^"]+)"', html_text).group(1)
    styles = re.findall(r'<style class="attnbook-view-style">(.*?)</style>', html_text, re.S)
    scripts = re.findall(r'<script class="attnbook-view-script">(.*?)</script>', html_text, re.S)
    assert len(styles) == 1 and styles[0].startswith(".attnbook-view")
    assert len(scripts) == 1 and scripts[0].startswith("/* attnbook attention view") and "mount(document" not in scripts[0]
    assert html_text.endswith(f'<script>window.attnbookView.mount(document.getElementById("{uid}"));</script>')
    assert _parts(html_text) == ["style", "script", "script"]  # after the root div: style, view script, mount
    assert re.sub(r"<(style|script)\b[^>]*>.*?</\1>", "", html_text.split("</div>", 1)[1], flags=re.S) == ""


def test_strip_assets_keeps_the_views_and_their_mounts_only():
    view = AttentionView("t").add(_maps())
    one, two = view.to_html(), view.to_html()
    page = "<p>before</p>" + one + "<p>between</p>" + two
    stripped = strip_assets(page)
    assert "attnbook-view-style" not in stripped and "attnbook-view-script" not in stripped
    assert "<style" not in stripped and "window.attnbookView = " not in stripped  # the whole asset went, not just its class
    assert stripped.count("window.attnbookView.mount(") == 2 and stripped.count('class="attnbook-view"') == 2
    assert stripped.startswith("<p>before</p>") and "<p>between</p>" in stripped
    assert [v["title"] for v in read(stripped)] == ["t", "t"]  # the payloads stay whole
    # exactly the two assets of each block are gone: the rest of the text is unchanged, in order
    css, js = re.search(r'<style class="attnbook-view-style">.*?</style>', one, re.S).group(0), \
        re.search(r'<script class="attnbook-view-script">.*?</script>', one, re.S).group(0)
    assert stripped == page.replace(css, "").replace(js, "")
    assert strip_assets(stripped) == stripped and strip_assets("<p>no view</p>") == "<p>no view</p>"
    with pytest.raises(InvalidInputError, match="block_html"):
        strip_assets(b"<div></div>")


def test_live_controls_reach_the_page_as_labels_and_a_hint_without_form_controls():
    live = [LiveControl("Your own text", "text"), LiveControl("Upload .txt", "file"), LiveControl("Analyse")]
    html_text = AttentionView("t", live=live, live_hint="type your own text below").add(_maps()).to_html()
    data = read(html_text)[0]
    assert [c["label"] for c in data["live"]] == ["Your own text", "Upload .txt", "Analyse"]
    assert data["live_hint"] == "type your own text below"
    markup = re.sub(r"<script.*?</script>|<style.*?</style>", "", html_text, flags=re.S)
    assert re.search(r"<(input|textarea|select|button)\b", markup) is None  # the block ships no form control of its own
    assert "Live in JupyterLab: " in html_text  # the script writes the line (checked drawn in test_browser)


def test_saved_page_fits_phones_and_has_a_dark_scheme(tmp_path):
    text = AttentionView("page").add(_maps()).save(tmp_path / "v.html").read_text()
    assert 'name="viewport" content="width=device-width' in text and "prefers-color-scheme: dark" in text
