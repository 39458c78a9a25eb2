"""The static site's offline assets: the widget embedder and MathJax, fetched at build time.

Jupyter Book loads both from CDNs by default, so an offline reader sees neither the explorers'
saved frames nor the formulas. :func:`fetch_assets` downloads two npm packages straight from the
registry (no npm needed), checks each tarball against its published sha512 integrity, keeps the
tarballs in ``<cache>/site-assets`` (a second build needs no network) and unpacks what the pages
load into a ``_static`` folder of the staged book:

- ``@jupyter-widgets/html-manager`` 1.x (for ipywidgets 8): ``dist/embed.js``, the standalone
  embedder that renders every saved widget state on page load, and the icon fonts beside it;
- ``mathjax`` 3: ``es5/tex-mml-chtml.js`` and the CHTML fonts it loads relative to itself.

:func:`sphinx_config` gives the ``_config.yml`` entries that point the pages at those copies.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import CorruptDataError, MissingResourceError
from .store import atomic_write, cache_dir

__all__ = ["Asset", "ASSETS", "fetch_assets", "sphinx_config"]


@dataclass(frozen=True)
class Asset:
    """One npm tarball and the files of it a page needs (``member prefix -> folder under _static``)."""

    name: str
    version: str
    url: str
    integrity: str  # "sha512-<base64>", as the registry publishes it
    files: tuple[tuple[str, str], ...]


ASSETS = (
    Asset("@jupyter-widgets/html-manager", "1.0.15", "https://registry.npmjs.org/@jupyter-widgets/html-manager/-/html-manager-1.0.15.tgz",
          "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
          (("package/dist/", "widgets/"),)),
    Asset("mathjax", "3.2.2", "https://registry.npmjs.org/mathjax/-/mathjax-3.2.2.tgz",
          "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
          (("package/es5/tex-mml-chtml.js", "mathjax/tex-mml-chtml.js"),
           ("package/es5/output/chtml/fonts/woff-v2/", "mathjax/output/chtml/fonts/woff-v2/"))),
)

_SKIP = (".map", ".LICENSE.txt", "embed-amd.js", "libembed-amd.js")  # not loaded by the pages


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _tarball(asset: Asset, cache: Path, timeout: float) -> bytes:
    """The verified tarball: from the cache, else downloaded (and then cached)."""
    path = cache / f"{asset.name.replace('/', '__')}-{asset.version}.tgz"
    if path.is_file():
        data = path.read_bytes()
        if _integrity(data) == asset.integrity:
            return data
        path.unlink()  # corrupt cache entry: fetch again
    try:
        with urllib.request.urlopen(asset.url, timeout=timeout) as response:
            data = response.read()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise MissingResourceError(
            f"{asset.name}@{asset.version}: not cached and the download from {asset.url} failed ({type(exc).__name__}: {exc}); "
            f"the offline site needs it once (put the tarball at {path})"
        ) from None
    got = _integrity(data)
    if got != asset.integrity:
        raise CorruptDataError(f"{asset.name}@{asset.version}: expected integrity {asset.integrity}, got {got}")
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return data


def fetch_assets(static: Path, cache: Path | None = None, timeout: float = 60.0) -> list[Path]:
    """Unpack every :data:`ASSETS` file into ``static``; return the files written."""
    cache = cache or cache_dir() / "site-assets"
    written = []
    for asset in ASSETS:
        with tarfile.open(fileobj=io.BytesIO(_tarball(asset, cache, timeout)), mode="r:gz") as archive:
            for member in archive.getmembers():
                if not member.isfile() or member.name.endswith(_SKIP):
                    continue
                for prefix, target in asset.files:
                    if prefix.endswith("/"):  # a folder: its own files, not its sub-folders
                        rest = member.name[len(prefix):] if member.name.startswith(prefix) else ""
                        if not rest or "/" in rest:
                            continue
                        rel = target + rest
                    elif member.name == prefix:
                        rel = target
                    else:
                        continue
                    out = static / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with archive.extractfile(member) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    written.append(out)
    return written


def sphinx_config() -> dict:
    """``sphinx.config`` entries that load the local copies (paths relative to ``_static``)."""
    return {
        "html_static_path": ["_static"],
        "nb_ipywidgets_js": {"widgets/embed.js": {}},
        "mathjax_path": "mathjax/tex-mml-chtml.js",
    }
