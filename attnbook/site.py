"""The static site: offline assets fetched at build time, and executed chapters made static.

Jupyter Book loads MathJax from a CDN by default, so an offline reader would not see the formulas.
:func:`fetch_assets` downloads it straight from the npm registry (no npm needed), checks the tarball
against its published sha512 integrity, keeps it in ``<cache>/site-assets`` (a second build needs
no network) and unpacks ``es5/tex-mml-chtml.js`` and the CHTML fonts into the staged ``_static``.

The site carries no ipywidgets: a widget needs a kernel, and in a static page its controls would
move and do nothing. Every chapter's maps are explorable in the page through its attention view
(:mod:`attnbook.views`), whose script is inline. :func:`freeze_widgets` turns an executed chapter's
widget outputs into text (a finished progress bar keeps its final line) and drops the widget state,
so no page loads the 1.9 MB widget embedder. :data:`OVERRIDES` replaces one theme script the pages
do not need (the theme's icons come from its CSS web font), keeping each chapter page, everything it
loads included, within the 5 MB budget. :func:`sphinx_config` gives the ``_config.yml`` entries.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import re
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import CorruptDataError, MissingResourceError
from .store import atomic_write, cache_dir

__all__ = ["Asset", "ASSETS", "OVERRIDES", "fetch_assets", "freeze_widgets", "sphinx_config", "write_overrides"]


@dataclass(frozen=True)
class Asset:
    """One npm tarball and the files of it a page needs (``member prefix -> folder under _static``)."""

    name: str
    version: str
    url: str
    integrity: str  # "sha512-<base64>", as the registry publishes it
    files: tuple[tuple[str, str], ...]


ASSETS = (
    Asset("mathjax", "3.2.2", "https://registry.npmjs.org/mathjax/-/mathjax-3.2.2.tgz",
          "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
          (("package/es5/tex-mml-chtml.js", "mathjax/tex-mml-chtml.js"),
           ("package/es5/output/chtml/fonts/woff-v2/", "mathjax/output/chtml/fonts/woff-v2/"))),
)

#: files of the theme replaced in ``_static`` (Sphinx copies ``html_static_path`` over the theme's own):
#: pydata-sphinx-theme's Font Awesome SVG script (1.5 MB on every page) swaps ``<i class="fa-…">``
#: icons for inline SVG; its CSS already draws the same icons with the Font Awesome web font.
OVERRIDES = {
    "scripts/fontawesome.js": "/* attnbook: not loaded. The theme's icons are drawn by its CSS web font; the 1.5 MB Font Awesome "
                              "SVG script would take a third of a chapter page's 5 MB budget. */\n",
}

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


def write_overrides(static: Path) -> list[Path]:
    """Write :data:`OVERRIDES` into ``static``; return the files written."""
    written = []
    for rel, text in OVERRIDES.items():
        out = static / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        written.append(out)
    return written


_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_PROGRESS = ("FloatProgressModel", "IntProgressModel")


def _text(value: object) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", str(value or ""))).replace("\u2007", " ").strip()


def _progress_line(state: dict, model_id: str) -> str | None:
    """The final line of a tqdm-style bar (HBox of HTML, progress, HTML) from saved widget state; else None."""
    model = state.get(model_id, {})
    children = [c.removeprefix("IPY_MODEL_") for c in model.get("state", {}).get("children", [])]
    kinds = [state.get(c, {}).get("model_name") for c in children]
    if model.get("model_name") != "HBoxModel" or len(children) != 3 or kinds[1] not in _PROGRESS or {kinds[0], kinds[2]} != {"HTMLModel"}:
        return None
    bar = state[children[1]]["state"]
    value, top = float(bar.get("value") or 0.0), float(bar.get("max") or 0.0)
    filled = int(round(10 * value / top)) if top > 0 else 0
    return f"{_text(state[children[0]]['state'].get('value'))} {'█' * filled}{' ' * (10 - filled)} {_text(state[children[2]]['state'].get('value'))}"


def freeze_widgets(nb: dict) -> int:
    """Make an executed notebook (nbformat JSON) static, in place: a progress-bar widget output becomes
    its final line as text, every other widget output is dropped, and the widget state is removed.
    Returns the number of widget outputs changed."""
    state = nb.get("metadata", {}).get("widgets", {}).get(_WIDGET_STATE, {}).get("state", {})
    changed = 0
    for cell in nb.get("cells", []):
        kept = []
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(_WIDGET_VIEW)
            if view is None:
                kept.append(output)
                continue
            changed += 1
            line = _progress_line(state, view.get("model_id", ""))
            if line is not None:
                kept.append({"output_type": "stream", "name": "stderr", "text": line + "\n"})
        if "outputs" in cell:
            cell["outputs"] = kept
    nb.get("metadata", {}).pop("widgets", None)
    return changed


def sphinx_config() -> dict:
    """``sphinx.config`` entries: the local MathJax (path relative to ``_static``) and no widget embedder."""
    return {
        "html_static_path": ["_static"],
        "nb_ipywidgets_js": {},
        "mathjax_path": "mathjax/tex-mml-chtml.js",
    }
