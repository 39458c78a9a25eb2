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


def test_config_points_at_local_copies():
    config = site.sphinx_config()
    assert not any(str(v).startswith("http") for v in [config["mathjax_path"], *config["nb_ipywidgets_js"]])
