"""Checks and findings: the rule of a check, a finding's verdict against its control, the tables (HTML
frames in a notebook, text elsewhere), the `checks:` and `findings:` lines, and the errors."""

from __future__ import annotations

import math

import numpy as np

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


def _spec(rule=None, key="demo/finding", scale="linear"):
    return FindingSpec(key, "a statement", "a measure", "a control", rule or Rule.of(("x", ">=", 2.0)), scale=scale)


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
    assert out.splitlines()[-1] == "findings: 1 supported, 0 seed-dependent, 1 not supported, 1 inconclusive" == findings_line(found)
    assert out.splitlines()[0].split(" | ")[0].strip() == "finding"
    frame = findings_frame(found)
    assert list(frame.columns) == ["verdict", "per seed", "measured", "control", "rule", "declared"]
    assert frame.verdict.tolist() == list(claims.SEED_VERDICTS) and frame["per seed"].tolist() == ["0:S", "0:N", "0:I"]
    with pytest.raises(InvalidInputError, match="once"):
        show_findings(found + found[:1])
    with pytest.raises(InvalidInputError, match="findings"):
        show_findings([])


# -- across seeds -------------------------------------------------------------------------------------

@pytest.mark.parametrize("per_seed, verdict", [
    (["S", "S", "S"], "supported"), (["S", "N", "S"], "seed-dependent"), (["S", "I", "S"], "seed-dependent"),
    (["N", "N", "N"], "not supported"), (["N", "I", "N"], "inconclusive"), (["I", "I", "I"], "inconclusive"), (["S"], "supported"),
])
def test_the_verdict_across_seeds_is_the_books_one_rule(per_seed, verdict):
    spec = _spec(key="demo/a")
    value = {"S": (3.0, 1.0), "N": (1.0, 1.0), "I": (math.nan, 1.0)}
    results = {seed: [spec.result(*value[v])] for seed, v in enumerate(per_seed)}
    (a,) = claims.across_seeds(results)
    assert a.per_seed == tuple({"S": "supported", "N": "not supported", "I": "inconclusive"}[v] for v in per_seed)
    assert a.verdict == verdict and a.seeds == tuple(range(len(per_seed)))
    assert claims.findings_line([a]).count(f" {verdict}") >= 1
    record = a.record()
    assert record["verdict"] == verdict and [r["seed"] for r in record["per_seed"]] == list(range(len(per_seed)))


def test_the_interval_across_seeds_is_scipys_t_interval_and_ratios_use_the_log_scale():
    from scipy import stats

    x = [0.7, 0.9, 0.8, 1.2]
    mean, low, high = claims.seed_interval(x)
    ref = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert mean == pytest.approx(np.mean(x)) and (low, high) == pytest.approx(ref)
    gmean, glow, ghigh = claims.seed_interval(x, "log")
    lref = stats.t.interval(0.95, len(x) - 1, loc=np.mean(np.log(x)), scale=stats.sem(np.log(x)))
    assert gmean == pytest.approx(stats.gmean(x)) and (glow, ghigh) == pytest.approx(np.exp(lref))
    assert glow > 0  # a ratio's interval never crosses zero on the log scale
    one = claims.seed_interval([2.0])
    assert one[0] == 2.0 and math.isnan(one[1]) and math.isnan(one[2])
    assert claims.seed_interval([2.0, 2.0]) == (2.0, 2.0, 2.0)
    assert all(math.isnan(v) for v in claims.seed_interval([1.0, -1.0], "log"))
    with pytest.raises(InvalidInputError, match="scale"):
        claims.seed_interval(x, "sqrt")


def test_across_seeds_refuses_seeds_that_report_different_findings_and_frames_show_the_interval():
    a, b = _spec(key="demo/a", scale="log"), _spec(key="demo/b")
    with pytest.raises(InvalidInputError, match="same findings"):
        claims.across_seeds({0: [a.result(3.0, 1.0)], 1: [b.result(3.0, 1.0)]})
    with pytest.raises(InvalidInputError, match="seeds"):
        claims.AcrossSeeds(a, (0, 0), (a.result(3.0, 1.0), a.result(3.0, 1.0)))
    with pytest.raises(InvalidInputError, match="scale"):
        _spec(key="demo/c", scale="cubic")
    (found,) = claims.across_seeds({0: [a.result(2.0, 1.0)], 1: [a.result(8.0, 1.0)], 2: [a.result(4.0, 1.0)]})
    frame = findings_frame([found])
    assert frame["per seed"].iloc[0] == "0:S 1:S 2:S" and frame.verdict.iloc[0] == "supported"
    assert frame.measured.iloc[0].startswith("x: 4.000 [") and "mean of 3 seeds, geometric" in frame.measured.iloc[0]
    assert found.record()["effect"]["mean"] == pytest.approx(4.0)
