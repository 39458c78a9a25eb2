"""attnbook.tables: one number format per column, one header row, the notebook formatter."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from attnbook.tables import column_format, frame_html, install

_STYLE = re.compile(r"^-?(\d+)(?:\.(\d+))?(e[+-]\d+)?$")


def _style(text: str) -> tuple:
    """(scientific?, decimals) of a formatted number."""
    m = _STYLE.match(text)
    assert m, text
    return bool(m.group(3)), len(m.group(2) or "")


def test_the_case_of_the_issue_gets_one_style():
    fmt = column_format([0.017, 1.601278e7, "n/a", None, float("nan")])
    shown = [fmt(v) for v in (0.017, 1.601278e7)]
    assert shown == ["1.70e-02", "1.60e+07"]  # a / b >= 1e5: scientific for all
    assert fmt("n/a") == "n/a" and fmt(None) == "" and fmt(float("nan")) == "–"


def test_fixed_point_keeps_three_significant_digits_on_the_smallest():
    fmt = column_format([0.017, 16.0, 2.5])
    assert [fmt(v) for v in (0.017, 16.0, 2.5)] == ["0.0170", "16.0000", "2.5000"]
    assert [column_format([1.5, 120.25])(v) for v in (1.5, 120.25)] == ["1.50", "120.25"]
    assert column_format([3, 4.0, np.int64(7)])(4.0) == "4" and column_format([True, 2.5])(True) == "True"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e9, 1e9, allow_nan=False), st.integers(-10**6, 10**6)), min_size=1, max_size=30))
def test_every_number_of_a_column_has_the_same_style(values):
    fmt = column_format(values)
    styles = {_style(fmt(v)) for v in values}
    assert len(styles) == 1, (values, styles)
    for v in values:  # and it says the number: within the shown precision
        sci, decimals = _style(fmt(v))
        assert abs(float(fmt(v)) - v) <= (abs(v) * 0.01 if sci else 0.5 * 10 ** -decimals) + 1e-12


def test_frame_html_has_one_header_row_the_index_as_a_column_and_right_aligned_numbers():
    frame = pd.DataFrame({"ratio": [0.017, 1.601278e7], "name": ["a", "<b>"]}, index=pd.Index([1, 2], name="seed"))
    page = frame_html(frame)
    assert page.count("<tr>") == 3 and page.count("<thead>") == 1
    assert re.findall(r"<th[^>]*>([^<]*)</th>", page) == ["seed", "ratio", "name"]
    assert '<td class="num">1.70e-02</td>' in page and "&lt;b&gt;" in page  # escaped text
    multi = pd.DataFrame({("x", "mean"): [1.0, 2.25]}, index=pd.MultiIndex.from_tuples([("g", 0), ("g", 1)], names=["generator", "seed"]))
    assert re.findall(r"<th[^>]*>([^<]*)</th>", frame_html(multi)) == ["generator", "seed", "x · mean"]


def test_long_frames_are_elided_and_long_text_cut():
    frame = pd.DataFrame({"v": np.arange(10.0) / 4, "t": ["x" * 50] * 10})
    page = frame_html(frame, max_rows=4, max_colwidth=10)
    assert page.count("<tr>") == 1 + 4 and "6 more rows" in page and "x" * 9 + "…" in page


def test_install_outside_ipython_does_nothing(monkeypatch):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert install() is False


def test_install_makes_frame_html_the_notebook_form_of_a_dataframe(monkeypatch):
    import IPython
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    html_formatter = shell.display_formatter.formatters["text/html"]
    try:
        assert install() is True
        frame = pd.DataFrame({"ratio": [0.017, 1.601278e7]})
        shown, _ = shell.display_formatter.format(frame)
        assert shown["text/html"] == frame_html(frame) and "1.70e-02" in shown["text/html"]
    finally:
        html_formatter.pop(pd.DataFrame, None)
