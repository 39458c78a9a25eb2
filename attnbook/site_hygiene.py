"""A Sphinx extension that keeps every page's head clean: each asset once, none from another host,
MathJax only where the page has maths, and the theme's light/dark mode valid.

Jupyter Book 1.x always loads ``sphinx_thebe``, which declares ``const THEBE_JS_URL`` (an unpkg
address) twice on every page — a console error — though the book has no launch buttons.
sphinx-book-theme adds Font Awesome's script that pydata-sphinx-theme's layout already loads, and
MathJax arrives twice (once with its configuration, once bare) on every page, maths or not.
:func:`clean_assets` runs last on ``html-page-context`` and keeps, of the page's scripts and styles:

- none that names another host (``http://``, ``https://`` or ``//`` in its address or inline body);
- none of ``sphinx_thebe`` (the book runs no Thebe);
- one of each file (the query string ignored), and none the theme's layout already writes;
- MathJax and its configuration only when the page holds maths (``class="math`` in its body).

``html_context["default_mode"] = "auto"`` (set by :func:`setup` unless given) stops
pydata-sphinx-theme's "Got invalid theme mode" console error: its page script reads an empty mode.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["LAYOUT_ASSETS", "clean_assets", "has_math", "setup"]

#: files pydata-sphinx-theme's layout writes itself (``<script>``/``<link>`` in the template, not in the lists)
LAYOUT_ASSETS = frozenset({"scripts/bootstrap.js", "scripts/pydata-sphinx-theme.js", "scripts/fontawesome.js",
                           "styles/theme.css", "styles/pydata-sphinx-theme.css"})
_OUTSIDE = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+")
_INLINE_OUTSIDE = re.compile(r"https?://")
_THEBE = ("sphinx-thebe", "thebe_selector", "THEBE_JS_URL")


def _path(filename: Any) -> str:
    """``_static``-relative path of an asset, without query string (``""`` for an inline one)."""
    text = str(filename or "")
    return text.split("?", 1)[0].removeprefix("_static/")


def _body(asset: Any) -> str:
    return str(getattr(asset, "attributes", {}).get("body", ""))


def has_math(body: str) -> bool:
    """Whether a page's rendered body holds maths MathJax must typeset."""
    return 'class="math' in body


def clean_assets(assets: list, body: str, mathjax_path: str = "") -> list:
    """The assets a page keeps (see the module): ``assets`` are Sphinx's ``script_files`` or
    ``css_files`` entries (objects with ``filename`` and ``attributes``), in order."""
    keep, seen = [], set()
    maths = has_math(body)
    mathjax = _path(mathjax_path)
    for asset in assets:
        name, inline = _path(getattr(asset, "filename", asset)), _body(asset)
        if _OUTSIDE.match(name) or any(t in name or t in inline for t in _THEBE):
            continue
        if name in LAYOUT_ASSETS:
            continue
        is_mathjax = (mathjax and name == mathjax) or "window.MathJax" in inline
        if is_mathjax and not maths:
            continue
        if _INLINE_OUTSIDE.search(inline):
            continue
        key = name or inline
        if key in seen:
            continue
        seen.add(key)
        keep.append(asset)
    return keep


def _page_context(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    body = context.get("body", "")
    path = app.config.mathjax_path if hasattr(app.config, "mathjax_path") else ""
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = clean_assets(list(context[key]), body, path)


def _defaults(app, config) -> None:
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "auto")
    config.html_context = context


def setup(app) -> dict:
    app.connect("config-inited", _defaults)
    app.connect("html-page-context", _page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
