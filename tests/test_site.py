"""Offline site assets: verified download, cache, unpacking, config."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile

import pytest

from attnbook import site
from attnbook.errors import CorruptDataError, MissingResourceError


def _tgz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _asset(tmp_path, data: bytes, integrity: str | None = None) -> site.Asset:
    path = tmp_path / "pkg.tgz"
    path.write_bytes(data)
    integrity = integrity or "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    return site.Asset("pkg", "1.0.0", path.as_uri(), integrity, (("package/dist/", "widgets/"), ("package/a.js", "x/a.js")))


def test_fetch_unpacks_the_named_files_and_caches_the_tarball(tmp_path, monkeypatch):
    data = _tgz({"package/dist/embed.js": b"js", "package/dist/font.woff": b"f", "package/dist/embed.js.map": b"m",
                 "package/dist/sub/deep.js": b"d", "package/a.js": b"a", "package/other.js": b"o"})
    asset = _asset(tmp_path, data)
    monkeypatch.setattr(site, "ASSETS", (asset,))
    written = site.fetch_assets(tmp_path / "static", tmp_path / "cache")
    assert sorted(p.relative_to(tmp_path / "static").as_posix() for p in written) == ["widgets/embed.js", "widgets/font.woff", "x/a.js"]
    (tmp_path / "pkg.tgz").unlink()  # no network: the cached tarball is enough
    assert len(site.fetch_assets(tmp_path / "static2", tmp_path / "cache")) == 3


def test_integrity_mismatch_is_refused_and_not_cached(tmp_path, monkeypatch):
    asset = _asset(tmp_path, _tgz({"package/a.js": b"a"}), integrity="sha512-AAAA")
    monkeypatch.setattr(site, "ASSETS", (asset,))
    with pytest.raises(CorruptDataError, match="integrity"):
        site.fetch_assets(tmp_path / "static", tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*")) if (tmp_path / "cache").exists() else True


def test_unreachable_registry_says_where_to_put_the_tarball(tmp_path, monkeypatch):
    asset = site.Asset("pkg", "1.0.0", (tmp_path / "absent.tgz").as_uri(), "sha512-x", ())
    monkeypatch.setattr(site, "ASSETS", (asset,))
    with pytest.raises(MissingResourceError, match="pkg-1.0.0.tgz"):
        site.fetch_assets(tmp_path / "static", tmp_path / "cache")


def test_config_points_at_local_copies_and_loads_no_widget_embedder():
    config = site.sphinx_config()
    assert not str(config["mathjax_path"]).startswith("http")
    assert config["nb_ipywidgets_js"] == {}  # myst-nb's default would load the embedder from a CDN


def test_overrides_replace_the_theme_script_with_a_small_file(tmp_path):
    (written,) = site.write_overrides(tmp_path)
    assert written == tmp_path / "scripts" / "fontawesome.js" and written.stat().st_size < 1_000


def _bar(state: dict, mid: str, desc: str, value: float, top: float, stats: str) -> None:
    state[mid] = {"model_name": "HBoxModel", "state": {"children": [f"IPY_MODEL_{mid}a", f"IPY_MODEL_{mid}b", f"IPY_MODEL_{mid}c"]}}
    state[mid + "a"] = {"model_name": "HTMLModel", "state": {"value": desc}}
    state[mid + "b"] = {"model_name": "FloatProgressModel", "state": {"value": value, "max": top}}
    state[mid + "c"] = {"model_name": "HTMLModel", "state": {"value": stats}}


def test_freeze_widgets_drops_progress_bars_and_says_where_a_kernel_control_is_live():
    state = {"box": {"model_name": "VBoxModel", "state": {"children": []}}}
    _bar(state, "done", "training:\u2007100%", 13.0, 13.0, "\u200713/13\u2007[01:51&lt;00:00,\u20078.53s/it]")
    _bar(state, "half", "half", 1.0, 2.0, "1/2")
    view = lambda mid: {"output_type": "display_data", "metadata": {},  # noqa: E731
                        "data": {"text/plain": ["training: 0%"], "application/vnd.jupyter.widget-view+json": {"model_id": mid}}}
    text = {"output_type": "stream", "name": "stdout", "text": "kept\n"}
    tqdm_text = {"output_type": "stream", "name": "stderr",
                 "text": "runs:  50%|█████     | 1/2 [00:01<00:01,  1.00it/s]\rruns: 100%|██████████| 2/2 [00:02<00:00,  1.00it/s]\nwarning kept\n"}
    nb = {"metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {"state": state}}},
          "cells": [{"cell_type": "code", "outputs": [view("done"), text, view("box"), view("box")]},
                    {"cell_type": "code", "outputs": [view("half"), tqdm_text]},
                    {"cell_type": "markdown", "source": "x"}]}
    assert site.freeze_widgets(nb) == 5
    assert "widgets" not in nb["metadata"]
    first, second = nb["cells"][0]["outputs"], nb["cells"][1]["outputs"]
    assert first[0] == text and len(first) == 2  # the bar is gone; two kernel widgets of one cell: one line
    assert site.LIVE_NOTE in first[1]["data"]["text/plain"] and 'class="attnbook-live-note"' in first[1]["data"]["text/html"]
    assert second == [{"output_type": "stream", "name": "stderr", "text": "warning kept\n"}]  # tqdm's text gone, the rest kept
    assert site.freeze_widgets({"cells": [{"cell_type": "code", "outputs": [view("missing")]}]}) == 1  # no state: a kernel control


def test_dedupe_inline_assets_keeps_each_shared_script_and_style_in_its_first_output_only():
    import torch

    from attnbook import findings_view
    from attnbook.maps import AttentionMaps
    from attnbook.views import AttentionView

    def html_output(text):
        return {"output_type": "display_data", "metadata": {}, "data": {"text/html": text}}

    def view(title):
        maps = AttentionMaps(torch.softmax(torch.randn(1, 1, 2, 3, 3, generator=torch.Generator().manual_seed(0)), -1))
        return html_output(AttentionView(title).add(maps).to_html())

    table = html_output(findings_view.assets() + "<div>table</div>")
    nb = {"cells": [{"cell_type": "code", "outputs": [html_output("<p>x</p>"), view("a"), table]},
                    {"cell_type": "code", "outputs": [view("b"), dict(table, data=dict(table["data"])), view("c")]}]}
    assert site.dedupe_inline_assets(nb) == 2 * 2 + 1  # two views' script and style, one table's style
    pages = [o["data"]["text/html"] for c in nb["cells"] for o in c["outputs"]]
    assert [p.count('class="attnbook-view-script"') for p in pages] == [0, 1, 0, 0, 0, 0]
    assert [p.count('class="attnbook-view-style"') for p in pages] == [0, 1, 0, 0, 0, 0]
    assert [p.count(f'class="{findings_view.STYLE_CLASS}"') for p in pages] == [0, 0, 1, 0, 0, 0]
    assert [p.count("attnbookView.mount(") for p in pages] == [0, 1, 0, 1, 0, 1]  # every view still mounts
    assert pages[4] == "<div>table</div>" and site.dedupe_inline_assets(nb) == 0


def test_stylesheet_and_extension_are_staged(tmp_path):
    out = site.write_stylesheet(tmp_path)
    assert out.name == site.STYLESHEET and ".attnbook-live-note" in out.read_text()
    assert site.sphinx_config()["html_css_files"] == [site.STYLESHEET]
    assert site.EXTENSIONS == ("attnbook.site_hygiene",)
