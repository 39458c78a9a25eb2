"""Checks and findings: the two tables that end every chapter, and the one summary schema.

A **check** (:class:`Check`) is the software or the maths a chapter relies on — captured maps equal
the library's own, rows sum to 1, a checkpoint reloads — a measured value against a threshold,
asserted: :func:`show_checks` prints ``checks: K/N hold`` and raises unless all hold. Checks are
never counted as findings.

A **finding** (:class:`Finding`) is a statement about what a trained model does, declared once in
:mod:`attnbook.registry` (:class:`FindingSpec`: statement, measure, control, rule, profiles, and
whether the rule was declared before its first result or after). The rule (:class:`Rule`, every
condition must hold) is applied to the model's measurement **and** to the control's::

    supported      rule(model) and not rule(control)
    not supported  not rule(model), or rule(control) (the control passes too: the rule cannot tell them apart)
    inconclusive   a value is missing or not finite, or the test could not decide (a stated reason)

Every finding is measured on each training seed and reported across them (:class:`AcrossSeeds`,
:func:`across_seeds`), by one rule for the whole book::

    supported       supported on every seed (for a causal test: the largest per-seed p passes — a conjunction test)
    seed-dependent  supported on some seeds, not on others
    not supported   supported on none
    inconclusive    supported on none and inconclusive on at least one

beside the mean of the rule's first measure over seeds and its 95 % t-interval (n − 1 degrees of
freedom; on the log scale for a ratio, ``FindingSpec.scale="log"``: a geometric mean and interval).
:func:`show_findings` prints ``findings: S supported, D seed-dependent, N not supported, I inconclusive``;
tests compare verdicts with the committed table of expected ones and never assert that a finding is supported.

Every chapter writes its ``summary.json`` with :func:`write_summary`, in one schema (the findings
page reads it). In a notebook the tables render as HTML; outside one they print as text.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

from .errors import InvalidInputError, bad_argument

__all__ = ["fmt", "Check", "checks_frame", "show_checks", "VERDICTS", "SEED_VERDICTS", "DECLARED", "SCALES", "Condition", "Rule",
           "FindingSpec", "Finding", "AcrossSeeds", "across_seeds", "seed_interval", "findings_frame", "findings_line", "show_findings",
           "summary_record", "write_summary"]

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def fmt(value: float | int | str) -> str:
    """Numbers with 3 decimals, or one significant digit below 1e-3 (the same text on any machine)."""
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.0e}"


@dataclass(frozen=True)
class Check:
    """``measured <op> threshold``, asserted, e.g. ``Check("captured = output_attentions", 3e-8, "<", 1e-5)``."""

    text: str
    measured: float
    op: str
    threshold: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise bad_argument(InvalidInputError, "op", f"one of {list(_OPS)}", self.op)
        if not isinstance(self.measured, (int, float)) or isinstance(self.measured, bool):
            raise bad_argument(InvalidInputError, "measured", "a number", self.measured)

    @property
    def holds(self) -> bool:
        return math.isfinite(self.measured) and bool(_OPS[self.op](self.measured, self.threshold))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), "-+-".join("-" * w for w in widths), *map(line, rows)])


def _in_notebook() -> bool:
    """Whether a Jupyter kernel (JupyterLab, papermill, nbval) runs this code."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the book's stack
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _show(frame, verdict: str | None = None, notes: Mapping[str, Sequence[str]] | None = None) -> None:
    """``frame`` as HTML in a notebook (the ``verdict`` column first, as a badge, and ``notes``
    folded under their host column: :func:`attnbook.findings_view.table_html`), as a text table elsewhere."""
    if _in_notebook():
        from IPython.display import HTML, display

        from .findings_view import table_html

        display(HTML(table_html(frame, verdict, notes=notes)))
    else:
        print(_table([frame.index.name, *frame.columns], [[str(i), *map(str, r)] for i, r in zip(frame.index, frame.values.tolist())]))


# -- checks -------------------------------------------------------------------------------------------

