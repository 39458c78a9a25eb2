"""Tables a reader can read on the page: one number format per column, one header row.

pandas formats each cell of an object column on its own, so a column can show ``0.017`` beside
``1.601278e+07``; a named index adds a header row of its own. :func:`frame_html` renders a
DataFrame with **one format per column**, chosen from the column's numbers before any is written:

- every number an integer (``|v| < 1e15``): ``123``;
- else, with ``a`` the largest and ``b`` the smallest non-zero ``|v|``: scientific ``1.23e+07`` for
  every cell when ``a ≥ 1e5``, ``a < 1e-3`` or ``a / b ≥ 1e5``;
- else fixed point with ``d = clamp(2 − ⌊log10 b⌋, 0, 4)`` decimals (three significant digits on the
  smallest number): ``0.0170`` beside ``16.0000``, never two styles.

NaN shows as ``–``; text cells stay as they are; booleans are text. The index becomes the first
column(s) (so the table has one header row), numeric columns are right-aligned with tabular figures.
:func:`install` makes it the notebook's HTML form of every DataFrame.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["column_format", "frame_html", "install"]

_CLASS = "attnbook-table"
_NA = "–"


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def column_format(values: Sequence[Any]) -> Callable[[Any], str]:
    """The one format for a column (see the module); text and booleans pass through as ``str``."""
    nums = [float(v) for v in values if _number(v) and math.isfinite(float(v))]
    if nums and all(v == int(v) and abs(v) < 1e15 for v in nums):
        def number(v: float) -> str:
            return f"{v:.0f}"
    elif nums:
        nonzero = [abs(v) for v in nums if v != 0.0]
        a, b = (max(nonzero), min(nonzero)) if nonzero else (0.0, 0.0)
        if nonzero and (a >= 1e5 or a < 1e-3 or a / b >= 1e5):
            def number(v: float) -> str:
                return f"{v:.2e}"
        else:
            d = min(4, max(0, 2 - math.floor(math.log10(b)))) if nonzero else 0
            def number(v: float) -> str:
                return f"{v:.{d}f}"
    else:
        def number(v: float) -> str:
            return f"{v:g}"

    def fmt(value: Any) -> str:
        if value is None:
            return ""
        if _number(value):
            v = float(value)
            return _NA if math.isnan(v) else (str(v) if math.isinf(v) else number(v))
        return str(value)

    return fmt


def _label(key: Any) -> str:
    if isinstance(key, tuple):
        return " · ".join(str(k) for k in key if str(k) != "")
    return "" if key is None else str(key)


def frame_html(frame: Any, *, max_rows: int | None = None, max_colwidth: int | None = None) -> str:
    """``frame`` (a pandas DataFrame) as one HTML table: the index as leading column(s), one header
    row, one number format per column (:func:`column_format`). Rows beyond ``max_rows`` (default
    pandas' ``display.max_rows``) are elided in the middle; text longer than ``max_colwidth``
    (default pandas' ``display.max_colwidth``) is cut with "…"."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame: expected a pandas DataFrame, got {type(frame).__name__}")
    max_rows = pd.get_option("display.max_rows") if max_rows is None else max_rows
    max_colwidth = pd.get_option("display.max_colwidth") if max_colwidth is None else max_colwidth
    named = any(n is not None for n in frame.index.names)
    flat = frame.reset_index() if named or not isinstance(frame.index, pd.RangeIndex) else frame
    if not named and not isinstance(frame.index, pd.RangeIndex):
        flat = flat.rename(columns={"index": ""})
    columns = list(flat.columns)
    cells = [list(flat.iloc[:, k]) for k in range(len(columns))]
    formats = [column_format(col) for col in cells]
    numeric = [any(_number(v) for v in col) and all(_number(v) or v is None for v in col) for col in cells]
    n = len(flat)
    rows: list[int | None] = list(range(n))
    if max_rows and n > max_rows:
        half = max(1, max_rows // 2)
        rows = list(range(half)) + [None] + list(range(n - half, n))

    def cut(text: str) -> str:
        return text if not max_colwidth or len(text) <= max_colwidth else text[: max_colwidth - 1] + "…"

    out = [f'<table class="{_CLASS}">', "<thead><tr>"]
    out += [f'<th{" class=num" if numeric[k] else ""} scope="col">{html.escape(_label(c))}</th>' for k, c in enumerate(columns)]
    out.append("</tr></thead><tbody>")
    for i in rows:
        if i is None:
            out.append(f'<tr class="attnbook-elided"><td colspan="{len(columns)}">… {n - 2 * half} more rows …</td></tr>')
            continue
        tds = []
        for k in range(len(columns)):
            text = html.escape(cut(formats[k](cells[k][i])))
            tds.append(f'<td class="num">{text}</td>' if numeric[k] else f"<td>{text}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def install() -> bool:
    """Make :func:`frame_html` the HTML form of every DataFrame shown in this IPython kernel;
    returns False (and does nothing) outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the book
        return False
    shell = get_ipython()
    if shell is None:
        return False
    import pandas as pd

    shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, frame_html)
    return True
