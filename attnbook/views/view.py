"""One attention view for the notebook and the static page: :class:`AttentionView`.

Add :class:`~attnbook.maps.AttentionMaps` under facet values (``view.add(maps, snapshot="step 400")``);
the view renders as one self-contained HTML block — the data (deflated, quantised, base64), the
script (``view.js``) and the styles (``view.css``) inline, nothing fetched — which shows the same in
JupyterLab (a trusted output) and in the built site. In the page a reader picks the facets, the
layer, the head, the sample, the view (heatmap, head view, model view) and the colour gamma, reads a
weight by hovering it and exports what is drawn as SVG or PNG. Drawings fit their container's width
and take their colours from the theme (the site's, JupyterLab's, or light/dark defaults). Controls
that need a kernel are listed as :class:`LiveControl`; the page names them in one line saying where
they are live, with no dead control.

The block marks its inline assets (``<style class="attnbook-view-style">`` and
``<script class="attnbook-view-script">``, then a separate mount script) so a page holding several
views can keep them once: :func:`strip_assets` removes them from all blocks but the first.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from .. import checks
from ..errors import CorruptDataError, InvalidInputError, bad_argument
from ..maps import AttentionMaps
from ..store import atomic_write
from . import encode as codec

__all__ = ["AttentionView", "LiveControl", "MAX_BYTES", "VIEWS", "read", "strip_assets"]

#: the drawings a reader can switch between
VIEWS = ("heatmap", "head", "model")
#: default ceiling on one view's embedded payload (a chapter page's budget is 5 MB in all)
MAX_BYTES = 2_500_000
_KINDS = ("text", "file", "button", "range")
_DATA_CLASS = "attnbook-view-data"
_STYLE_CLASS = "attnbook-view-style"
_SCRIPT_CLASS = "attnbook-view-script"
#: the standalone page's own colours (light, and dark where the reader's system asks for it)
_PAGE_STYLE = ("<style>:root{color-scheme:light dark}body{margin:16px;background:#ffffff;color:#1f2328;"
               "font-family:system-ui,sans-serif}@media (prefers-color-scheme: dark){body{background:#0d1117;color:#e6edf3}}</style>")
_counter = itertools.count()


@dataclass(frozen=True)
class LiveControl:
    """A control that needs a kernel (typing text, uploading a file, retraining): named in the view's
    "Live in JupyterLab" line (no form control in the page).

    ``kind``: ``"text"`` (a text area), ``"file"`` (a file input), ``"button"`` or ``"range"``.
    """

    label: str
    kind: str = "button"

    def __post_init__(self) -> None:
        if not str(self.label).strip():
            raise bad_argument(InvalidInputError, "label", "a non-empty label", self.label)
        if self.kind not in _KINDS:
            raise bad_argument(InvalidInputError, "kind", f"one of {list(_KINDS)}", self.kind)


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _cmap_hex(name: str) -> str:
    """256 RGB colours of a matplotlib colormap as one hex string (the page uses the book's colours)."""
    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise bad_argument(InvalidInputError, "cmap", "a matplotlib colormap name", name) from None
    rgb = np.rint(cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)
    return rgb.tobytes().hex()


def _labels(labels: Sequence[str] | None, keep: np.ndarray) -> list[str]:
    index = np.flatnonzero(keep)
    return [str(i) for i in index] if labels is None else [str(labels[i]) for i in index]


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise bad_argument(InvalidInputError, name, "a string", value)
    return value


class AttentionView:
    """Attention maps under facets, rendered as one self-contained HTML block (see the module).

    ``facets`` names the selectors (e.g. ``("dataset", "snapshot")``); every :meth:`add` gives one
    value for each, and the values must form a full grid; ``start`` picks the values shown first
    (default: the first added of each). ``encoding``: ``"u8sqrt"`` (one byte a
    weight) or ``"f16"`` (:mod:`attnbook.views.encode`). ``max_bytes`` bounds the embedded
    payload: :meth:`to_html` raises before writing a page over it.
    """

    def __init__(
        self,
        title: str = "",
        *,
        caption: str = "",
        facets: Sequence[str] = (),
        encoding: str = "u8sqrt",
        live: Sequence[LiveControl] = (),
        live_hint: str = "run this chapter in JupyterLab",
        view: str = "heatmap",
        gamma: float = 1.0,
        cmap: str = "viridis",
        max_bytes: int = MAX_BYTES,
        start: Mapping[str, Any] | None = None,
    ) -> None:
        self.title, self.caption = _text("title", title), _text("caption", caption)
        if isinstance(facets, str) or not all(isinstance(f, str) and f for f in facets):
            raise bad_argument(InvalidInputError, "facets", "a sequence of facet names", facets)
        if len(set(facets)) != len(facets):
            raise bad_argument(InvalidInputError, "facets", "distinct names", list(facets))
        self.facets = tuple(facets)
        checks.choice("encoding", encoding, codec.ENCODINGS)
        checks.choice("view", view, VIEWS)
        if not all(isinstance(c, LiveControl) for c in live):
            raise bad_argument(InvalidInputError, "live", "LiveControl items", live)
        self.encoding, self.live, self.live_hint, self.view = encoding, tuple(live), _text("live_hint", live_hint), view
        self.gamma = checks.interval("gamma", gamma, 0.1, 2.0)
        self.cmap = _cmap_hex(cmap)
        self.max_bytes = checks.positive_int("max_bytes", max_bytes)
        if start is not None and (not isinstance(start, Mapping) or not set(start) <= set(self.facets)):
            raise bad_argument(InvalidInputError, "start", f"a mapping from some of {list(self.facets)} to values", start)
        self.start = {str(k): str(v) for k, v in (start or {}).items()}
        self._values: dict[str, list[str]] = {f: [] for f in self.facets}
        self._entries: list[dict] = []
        self._keys: set[tuple[str, ...]] = set()

    # -- building ---------------------------------------------------------------------------
    def add(
        self,
        maps: AttentionMaps,
        *,
        note: str = "",
        head_notes: Sequence[Sequence[str]] | None = None,
        series: Any = None,
        sample_labels: Sequence[str] | None = None,
        **facets: Any,
    ) -> AttentionView:
        """Add ``maps`` under one value of each facet; returns the view (calls chain).

        Each sample is trimmed to its valid queries and keys (rows with an allowed key; keys some
        query may attend to). ``note``: a line shown under the drawing for this entry;
        ``head_notes[layer][head]``: a line for one head (or a list of lines, one per sample); ``series`` ``(batch, keys)``: a signal
        drawn above the keys (time-series chapters); ``sample_labels``: names of the samples.
        """
        if not isinstance(maps, AttentionMaps):
            raise bad_argument(InvalidInputError, "maps", "an AttentionMaps", maps)
        note = _text("note", note)  # every check before the view changes
        if set(facets) != set(self.facets):
            raise bad_argument(InvalidInputError, "facets", f"a value for each of {list(self.facets)}", sorted(facets))
        key = tuple(str(facets[f]) for f in self.facets)
        if key in self._keys:
            raise bad_argument(InvalidInputError, "facets", "a combination not added before", dict(zip(self.facets, key)))
        L, B, H, Q, K = maps.shape
        labels = [f"sample {b}" for b in range(B)] if sample_labels is None else [str(s) for s in sample_labels]
        if len(labels) != B:
            raise bad_argument(InvalidInputError, "sample_labels", f"{B} labels", f"{len(labels)} labels", raw=True)
        if head_notes is not None and (len(head_notes) != L or any(len(row) != H for row in head_notes) or not all(
                isinstance(n, str) or (isinstance(n, Sequence) and len(n) == B and all(isinstance(x, str) for x in n))
                for row in head_notes for n in row)):
            raise bad_argument(InvalidInputError, "head_notes", f"{L} rows of {H} strings (or lists of {B} strings, one per sample)",
                               "another shape", raw=True)
        signal = None
        if series is not None:
            signal = checks.array("series", series, 2)
            if signal.shape != (B, K):
                raise bad_argument(InvalidInputError, "series", f"shape {(B, K)}", f"shape {signal.shape}", raw=True)
        weights = maps.weights.detach().to("cpu").numpy()
        allowed = maps.key_mask().detach().to("cpu").numpy()
        empty = [b for b in range(B) if not allowed[b].any()]
        if empty:
            raise bad_argument(InvalidInputError, "maps", "samples with at least one allowed query-key pair", f"none in sample {empty[0]}", raw=True)
        raw, samples = [], []
        for b in range(B):
            rows, cols = allowed[b].any(1), allowed[b].any(0)
            w = weights[:, b][:, :, rows][:, :, :, cols]  # (L, H, q, k)
            a = allowed[b][rows][:, cols]
            raw.append(codec.encode(w, self.encoding))
            samples.append({
                "label": labels[b],
                "queries": _labels(None if maps.query_labels is None else maps.query_labels[b], rows),
                "keys": _labels(None if maps.key_labels is None else maps.key_labels[b], cols),
                "mask": None if a.all() else codec.pack_mask(a),
                "series": None if signal is None else [float(f"{v:.5g}") for v in signal[b][cols]],
            })
        for f, v in zip(self.facets, key):
            if v not in self._values[f]:
                self._values[f].append(v)
        self._keys.add(key)
        self._entries.append({
            "key": key, "layers": list(maps.layer_names), "heads": H, "encoding": self.encoding,
            "data": codec.pack(b"".join(raw)), "samples": samples, "note": note,
            "head_notes": None if head_notes is None else [[n if isinstance(n, str) else list(n) for n in row] for row in head_notes],
        })
        return self

    # -- the payload --------------------------------------------------------------------------
    def payload(self) -> dict:
        """The JSON the page embeds (raises when the facets do not form a full grid or it is over ``max_bytes``)."""
        if not self._entries:
            raise bad_argument(InvalidInputError, "view", "at least one added AttentionMaps", "an empty view", raw=True)
        grid = set(itertools.product(*(self._values[f] for f in self.facets)))
        missing = sorted(grid - self._keys)
        if missing:
            raise bad_argument(InvalidInputError, "facets", "every combination of the facet values",
                               f"{len(missing)} missing, e.g. {dict(zip(self.facets, missing[0]))}", raw=True)
        for f, v in self.start.items():
            if v not in self._values[f]:
                raise bad_argument(InvalidInputError, f"start[{f!r}]", f"one of {self._values[f]}", v)
        entries = []
        for e in self._entries:
            entry = dict(e)
            entry["key"] = [self._values[f].index(v) for f, v in zip(self.facets, e["key"])]
            entries.append(entry)
        data = {
            "version": 1, "title": self.title, "caption": self.caption,
            "facets": [{"name": f, "values": self._values[f]} for f in self.facets],
            "entries": entries, "live": [{"label": c.label, "kind": c.kind} for c in self.live], "live_hint": self.live_hint,
            "initial": {"view": self.view, "gamma": self.gamma,
                        "facets": [self._values[f].index(self.start[f]) if f in self.start else 0 for f in self.facets]},
            "cmap": self.cmap,
        }
        size = len(json.dumps(data))
        if size > self.max_bytes:
            raise bad_argument(InvalidInputError, "view", f"an embedded payload of at most {self.max_bytes} bytes",
                               f"{size} bytes (fewer samples, entries or layers; or raise max_bytes)", raw=True)
        return data

    @property
    def nbytes(self) -> int:
        """Size of the HTML block in bytes (payload, script and styles)."""
        return len(self.to_html().encode("utf-8"))

    def to_html(self) -> str:
        """The self-contained HTML block: root ``div.attnbook-view``, its data, styles and script."""
        text = json.dumps(self.payload(), separators=(",", ":"), ensure_ascii=False)
        text = text.replace("</", "<\\/").replace("<!--", "<\\!--")
        uid = f"attnbook-view-{hashlib.sha1(text.encode()).hexdigest()[:10]}-{next(_counter)}"
        title = html.escape(self.title or "attention view")
        return (
            f'<div class="attnbook-view" id="{uid}" role="figure" aria-label="{title}">'
            f'<script type="application/json" class="{_DATA_CLASS}">{text}</script>'
            f'<p class="attnbook-fallback">{title}: this interactive view needs JavaScript '
            f"(in JupyterLab: trust the notebook or run the cell).</p></div>"
            f'<style class="{_STYLE_CLASS}">{_asset("view.css")}</style>'
            f'<script class="{_SCRIPT_CLASS}">{_asset("view.js")}</script>'
            f"<script>window.attnbookView.mount(document.getElementById({json.dumps(uid)}));</script>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def save(self, path: str | Path) -> Path:
        """Write a standalone HTML page holding the view (opens offline in any browser)."""
        path = Path(path)
        page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title or "attention view")}'
                f'</title><meta name="viewport" content="width=device-width, initial-scale=1">{_PAGE_STYLE}</head><body>{self.to_html()}</body></html>')
        atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
        return path

    def __repr__(self) -> str:
        return f"AttentionView({self.title!r}, facets={list(self.facets)}, entries={len(self._entries)})"