def checks_frame(checks: Sequence[Check]):
    """The checks as a pandas DataFrame indexed by check (measured, threshold, holds): an HTML table in a notebook."""
    import pandas as pd

    rows = [{"check": c.text, "measured": fmt(c.measured), "threshold": f"{c.op} {fmt(c.threshold)}", "holds": "yes" if c.holds else "NO"}
            for c in checks]
    return pd.DataFrame(rows, columns=["check", "measured", "threshold", "holds"]).set_index("check")


def show_checks(checks: Sequence[Check]) -> None:
    """Show the checks table (HTML in a notebook, text elsewhere), print ``checks: K/N hold``, and
    raise AssertionError unless all hold."""
    if not checks or not all(isinstance(c, Check) for c in checks):
        raise bad_argument(InvalidInputError, "checks", "one or more Check", checks)
    _show(checks_frame(checks), "holds")
    held = sum(c.holds for c in checks)
    print(f"checks: {held}/{len(checks)} hold")
    failing = [c.text for c in checks if not c.holds]
    assert not failing, f"checks that do not hold: {failing}"


# -- findings -----------------------------------------------------------------------------------------

#: the verdicts a finding can get across seeds (:class:`AcrossSeeds`)
VERDICTS = ("supported", "seed-dependent", "not supported", "inconclusive")
#: the verdicts a finding can get on one seed (:class:`Finding`)
SEED_VERDICTS = ("supported", "not supported", "inconclusive")
#: how a finding's effect is averaged over seeds: as it is, or on the log scale (ratios)
SCALES = ("linear", "log")
#: when a finding's rule was declared: before its first result, or after seeing results
DECLARED = ("pre-registered", "post hoc")


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise bad_argument(InvalidInputError, name, "a real number", value)
    return float(value)


@dataclass(frozen=True)
class Condition:
    """``measure <op> threshold`` on one named measure, e.g. ``Condition("period contrast", ">=", 2.0)``."""

    measure: str
    op: str
    threshold: float

    def __post_init__(self) -> None:
        if not isinstance(self.measure, str) or not self.measure:
            raise bad_argument(InvalidInputError, "measure", "a non-empty name", self.measure)
        if self.op not in _OPS:
            raise bad_argument(InvalidInputError, "op", f"one of {list(_OPS)}", self.op)
        object.__setattr__(self, "threshold", _number("threshold", self.threshold))

    def passes(self, value: float) -> bool:
        """Whether ``value`` meets the condition (never for a missing or non-finite value)."""
        return value is not None and math.isfinite(value) and bool(_OPS[self.op](value, self.threshold))

    def __str__(self) -> str:
        return f"{self.measure} {self.op} {fmt(self.threshold)}"


@dataclass(frozen=True)
class Rule:
    """A frozen decision rule: every condition must hold. Build with :meth:`of`:
    ``Rule.of(("period contrast", ">=", 2.0))``."""

    conditions: tuple[Condition, ...]

    def __post_init__(self) -> None:
        if not self.conditions or not all(isinstance(c, Condition) for c in self.conditions):
            raise bad_argument(InvalidInputError, "conditions", "one or more Condition", self.conditions, raw=True)

    @classmethod
    def of(cls, *conditions: tuple[str, str, float]) -> "Rule":
        return cls(tuple(Condition(*c) for c in conditions))

    @property
    def measures(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.measure for c in self.conditions))

    def passes(self, values: Mapping[str, float]) -> bool:
        """Whether every condition holds on ``values`` ``{measure: value}``."""
        return all(c.passes(values.get(c.measure)) for c in self.conditions)

    def __str__(self) -> str:
        return " and ".join(map(str, self.conditions))


