"""HTML for the findings page and the chapters' findings and checks tables: verdict badges first,
text that wraps, cards on a phone, filters without a kernel.

Every block is self-contained HTML (no network, no outside URL) that renders the same in JupyterLab
and in the built site. The page's ``<style>`` goes into the **first** block of a page only
(:func:`assets`, once per kernel: one kernel executes one page), later blocks use it; the filters'
``<script>`` is in the findings block (one per page), after the rows it filters. Colours
come from the theme's variables with fallbacks — the site's ``--pst-color-*``, JupyterLab's
``--jp-*``, plain defaults with ``prefers-color-scheme`` — and the badges' own colours switch with
``html[data-theme="dark"]``, JupyterLab's dark theme or (no theme set) the system's dark mode.

A badge's text on its background has a contrast ratio of at least 4.5:1 (WCAG AA) in light and
dark (:func:`contrast`, checked in the tests from :data:`BADGES`); a badge carries a symbol and the
verdict in words, so it never reads by colour alone. Below :data:`BREAKPOINT_PX` each row is a card
(``label: value`` lines, the badge on top). Without JavaScript every row shows and the filters stay
hidden; with it, labelled ``<select>``s filter by chapter and by verdict and a line says
"N of M findings shown".
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["BADGES", "BREAKPOINT_PX", "badge_kind", "badge", "contrast", "relative_luminance", "assets", "STYLE_CLASS", "findings_html",
           "table_html"]

#: below this width (px) a table of this module is a stack of cards
BREAKPOINT_PX = 720

#: badge kind -> (symbol, light text, light background, dark text, dark background)
BADGES: dict[str, tuple[str, str, str, str, str]] = {
    "supported": ("✓", "#0b4d2c", "#cfeadb", "#b5ecca", "#123f29"),
    "seed-dependent": ("◐", "#5c4400", "#fbe9b7", "#ffe08a", "#3f3200"),
    "not-supported": ("✗", "#7d1c26", "#f6d5d9", "#f7bcc3", "#4d1720"),
    "inconclusive": ("?", "#3b4046", "#e2e4e7", "#d6dadf", "#30353b"),
    "not-run": ("–", "#0a4a5a", "#d2f1f8", "#a6e6f5", "#0c3642"),
}

#: verdict text (any table of the book) -> badge kind
_KINDS = {"supported": "supported", "seed-dependent": "seed-dependent", "not supported": "not-supported", "inconclusive": "inconclusive",
          "not run": "not-run", "yes": "supported", "no": "not-supported", "detected": "supported", "not detected": "not-supported"}


def badge_kind(verdict: str) -> str:
    """The badge kind of a verdict (``"supported"``, ``"yes"``, ``"NO"``, ``"detected"`` …); any other
    text is ``"inconclusive"`` (neutral grey)."""
    return _KINDS.get(str(verdict).strip().lower(), "inconclusive")


def badge(verdict: str) -> str:
    """``verdict`` as a badge: ``<span class="ab-badge ab-<kind>">symbol verdict</span>`` (escaped)."""
    kind = badge_kind(verdict)
    symbol = BADGES[kind][0]
    return f'<span class="ab-badge ab-{kind}"><span aria-hidden="true">{symbol}</span> {html.escape(str(verdict))}</span>'


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of ``#rrggbb``: ``0.2126 R + 0.7152 G + 0.0722 B`` of the linearised
    channels (``c/12.92`` below 0.04045, else ``((c + 0.055)/1.055)^2.4``)."""
    text = colour.lstrip("#")
    if len(text) != 6:
        raise ValueError(f"colour: expected '#rrggbb', got {colour!r}")
    channels = [int(text[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio ``(L1 + 0.05) / (L2 + 0.05)`` (L1 the lighter), from 1 to 21."""
    a, b = sorted((relative_luminance(foreground), relative_luminance(background)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def _badge_vars(dark: bool) -> str:
    k = 3 if dark else 1
    return "".join(f"--ab-{kind}-fg:{spec[k]};--ab-{kind}-bg:{spec[k + 1]};" for kind, spec in BADGES.items())


_ROOT = ".attnbook-fv"
_DARK_SCOPES = ('html[data-theme="dark"] ' + _ROOT, 'body[data-jp-theme-light="false"] ' + _ROOT)

_STYLE = f"""
{_ROOT}{{--ab-text:var(--pst-color-text-base,var(--jp-ui-font-color1,#1f2328));--ab-muted:var(--pst-color-text-muted,var(--jp-ui-font-color2,#59636e));
--ab-border:var(--pst-color-border,var(--jp-border-color1,#d0d7de));--ab-surface:var(--pst-color-surface,var(--jp-layout-color2,#f6f8fa));
--ab-bg:var(--pst-color-background,var(--jp-layout-color1,#ffffff));{_badge_vars(False)}
color:var(--ab-text);max-width:100%;font-size:.9em;margin:.5em 0 1em}}
@media (prefers-color-scheme:dark){{html:not([data-theme]) body:not([data-jp-theme-light]) {_ROOT}{{--ab-text:#e6edf3;--ab-muted:#9198a1;
--ab-border:#3d444d;--ab-surface:#151b23;--ab-bg:#0d1117;{_badge_vars(True)}}}}}
{", ".join(_DARK_SCOPES)}{{{_badge_vars(True)}}}
html[data-theme="dark"] .bd-content div.cell_output div.text_html:has(> {_ROOT}){{background:transparent;color:inherit;padding:0}}
{_ROOT} table.ab-table{{width:100%;max-width:100%;table-layout:auto;border-collapse:collapse;margin:0;display:table;overflow:visible}}
{_ROOT} .ab-table th,{_ROOT} .ab-table td{{text-align:left;vertical-align:top;padding:.35em .5em;border:0;border-bottom:1px solid var(--ab-border);
overflow-wrap:break-word;word-break:normal;white-space:normal;hyphens:manual}}
{_ROOT} .ab-table thead th{{background:var(--ab-surface);color:var(--ab-text);font-weight:600;border-bottom:2px solid var(--ab-border)}}
{_ROOT} .ab-table td.ab-verdict{{white-space:nowrap;overflow-wrap:normal}}
{_ROOT} .ab-fixed td{{overflow-wrap:anywhere}}
{_ROOT} .ab-fixed td.ab-verdict{{overflow-wrap:normal}}
{_ROOT} table.ab-table.ab-fixed{{table-layout:fixed}}
{_ROOT} .ab-table td.num{{text-align:right;font-variant-numeric:tabular-nums}}
{_ROOT} .ab-badge{{display:inline-block;padding:.1em .55em;border-radius:1em;font-weight:600;font-size:.92em;line-height:1.5;white-space:nowrap}}
{"".join(f"{_ROOT} .ab-{kind}{{color:var(--ab-{kind}-fg);background:var(--ab-{kind}-bg)}}" for kind in BADGES)}
{_ROOT} .ab-note{{display:block;color:var(--ab-muted);font-size:.88em;margin-top:.2em}}
{_ROOT} .ab-seed{{display:inline-block;white-space:nowrap;min-width:1.6em;margin:0 .15em .15em 0;padding:0 .3em;border-radius:.3em;font-size:.85em;text-align:center}}
{_ROOT} .ab-filters{{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:center;margin:.3em 0 .6em}}
{_ROOT} .ab-filters[hidden]{{display:none}}
{_ROOT} .ab-filters label{{font-weight:600;margin-right:.3em}}
{_ROOT} .ab-filters select,{_ROOT} .ab-filters button{{color:var(--ab-text);background:var(--ab-bg);border:1px solid var(--ab-border);border-radius:.3em;
padding:.2em .4em;font:inherit;max-width:100%}}
{_ROOT} .ab-filters select:focus-visible,{_ROOT} .ab-filters button:focus-visible{{outline:2px solid var(--ab-text);outline-offset:2px}}
{_ROOT} .ab-count{{color:var(--ab-muted)}}
{_ROOT} tr[hidden]{{display:none}}
{_ROOT} table.ab-grid{{width:100%;border-collapse:collapse;margin:0;display:table;table-layout:fixed}}
{_ROOT} .ab-grid col.ab-tickcol{{width:4.6em}}
{_ROOT} .ab-grid th,{_ROOT} .ab-grid td{{padding:.25em .4em;border:0;border-bottom:1px solid var(--ab-border);vertical-align:top;text-align:center;
overflow-wrap:break-word;white-space:normal}}
{_ROOT} .ab-grid thead th{{background:var(--ab-surface);font-weight:600;font-size:.9em}}
{_ROOT} .ab-grid th[scope=row],{_ROOT} .ab-grid th[scope=colgroup]{{text-align:left;font-weight:normal;overflow-wrap:anywhere}}
{_ROOT} .ab-grid th[scope=colgroup]{{font-weight:600;background:var(--ab-surface)}}
{_ROOT} .ab-grid summary{{cursor:pointer}}
{_ROOT} .ab-grid details p{{margin:.2em 0 .3em;color:var(--ab-muted);font-size:.9em}}
{_ROOT} .ab-tick{{display:inline-block;min-width:1.7em;border-radius:.3em;font-weight:700;text-decoration:none;cursor:help}}
{_ROOT} .ab-tick:focus-visible{{outline:2px solid var(--ab-text);outline-offset:1px}}
{_ROOT} .ab-legend{{display:flex;flex-wrap:wrap;gap:.3em 1em;margin:.3em 0 .6em;padding:0;list-style:none}}
@media (max-width:{BREAKPOINT_PX}px){{
{_ROOT} .ab-table thead{{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}}
{_ROOT} .ab-table,{_ROOT} .ab-table tbody,{_ROOT} .ab-table tr,{_ROOT} .ab-table td{{display:block;width:auto}}
{_ROOT} .ab-table colgroup{{display:none}}
{_ROOT} .ab-table tr{{border:1px solid var(--ab-border);border-radius:.5em;margin:0 0 .7em;padding:.4em .6em;background:var(--ab-bg)}}
{_ROOT} .ab-table tr[hidden]{{display:none}}
{_ROOT} .ab-table td{{border:0;padding:.15em 0}}
{_ROOT} .ab-table td.num{{text-align:left}}
{_ROOT} .ab-table td[data-label]:not(.ab-verdict)::before{{content:attr(data-label) ": ";font-weight:600;color:var(--ab-muted)}}
{_ROOT} .ab-table td.ab-verdict{{padding-bottom:.3em}}
}}
@media (max-width:480px){{
{_ROOT} .ab-grid col.ab-tickcol{{width:3.5em}}
{_ROOT} .ab-grid thead th{{font-size:.78em;padding:.25em .15em}}
{_ROOT} .ab-grid td{{padding:.25em .15em}}
}}
"""

_SCRIPT = """
(function () {
  document.querySelectorAll(".attnbook-fv[data-filter]:not([data-ready])").forEach(function (root) {
    root.setAttribute("data-ready", "");
    var box = root.querySelector(".ab-filters");
    var selects = box.querySelectorAll("select[data-column]");
    var rows = root.querySelectorAll("tbody tr");
    var count = box.querySelector(".ab-count");
    var noun = root.getAttribute("data-noun");
    function apply() {
      var shown = 0;
      rows.forEach(function (row) {
        var keep = Array.prototype.every.call(selects, function (s) { return !s.value || row.getAttribute("data-" + s.dataset.column) === s.value; });
        row.hidden = !keep;
        if (keep) { shown += 1; }
      });
      count.textContent = shown + " of " + rows.length + " " + noun + " shown";
    }
    selects.forEach(function (s) { s.addEventListener("change", apply); });
    box.querySelector("button.ab-reset").addEventListener("click", function () {
      selects.forEach(function (s) { s.value = ""; });
      apply();
    });
    box.hidden = false;
    apply();
  });
})();
"""

#: the class marking this module's inline style (the site keeps it once per page: :func:`attnbook.site.dedupe_inline_assets`)
STYLE_CLASS = "attnbook-findings-style"


def assets() -> str:
    """The blocks' ``<style>``, marked with :data:`STYLE_CLASS`. Every block carries it, so each
    output reads on its own in JupyterLab; the site build keeps the first on a page. (The filters'
    ``<script>`` is in the one filtered block of a page, after the rows it filters.)"""
    return f'<style class="{STYLE_CLASS}">{_STYLE}</style>'


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _seeds(text: str) -> str:
    """``"0:S 1:N"`` as small badges with the full verdict on hover."""
    names = {"S": "supported", "N": "not supported", "I": "inconclusive"}
    out = []
    for part in str(text).split():
        seed, _, letter = part.partition(":")
        if letter not in names:
            return _esc(text)
        kind = badge_kind(names[letter])
        out.append(f'<abbr class="ab-seed ab-{kind}" title="seed {_esc(seed)}: {names[letter]}">{_esc(seed)}:{letter}</abbr>')
    return "".join(out) if out else _esc(text)


def _rows_html(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, verdict: int, html_columns: frozenset[int] = frozenset(),
               notes: dict[int, list[tuple[str, int]]] | None = None, data: dict[str, int] | None = None,
               numeric: frozenset[int] = frozenset(), formats: dict[int, Any] | None = None,
               widths: Sequence[str | None] | None = None) -> str:
    notes = notes or {}
    data = data or {}
    formats = formats or {}
    head = "".join(f'<th scope="col"{" class=num" if k in numeric else ""}>{_esc(columns[k])}</th>' for k in range(len(columns)))
    body = []
    for row in rows:
        attrs = "".join(f' data-{name}="{_esc(row[k])}"' for name, k in data.items())
        cells = []
        for k, name in enumerate(columns):
            value = row[k]
            text = value if k in html_columns else _esc(formats[k](value) if k in formats else value)
            if k == verdict:
                text = badge(str(value))
            extra = "".join(f'<span class="ab-note">{_esc(label)}: {_esc(row[j])}</span>' for label, j in notes.get(k, []) if str(row[j]) not in ("", "—"))
            cls = ' class="ab-verdict"' if k == verdict else (' class="num"' if k in numeric else "")
            cells.append(f'<td{cls} data-label="{_esc(name)}">{text}{extra}</td>')
        body.append(f"<tr{attrs}>{''.join(cells)}</tr>")
    if widths:  # a fixed layout: the table never grows past its column; columns without a width share what is left
        cols = "".join(f'<col style="width:{w}">' if w else "<col>" for w in widths)
        return (f'<table class="ab-table ab-fixed"><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table>')
    return f'<table class="ab-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def findings_html(table: Any, *, element_id: str = "attnbook-findings", filters: bool = True) -> str:
    """The findings page's table (:func:`attnbook.findings.collect`'s frame: chapter, statement,
    verdict, per seed, measured, control, rule, declared, reason) as one block: the verdict badge
    first, then chapter, statement (with the reason and when its rule was declared beneath), each
    seed's verdict, measured, control and rule; with ``filters`` a labelled ``<select>`` for chapter
    and for verdict (options in table order), a "Show all" button and the count."""
    needed = ["chapter", "statement", "verdict", "per seed", "measured", "control", "rule", "declared", "reason"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        from .errors import InvalidInputError, bad_argument

        raise bad_argument(InvalidInputError, "table", f"a findings table with columns {needed}", list(table.columns), raw=True)
    columns = ["verdict", "chapter", "statement", "per seed", "measured", "control", "rule"]
    rows = [[r["verdict"], r["chapter"], r["statement"], _seeds(r["per seed"]), r["measured"], r["control"], r["rule"], r["declared"], r["reason"]]
            for _, r in table.iterrows()]
    body = _rows_html(columns, rows, verdict=0, html_columns=frozenset({3}), notes={2: [("why", 8)], 6: [("declared", 7)]},
                      data={"chapter": 1, "verdict": 0}, widths=["9.6em", "6.5em", None, "4.6em", None, None, None])
    controls = ""
    if filters:
        selects = []
        for name, k in (("chapter", 1), ("verdict", 0)):
            options = "".join(f'<option value="{_esc(v)}">{_esc(v)}</option>' for v in dict.fromkeys(r[k] for r in rows))
            selects.append(f'<span><label for="{element_id}-{name}">{name.capitalize()}</label>'
                           f'<select id="{element_id}-{name}" data-column="{name}"><option value="">all</option>{options}</select></span>')
        controls = (f'<div class="ab-filters" role="group" aria-label="Filter the findings" hidden>{"".join(selects)}'
                    f'<button type="button" class="ab-reset">Show all</button>'
                    f'<span class="ab-count" role="status" aria-live="polite">{len(rows)} of {len(rows)} findings shown</span></div>')
    flag = ' data-filter="" data-noun="findings"' if filters else ""
    script = f"<script>{_SCRIPT}</script>" if filters else ""
    return f'{assets()}<div class="attnbook-fv" id="{_esc(element_id)}"{flag}>{controls}{body}</div>{script}'


def table_html(frame: Any, verdict: str | None = None, *, notes: dict[str, Sequence[str]] | None = None, element_id: str | None = None,
               widths: Sequence[str | None] | None = None) -> str:
    """Any table of the page (a DataFrame; a named index becomes leading columns) as one block: the
    ``verdict`` column first as a badge, text that wraps, numbers one format per column
    (:func:`attnbook.tables.column_format`), cards on a phone. ``notes`` folds columns under
    another (``{"check": ["threshold"]}`` shows "threshold: …" beneath the check), so a wide table
    keeps few columns. ``widths`` (one CSS width or None per shown column, in the order shown) fixes
    the layout: the table then never grows past its column, and columns without a width share the rest."""
    import pandas as pd

    from . import tables
    from .errors import InvalidInputError, bad_argument

    if not isinstance(frame, pd.DataFrame):
        raise bad_argument(InvalidInputError, "frame", "a pandas DataFrame", type(frame).__name__, raw=True)
    named = any(n is not None for n in frame.index.names)
    flat = frame.reset_index() if named else frame.reset_index(drop=True)
    columns = [str(c) for c in flat.columns]
    if verdict is not None and verdict not in columns:
        raise bad_argument(InvalidInputError, "verdict", f"a column of the table {columns}", verdict, raw=True)
    notes = dict(notes or {})
    for host, folded in notes.items():
        bad = [c for c in [host, *folded] if c not in columns or c == verdict]
        if bad:
            raise bad_argument(InvalidInputError, "notes", f"columns of the table {columns} other than the verdict", bad, raw=True)
    hidden = set(itertools.chain.from_iterable(notes.values()))
    order = ([verdict] if verdict else []) + [c for c in columns if c != verdict and c not in hidden]
    if widths is not None and len(widths) != len(order):
        raise bad_argument(InvalidInputError, "widths", f"one width (or None) per shown column {order}", list(widths), raw=True)
    values = [list(flat[c]) for c in columns]
    fmt = {c: tables.column_format(v) for c, v in zip(columns, values)}
    numeric = {c for c, v in zip(columns, values)
               if any(tables._number(x) for x in v) and all(tables._number(x) or x is None for x in v)}
    shown = order + sorted(hidden, key=columns.index)
    rows = [[fmt[c](values[columns.index(c)][i]) for c in shown] for i in range(len(flat))]
    index = {c: k for k, c in enumerate(shown)}
    body = _rows_html(order, rows, verdict=0 if verdict else -1,
                      notes={index[h]: [(c, index[c]) for c in folded] for h, folded in notes.items()},
                      numeric=frozenset(index[c] for c in order if c in numeric), widths=widths)
    ident = f' id="{_esc(element_id)}"' if element_id else ""
    return f'{assets()}<div class="attnbook-fv"{ident}>{body}</div>'