_ASSETS = re.compile(rf'<style class="{_STYLE_CLASS}">.*?</style>|<script class="{_SCRIPT_CLASS}">.*?</script>', re.S)


def strip_assets(block_html: str) -> str:
    """``block_html`` without the views' inline assets (the marked style and view script), keeping
    every view's ``div`` and mount script: for all views of a page but the first, whose assets
    serve them all (the script defines ``window.attnbookView`` before the later mounts run)."""
    if not isinstance(block_html, str):
        raise bad_argument(InvalidInputError, "block_html", "a string", block_html)
    return _ASSETS.sub("", block_html)


_PAYLOAD = re.compile(rf'<script type="application/json" class="{_DATA_CLASS}">(.*?)</script>', re.S)


def read(page: str) -> list[dict]:
    """Every view embedded in an HTML ``page``, decoded: the payload with, in each entry,
    ``weights`` (one float32 ``(layers, heads, queries, keys)`` array per sample) and ``allowed``
    (bool ``(queries, keys)`` per sample). The reference the page's script is tested against."""
    views = []
    for match in _PAYLOAD.finditer(page):
        data = json.loads(match.group(1).replace("<\\/", "</").replace("<\\!--", "<!--"))
        for entry in data["entries"]:
            flat, at = codec.decode(codec.unpack(entry["data"]), entry["encoding"]), 0
            entry["weights"], entry["allowed"] = [], []
            for s in entry["samples"]:
                shape = (len(entry["layers"]), entry["heads"], len(s["queries"]), len(s["keys"]))
                n = int(np.prod(shape))
                if at + n > flat.size:
                    raise CorruptDataError(f"view entry {entry['key']}: expected {n} more weights, got {flat.size - at}")
                entry["weights"].append(flat[at:at + n].reshape(shape))
                entry["allowed"].append(np.ones(shape[2:], bool) if s["mask"] is None else codec.unpack_mask(s["mask"], shape[2:]))
                at += n
        views.append(data)
    return views
