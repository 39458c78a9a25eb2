"""Claims and hypotheses: the rule of a claim, the tables (HTML frames in a notebook, text elsewhere),
the `claims: K/N hold` line, and the errors."""

from __future__ import annotations

import math

import pytest

from attnbook import claims
from attnbook.claims import Claim, Hypothesis, check_claims, claims_frame, fmt, hypotheses_frame, show_hypotheses
from attnbook.errors import InvalidInputError


@pytest.mark.parametrize("measured, op, threshold, holds", [(0.5, "<", 1.0, True), (1.0, "<", 1.0, False), (1.0, "<=", 1.0, True),
                                                            (2.0, ">", 1.0, True), (1.0, ">=", 1.0, True), (math.nan, "<=", 1.0, False),
                                                            (math.inf, ">", 1.0, False)])
def test_a_claim_holds_by_its_rule_and_never_for_a_non_finite_measurement(measured, op, threshold, holds):
    assert Claim("x", measured, op, threshold).holds is holds


def test_bad_claims_are_refused():
    with pytest.raises(InvalidInputError, match="op"):
        Claim("x", 1.0, "==", 1.0)
    with pytest.raises(InvalidInputError, match="measured"):
        Claim("x", True, "<", 1.0)


def test_check_claims_prints_the_table_and_the_line_and_asserts(capsys):
    check_claims([Claim("small", 0.25, "<", 1.0), Claim("big", 3.0, ">=", 2.0)])
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "claims: 2/2 hold" and "small" in out and "0.250" in out and "< 1.000" in out
    with pytest.raises(AssertionError, match="wrong"):
        check_claims([Claim("fine", 0.0, "<=", 0.0), Claim("wrong", 2.0, "<", 1.0)])
    assert "claims: 1/2 hold" in capsys.readouterr().out
    with pytest.raises(InvalidInputError, match="claims"):
        check_claims([])


def test_tables_as_frames_for_the_page():
    frame = claims_frame([Claim("a claim", 1e-5, "<=", 1e-4), Claim("another", 2, ">", 3)])
    assert list(frame.columns) == ["measured", "threshold", "holds"] and frame.index.name == "claim"
    assert frame.loc["a claim"].tolist() == ["1e-05", "<= 1e-04", "yes"] and frame.loc["another", "holds"] == "NO"
    hyp = hypotheses_frame([Hypothesis("h1", "m", "c", "r", True), Hypothesis("h2", "m2", "c2", "r2", False)])
    assert list(hyp.columns) == ["measured", "control", "rule", "verdict"] and hyp.verdict.tolist() == ["supported", "not supported"]
    html = hyp.to_html()
    assert "<table" in html and "not supported" in html


def test_outside_a_notebook_the_tables_print_as_text(capsys):
    assert not claims._in_notebook()
    show_hypotheses([Hypothesis("a hypothesis", "measured 1", "control 0", "1 > 0", True)])
    out = capsys.readouterr().out
    assert out.splitlines()[0].split(" | ")[0].strip() == "hypothesis" and "supported" in out
    with pytest.raises(InvalidInputError, match="hypotheses"):
        show_hypotheses([])


def test_fmt_is_the_same_text_on_any_machine():
    assert [fmt(x) for x in (0.12345, 1e-7, 0.0, 3, "s", math.nan, True)] == ["0.123", "1e-07", "0.000", "3", "s", "nan", "True"]
