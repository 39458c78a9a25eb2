"""Checks and findings: the rule of a check, a finding's verdict against its control, the tables (HTML
frames in a notebook, text elsewhere), the `checks:` and `findings:` lines, and the errors."""

from __future__ import annotations

import math

import pytest

from attnbook import claims
from attnbook.claims import Check, Condition, FindingSpec, Rule, findings_frame, findings_line, fmt, show_checks, show_findings
from attnbook.errors import InvalidInputError


@pytest.mark.parametrize("measured, op, threshold, holds", [(0.5, "<", 1.0, True), (1.0, "<", 1.0, False), (1.0, "<=", 1.0, True),
                                                            (2.0, ">", 1.0, True), (1.0, ">=", 1.0, True), (math.nan, "<=", 1.0, False),
                                                            (math.inf, ">", 1.0, False)])
def test_a_check_holds_by_its_rule_and_never_for_a_non_finite_measurement(measured, op, threshold, holds):
    assert claims.Check("x", measured, op, threshold).holds is holds


def test_bad_checks_are_refused():
    with pytest.raises(InvalidInputError, match="op"):
        claims.Check("x", 1.0, "==", 1.0)
    with pytest.raises(InvalidInputError, match="measured"):
        claims.Check("x", True, "<", 1.0)
    with pytest.raises(InvalidInputError, match="checks"):
        claims.show_checks([])


def test_the_checks_frame_for_the_page():
    frame = claims.checks_frame([claims.Check("a check", 1e-5, "<=", 1e-4), claims.Check("another", 2, ">", 3)])
    assert list(frame.columns) == ["measured", "threshold", "holds"] and frame.index.name == "check"
    assert frame.loc["a check"].tolist() == ["1e-05", "<= 1e-04", "yes"] and frame.loc["another", "holds"] == "NO"
    assert "<table" in frame.to_html()


def test_outside_a_notebook_the_tables_print_as_text(capsys):
    assert not claims._in_notebook()
    claims.show_checks([claims.Check("small", 0.25, "<", 1.0)])
    out = capsys.readouterr().out
    assert out.splitlines()[0].split(" | ")[0].strip() == "check" and "0.250" in out and "< 1.000" in out


def test_fmt_is_the_same_text_on_any_machine():
    assert [fmt(x) for x in (0.12345, 1e-7, 0.0, 3, "s", math.nan, True)] == ["0.123", "1e-07", "0.000", "3", "s", "nan", "True"]


# -- findings ---------------------------------------------------------------------------------------------


def _spec(rule=None, key="demo/finding"):
    return FindingSpec(key, "a statement", "a measure", "a control", rule or Rule.of(("x", ">=", 2.0)))


@pytest.mark.parametrize("model, control, verdict", [(3.0, 1.0, "supported"), (1.0, 1.0, "not supported"), (3.0, 2.5, "not supported"),
                                                     (math.nan, 1.0, "inconclusive"), (3.0, math.inf, "inconclusive")])
def test_a_finding_is_supported_only_when_the_model_passes_and_its_control_does_not(model, control, verdict):
    f = _spec().result(model, control)
    assert f.verdict == verdict
    assert f.reason == {"supported": "the model meets the rule; the control does not",
                        "not supported": "the control meets the rule too" if model >= 2 else "the model does not meet the rule",
                        "inconclusive": "a value is not finite"}[verdict]


def test_every_condition_of_a_rule_must_hold_and_an_undecided_test_is_inconclusive():
    rule = Rule.of(("a", ">=", 2.0), ("b", "<", 1.0))
    assert str(rule) == "a >= 2.000 and b < 1.000" and rule.measures == ("a", "b")
    spec = _spec(rule)
    assert spec.result({"a": 3, "b": 0.5}, {"a": 1, "b": 0.5}).verdict == "supported"
    assert spec.result({"a": 3, "b": 1.0}, {"a": 1, "b": 0.5}).verdict == "not supported"
    f = spec.result({"a": 3, "b": 0.5}, {"a": 1, "b": 0.5}, inconclusive="the positive control failed")
    assert f.verdict == "inconclusive" and f.reason == "the positive control failed"
    record = f.record()
    assert record["measured"] == {"a": 3.0, "b": 0.5} and record["rule"] == str(rule) and record["declared"] == "post hoc"
    with pytest.raises(InvalidInputError, match="measured"):
        spec.result(3.0, {"a": 1, "b": 0.5})  # two measures need a mapping
    with pytest.raises(InvalidInputError, match="control"):
        spec.result({"a": 3, "b": 0.5}, {"a": 1})
    with pytest.raises(InvalidInputError, match="measured"):
        spec.result({"a": True, "b": 0.5}, {"a": 1, "b": 0.5})


@pytest.mark.parametrize("kwargs, match", [({"key": "no-slash"}, "key"), ({"statement": ""}, "statement"), ({"declared": "later"}, "declared"),
                                           ({"profiles": ("medium",)}, "profiles"), ({"rule": "x > 1"}, "rule")])
def test_bad_declarations_are_refused(kwargs, match):
    base = dict(key="demo/x", statement="s", measure="m", control="c", rule=Rule.of(("x", ">", 1.0)))
    with pytest.raises(InvalidInputError, match=match):
        FindingSpec(**{**base, **kwargs})
    with pytest.raises(InvalidInputError, match="op"):
        Condition("x", "==", 1.0)
    with pytest.raises(InvalidInputError, match="conditions"):
        Rule(())


def test_show_checks_and_show_findings_print_their_lines(capsys):
    show_checks([Check("rows sum to 1", 1e-7, "<", 1e-5)])
    assert capsys.readouterr().out.splitlines()[-1] == "checks: 1/1 hold"
    with pytest.raises(AssertionError, match="broken"):
        show_checks([Check("broken", 2.0, "<", 1.0)])
    assert capsys.readouterr().out.splitlines()[-1] == "checks: 0/1 hold"
    found = [_spec(key="demo/a").result(3.0, 1.0), _spec(key="demo/b").result(1.0, 1.0), _spec(key="demo/c").result(math.nan, 1.0)]
    show_findings(found)  # never asserts a verdict
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "findings: 1 supported, 1 not supported, 1 inconclusive" == findings_line(found)
    assert out.splitlines()[0].split(" | ")[0].strip() == "finding"
    frame = findings_frame(found)
    assert list(frame.columns) == ["measured", "control", "rule", "declared", "verdict"] and frame.verdict.tolist() == list(claims.VERDICTS)
    with pytest.raises(InvalidInputError, match="once"):
        show_findings(found + found[:1])
    with pytest.raises(InvalidInputError, match="findings"):
        show_findings([])
