"""The static site: offline assets fetched at build time, and executed chapters made static.

Jupyter Book loads MathJax from a CDN by default, so an offline reader would not see the formulas.
:func:`fetch_assets` downloads it straight from the npm registry (no npm needed), checks the tarball
against its published sha512 integrity, keeps it in ``<cache>/site-assets`` (a second build needs
no network) and unpacks ``es5/tex-mml-chtml.js`` and the CHTML fonts into the staged ``_static``.

The site carries no ipywidgets: a widget needs a kernel, and in a static page its controls would
move and do nothing. Every chapter's maps are explorable in the page through its attention view
(:mod:`attnbook.views`), whose script is inline. :func:`freeze_widgets` drops an executed chapter's
progress bars (they are for the reader running the chapter, not for the page) and puts, in place
of a widget that needs a kernel (an explorer's text box, upload, slider), one line saying where it
is live; it drops the widget state, so no page loads the 1.9 MB widget embedder.
:func:`dedupe_inline_assets` keeps the inline script and styles that outputs share (the attention
view's, the findings tables') once per page.
:data:`OVERRIDES` replaces one theme script the pages do not need (the theme's icons come from its
CSS web font), keeping each chapter page, everything it loads included, within the 5 MB budget.
:func:`sphinx_config` gives the ``_config.yml`` entries: the local MathJax, the site's stylesheet
(``site.css``) and the page-hygiene extension (:mod:`attnbook.site_hygiene`).
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

__all__ = ["Asset", "ASSETS", "EXTENSIONS", "LIVE_NOTE", "OVERRIDES", "STYLESHEET", "dedupe_inline_assets", "fetch_assets", "freeze_widgets",
           "sphinx_config", "write_overrides", "write_stylesheet"]


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


#: what a page shows in place of a control that needs a kernel
LIVE_NOTE = "This control needs a running kernel: it is live when you run this chapter in JupyterLab."


def _is_progress_bar(state: dict, model_id: str) -> bool:
    """A tqdm-style bar (HBox of HTML, progress, HTML) in saved widget state."""
    model = state.get(model_id, {})
    children = [c.removeprefix("IPY_MODEL_") for c in model.get("state", {}).get("children", [])]
    kinds = [state.get(c, {}).get("model_name") for c in children]
    return model.get("model_name") == "HBoxModel" and len(children) == 3 and kinds[1] in _PROGRESS and {kinds[0], kinds[2]} == {"HTMLModel"}


_TQDM_LINE = re.compile(r"^.*\d+%\|.*\|.*$|^.*\d+/\d+ \[\d+:\d+.*(?:it/s|s/it|\?it/s).*\]$", re.M)


def _live_note() -> dict:
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/html": f'<p class="attnbook-live-note">{html.escape(LIVE_NOTE)}</p>', "text/plain": LIVE_NOTE}}


def freeze_widgets(nb: dict) -> int:
    """Make an executed notebook (nbformat JSON) static, in place: a progress bar (widget, or tqdm's
    text in a stream) is dropped; any other widget output (a control that needs a kernel) becomes
    one :data:`LIVE_NOTE` line (one per cell); the widget state is removed. Returns the number of
    outputs changed."""
    state = nb.get("metadata", {}).get("widgets", {}).get(_WIDGET_STATE, {}).get("state", {})
    changed = 0
    for cell in nb.get("cells", []):
        kept, noted = [], False
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(_WIDGET_VIEW)
            if view is None:
                if output.get("output_type") == "stream":
                    text = output.get("text", "")
                    text = text if isinstance(text, str) else "".join(text)
                    bare = _TQDM_LINE.sub("", text.replace("\r", "\n"))
                    if bare != text.replace("\r", "\n"):
                        changed += 1
                        bare = re.sub(r"\n{2,}", "\n", bare).lstrip("\n")
                        if bare.strip():
                            kept.append({**output, "text": bare})
                        continue
                kept.append(output)
                continue
            changed += 1
            if not _is_progress_bar(state, view.get("model_id", "")) and not noted:
                kept.append(_live_note())
                noted = True
        if "outputs" in cell:
            cell["outputs"] = kept
    nb.get("metadata", {}).pop("widgets", None)
    return changed


#: an inline asset an output marks as shared by the page: ``<style class="attnbook-…-style">`` or
#: ``<script class="attnbook-…-script">`` (the view's script and styles, the findings tables' styles)
_MARKED = re.compile(r'<(style|script) class="(attnbook-[a-z0-9-]+-(?:style|script))">.*?</\1>', re.S)


def dedupe_inline_assets(nb: dict) -> int:
    """Keep each marked inline asset (:data:`_MARKED`: the attention view's script and styles, the
    findings tables' styles) in the first output of a notebook that carries it; later copies are
    removed (every output carries them so it reads alone in JupyterLab; the page needs them once, and
    the first copy comes before every output that uses it). Returns the number of copies removed."""
    seen: set[str] = set()
    removed = 0

    def keep_first(match: re.Match) -> str:
        nonlocal removed
        if match.group(2) in seen:
            removed += 1
            return ""
        seen.add(match.group(2))
        return match.group(0)

    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            page = output.get("data", {}).get("text/html")
            if page is None:
                continue
            page = page if isinstance(page, str) else "".join(page)
            output["data"]["text/html"] = _MARKED.sub(keep_first, page)
    return removed


#: Sphinx extensions the staged book adds
EXTENSIONS = ("attnbook.site_hygiene",)
#: the site's stylesheet, staged as ``_static/attnbook.css``
STYLESHEET = "attnbook.css"


def write_stylesheet(static: Path) -> Path:
    """Copy the package's ``site.css`` into ``static`` as :data:`STYLESHEET`; return its path."""
    from importlib import resources

    out = static / STYLESHEET
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(resources.files(__package__).joinpath("site.css").read_text(encoding="utf-8"), encoding="utf-8")
    return out


def sphinx_config() -> dict:
    """``sphinx.config`` entries: the local MathJax (path relative to ``_static``), no widget embedder,
    the site's stylesheet."""
    return {
        "html_static_path": ["_static"],
        "html_css_files": [STYLESHEET],
        "nb_ipywidgets_js": {},
        "mathjax_path": "mathjax/tex-mml-chtml.js",
    }