@dataclass(frozen=True)
class FindingSpec:
    """A finding as declared in :mod:`attnbook.registry`: ``key`` (``"<chapter slug>/<name>"``), the
    ``statement`` about the trained model, the ``measure`` in words, the ``control`` (a model, input
    or training that could have made it false), the ``rule``, the ``profiles`` it applies to,
    ``declared`` (:data:`DECLARED`), ``note`` (why the rule is what it is; every change to it) and the
    ``scale`` (:data:`SCALES`) on which the rule's first measure is averaged over seeds."""

    key: str
    statement: str
    measure: str
    control: str
    rule: Rule
    profiles: tuple[str, ...] = ("quick", "full")
    declared: str = "post hoc"
    note: str = ""
    scale: str = "linear"

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or self.key.count("/") != 1 or not all(self.key.split("/")):
            raise bad_argument(InvalidInputError, "key", "'<chapter slug>/<name>'", self.key)
        for name in ("statement", "measure", "control"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise bad_argument(InvalidInputError, name, "a non-empty text", getattr(self, name))
        if not isinstance(self.rule, Rule):
            raise bad_argument(InvalidInputError, "rule", "a Rule", type(self.rule).__name__, raw=True)
        if self.declared not in DECLARED:
            raise bad_argument(InvalidInputError, "declared", f"one of {list(DECLARED)}", self.declared)
        if self.scale not in SCALES:
            raise bad_argument(InvalidInputError, "scale", f"one of {list(SCALES)}", self.scale)
        if not self.profiles or not set(self.profiles) <= {"quick", "full"}:
            raise bad_argument(InvalidInputError, "profiles", "a non-empty tuple of 'quick'/'full'", self.profiles)

    @property
    def chapter(self) -> str:
        return self.key.split("/")[0]

    def result(self, measured: Mapping[str, float] | float, control: Mapping[str, float] | float, *, detail: str = "",
               inconclusive: str = "") -> "Finding":
        """This finding's result: the model's ``measured`` and the ``control``'s values of the rule's
        measures (a number when the rule has one measure)."""
        return Finding(self, _values(self.rule, "measured", measured), _values(self.rule, "control", control), detail, inconclusive)


def _values(rule: Rule, name: str, values) -> dict[str, float]:
    if not isinstance(values, Mapping):
        if len(rule.measures) != 1:
            raise bad_argument(InvalidInputError, name, f"a mapping of {list(rule.measures)}", values)
        values = {rule.measures[0]: values}
    missing = sorted(set(rule.measures) - set(values))
    if missing:
        raise bad_argument(InvalidInputError, name, f"values of {list(rule.measures)}", f"no {missing}", raw=True)
    return {k: _number(f"{name}[{k!r}]", values[k]) for k in rule.measures}


@dataclass(frozen=True)
class Finding:
    """A finding's result: its :class:`FindingSpec`, the model's values of the rule's measures, the
    control's, free ``detail`` (intervals, p-values) and, when the test could not decide, the reason
    (``inconclusive``). The verdict is computed (module docstring), never given."""

    spec: FindingSpec
    measured: dict[str, float]
    control: dict[str, float]
    detail: str = ""
    inconclusive: str = ""

    @property
    def model_passes(self) -> bool:
        return self.spec.rule.passes(self.measured)

    @property
    def control_passes(self) -> bool:
        return self.spec.rule.passes(self.control)

    @property
    def verdict(self) -> str:
        values = [*self.measured.values(), *self.control.values()]
        if self.inconclusive or not all(math.isfinite(v) for v in values):
            return "inconclusive"
        return "supported" if self.model_passes and not self.control_passes else "not supported"

    @property
    def reason(self) -> str:
        """Why the verdict is what it is, in a few words."""
        if self.verdict == "inconclusive":
            return self.inconclusive or "a value is not finite"
        if self.verdict == "supported":
            return "the model meets the rule; the control does not"
        return "the control meets the rule too" if self.model_passes else "the model does not meet the rule"

    def record(self) -> dict:
        """The JSON record of ``summary.json``'s ``findings`` list."""
        s = self.spec
        return {"key": s.key, "statement": s.statement, "measure": s.measure, "control": s.control, "rule": str(s.rule),
                "declared": s.declared, "measured": dict(self.measured), "control_measured": dict(self.control), "detail": self.detail,
                "verdict": self.verdict, "reason": self.reason}


def seed_interval(values: Sequence[float], scale: str = "linear", confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)`` of ``values`` (one per seed): the mean and its t-interval,
    ``mean ± t_{n−1, (1+c)/2} · s / √n``; with ``scale="log"`` all of it on ``log(values)``, exponentiated
    (a geometric mean and interval, for ratios). NaN bounds for fewer than two finite values; NaN
    throughout when a log-scale value is not positive."""
    from scipy import stats

    if scale not in SCALES:
        raise bad_argument(InvalidInputError, "scale", f"one of {list(SCALES)}", scale)
    x = [float(v) for v in values if v is not None and math.isfinite(v)]
    if scale == "log":
        if any(v <= 0 for v in x):
            return math.nan, math.nan, math.nan
        x = [math.log(v) for v in x]
    if not x:
        return math.nan, math.nan, math.nan
    back = math.exp if scale == "log" else float
    mean = sum(x) / len(x)
    if len(x) < 2:
        return back(mean), math.nan, math.nan
    sem = stats.sem(x)
    low, high = (mean, mean) if sem == 0 else stats.t.interval(confidence, len(x) - 1, loc=mean, scale=sem)
    return back(mean), back(float(low)), back(float(high))


@dataclass(frozen=True)
class AcrossSeeds:
    """One finding over training seeds: its :class:`FindingSpec`, the ``seeds`` and the
    :class:`Finding` of each (``results``, same order). The verdict is computed (module docstring)."""

    spec: FindingSpec
    seeds: tuple[int, ...]
    results: tuple[Finding, ...]

    def __post_init__(self) -> None:
        if not self.results or len(self.seeds) != len(self.results) or len(set(self.seeds)) != len(self.seeds):
            raise bad_argument(InvalidInputError, "seeds/results", "one result for each of one or more distinct seeds",
                               (self.seeds, len(self.results)), raw=True)
        if not all(isinstance(f, Finding) and f.spec.key == self.spec.key for f in self.results):
            raise bad_argument(InvalidInputError, "results", f"results of {self.spec.key!r}", [getattr(f, "spec", f) for f in self.results], raw=True)

    @property
    def per_seed(self) -> tuple[str, ...]:
        """Each seed's verdict."""
        return tuple(f.verdict for f in self.results)

    @property
    def verdict(self) -> str:
        v = self.per_seed
        if all(x == "supported" for x in v):
            return "supported"
        if "supported" in v:
            return "seed-dependent"
        return "inconclusive" if "inconclusive" in v else "not supported"

    @property
    def reason(self) -> str:
        n, k = len(self.results), sum(x == "supported" for x in self.per_seed)
        if n == 1:
            return self.results[0].reason
        return {"supported": f"supported on all {n} seeds", "seed-dependent": f"supported on {k} of {n} seeds",
                "not supported": f"supported on none of {n} seeds"}.get(self.verdict, f"supported on none of {n} seeds; inconclusive on "
                                                                               f"{sum(x == 'inconclusive' for x in self.per_seed)}")

    @property
    def measure(self) -> str:
        """The measure whose mean and interval are reported: the rule's first."""
        return self.spec.rule.measures[0]

    def effect(self, which: str = "measured") -> tuple[float, float, float]:
        """``(mean, low, high)`` of the first measure over seeds (:func:`seed_interval`), for the model
        (``"measured"``) or the control (``"control"``)."""
        return seed_interval([getattr(f, which)[self.measure] for f in self.results], self.spec.scale)

    def means(self, which: str = "measured") -> dict[str, float]:
        """Every measure's mean over seeds (the first on the spec's scale)."""
        out = {}
        for m in self.spec.rule.measures:
            values = [getattr(f, which)[m] for f in self.results]
            out[m] = seed_interval(values, self.spec.scale if m == self.measure else "linear")[0]
        return out

    def record(self) -> dict:
        """The JSON record of ``summary.json``'s ``findings`` list: the spec, the verdict across seeds,
        the means over seeds (``measured``, ``control_measured``), the first measure's interval
        (``effect``: mean, low, high; None where not defined) and every seed's own record (``per_seed``)."""
        s = self.spec
        mean, low, high = self.effect()
        return {"key": s.key, "statement": s.statement, "measure": s.measure, "control": s.control, "rule": str(s.rule),
                "declared": s.declared, "seeds": list(self.seeds), "measured": self.means(), "control_measured": self.means("control"),
                "effect": {"measure": self.measure, "scale": s.scale, "n": len(self.seeds),
                           **{k: v if math.isfinite(v) else None for k, v in (("mean", mean), ("low", low), ("high", high))}},
                "detail": self.results[0].detail if len(self.results) == 1 else "",
                "per_seed": [{"seed": seed, **{k: v for k, v in f.record().items() if k in ("measured", "control_measured", "detail", "verdict",
                                                                                          "reason")}}
                             for seed, f in zip(self.seeds, self.results)],
                "verdict": self.verdict, "reason": self.reason}


def across_seeds(per_seed: Mapping[int, Sequence[Finding]]) -> list[AcrossSeeds]:
    """Group each seed's findings ``{seed: [Finding, …]}`` by finding (in the first seed's order); every
    seed must report the same findings."""
    if not per_seed:
        raise bad_argument(InvalidInputError, "per_seed", "findings of one or more seeds", per_seed)
    seeds = list(per_seed)
    keys = [f.spec.key for f in per_seed[seeds[0]]]
    for seed in seeds:
        got = [f.spec.key for f in per_seed[seed]]
        if sorted(got) != sorted(keys) or len(set(got)) != len(got):
            raise bad_argument(InvalidInputError, "per_seed", f"the same findings on every seed (seed {seeds[0]}: {keys})",
                               f"seed {seed}: {got}", raw=True)
    by_key = {seed: {f.spec.key: f for f in per_seed[seed]} for seed in seeds}
    return [AcrossSeeds(by_key[seeds[0]][k].spec, tuple(seeds), tuple(by_key[s][k] for s in seeds)) for k in keys]


def _across(found: Finding | AcrossSeeds, seed: int = 0) -> AcrossSeeds:
    return found if isinstance(found, AcrossSeeds) else AcrossSeeds(found.spec, (seed,), (found,))


def _values_text(values: Mapping[str, float]) -> str:
    return "; ".join(f"{k} {fmt(v)}" for k, v in values.items()) if len(values) > 1 else fmt(next(iter(values.values())))


_LETTER = {"supported": "S", "not supported": "N", "inconclusive": "I"}


def _effect_text(a: AcrossSeeds) -> str:
    if len(a.results) == 1:
        f = a.results[0]
        return _values_text(f.measured) + (f" ({f.detail})" if f.detail else "")
    mean, low, high = a.effect()
    scale = ", geometric" if a.spec.scale == "log" else ""
    interval = f" [{fmt(low)}, {fmt(high)}]" if math.isfinite(low) else ""
    return f"{a.measure}: {fmt(mean)}{interval} (mean of {len(a.seeds)} seeds{scale}, 95 % t-interval)"


def findings_frame(findings: Sequence[Finding | AcrossSeeds]):
    """The findings as a pandas DataFrame indexed by finding: verdict (across seeds), each seed's
    verdict (S / N / I, in seed order), measured (a single seed's values, or the first measure's
    mean and t-interval over seeds), control (its description and mean values), rule, declared."""
    import pandas as pd

    rows = []
    for f in map(_across, findings):
        rows.append({"finding": f.spec.statement, "verdict": f.verdict,
                     "per seed": " ".join(f"{s}:{_LETTER[v]}" for s, v in zip(f.seeds, f.per_seed)), "measured": _effect_text(f),
                     "control": f"{f.spec.control}: {_values_text(f.means('control'))}", "rule": str(f.spec.rule), "declared": f.spec.declared})
    return pd.DataFrame(rows, columns=["finding", "verdict", "per seed", "measured", "control", "rule", "declared"]).set_index("finding")


def findings_line(findings: Sequence[Finding | AcrossSeeds]) -> str:
    """``findings: S supported, D seed-dependent, N not supported, I inconclusive``."""
    verdicts = [_across(f).verdict for f in findings]
    counts = {v: sum(x == v for x in verdicts) for v in VERDICTS}
    return "findings: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS)


def show_findings(findings: Sequence[Finding | AcrossSeeds]) -> None:
    """Show the findings table (HTML in a notebook, text elsewhere) and print :func:`findings_line`.
    Never asserts a verdict. A plain :class:`Finding` counts as one seed's."""
    if not findings or not all(isinstance(f, (Finding, AcrossSeeds)) for f in findings):
        raise bad_argument(InvalidInputError, "findings", "one or more Finding or AcrossSeeds", findings)
    keys = [f.spec.key for f in findings]
    if len(set(keys)) != len(keys):
        raise bad_argument(InvalidInputError, "findings", "each registered finding once", sorted(k for k in keys if keys.count(k) > 1), raw=True)
    _show(findings_frame(findings), "verdict", {"rule": ["declared"]})
    print(findings_line(findings))


#: what every ``causal`` record of a summary holds
_CAUSAL_FIELDS = frozenset({"finding", "role", "seed", "metric", "heads", "how", "null", "effect", "interval", "random_mean", "p_value",
                            "p_adjusted", "smallest_p", "draws", "space", "detectable", "selection", "test_split", "verdict"})


def summary_record(checks: Sequence[Check] = (), findings: Sequence[Finding | AcrossSeeds] = (), not_run: dict[str, str] | None = None,
                   causal: Sequence[dict] = (), seed: int = 0) -> dict:
    """The part of a chapter's summary every chapter shares, in one schema: ``checks`` (records with
    ``check, measured, op, threshold, holds``), ``findings`` (:meth:`AcrossSeeds.record`; a plain
    :class:`Finding` counts as seed ``seed``'s), ``not_run``
    (``what, why``) and ``causal`` (the chapter's permutation tests and positive controls, per
    seed, as :meth:`attnbook.intervene.CausalFamily.records` writes them)."""
    missing = [sorted(_CAUSAL_FIELDS - set(c)) for c in causal if not _CAUSAL_FIELDS <= set(c)]
    if missing:
        raise bad_argument(InvalidInputError, "causal", f"records with {sorted(_CAUSAL_FIELDS)}", f"records missing {missing}", raw=True)
    if not all(isinstance(c, Check) for c in checks) or not all(isinstance(f, (Finding, AcrossSeeds)) for f in findings):
        raise bad_argument(InvalidInputError, "checks/findings", "Check and Finding (or AcrossSeeds) objects", (checks, findings), raw=True)
    return {
        "checks": [{"check": c.text, "measured": c.measured, "op": c.op, "threshold": c.threshold, "holds": c.holds} for c in checks],
        "findings": [_across(f, seed).record() for f in findings],
        "not_run": [{"what": what, "why": why} for what, why in (not_run or {}).items()],
        "causal": [dict(c) for c in causal],
    }


def write_summary(path, *, checks: Sequence[Check] = (), findings: Sequence[Finding | AcrossSeeds] = (), not_run: dict[str, str] | None = None,
                  causal: Sequence[dict] = (), **extra) -> Path:
    """Write a chapter's ``summary.json`` (atomically): the chapter's own ``extra`` values (profile,
    seed, settings, tables), then :func:`summary_record`, then ``run``: where and in how long the
    chapter ran (:func:`attnbook.provenance.run_record`)."""
    from .provenance import run_record
    from .store import write_json

    seed = extra.get("seed", 0)
    return write_json(path, {**extra, **summary_record(checks, findings, not_run, causal, seed if isinstance(seed, int) else 0), "run": run_record()})
