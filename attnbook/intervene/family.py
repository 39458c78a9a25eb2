"""A chapter's causal family on one training seed: its tests, Holm, the positive control, the findings.

Each chapter declares its causal findings in :mod:`attnbook.registry` (:func:`~attnbook.registry.causal_family`);
on each seed it runs one :func:`~attnbook.intervene.head_set_test` per finding (``m`` of them, each
sized for ``α / m``) on the **test split**, with the heads chosen on the **selection split**, plus one
**positive control**: the heads whose single-head ablation hurt most on the selection split, tested the
same way on the test split. The positive control is not in the family. Verdicts::

    p̃ = Holm(p_1 … p_m)                  (statsmodels; the positive control excluded)
    supported        p̃ < α and the chosen set's effect is above the null's mean
    inconclusive     the test cannot reach α / m (smallest reachable p stated), or the positive control
                     was not detected (p ≥ α / m): the test is not shown to detect a head that matters
    not supported    otherwise

The control of every causal finding is a median member of the same null, tested against the other
draws the same way (its p is about 0.5, its effect about the null's mean).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .. import stats
from ..claims import Finding, fmt
from ..errors import InvalidInputError, bad_argument
from .permutation import HeadSetTest

__all__ = ["CausalFamily", "POSITIVE_CONTROL"]

#: the label of the positive control in tables and records
POSITIVE_CONTROL = "positive control"


@dataclass(frozen=True)
class CausalFamily:
    """One seed's causal tests, ``tests`` (finding key → :class:`HeadSetTest`, the family), and the
    positive ``control``; ``selection`` and ``test_split`` say in words where heads were chosen and tested."""

    tests: Mapping[str, HeadSetTest]
    control: HeadSetTest
    selection: str
    test_split: str
    alpha: float = stats.ALPHA

    def __post_init__(self) -> None:
        if not self.tests or not all(isinstance(t, HeadSetTest) for t in (*self.tests.values(), self.control)):
            raise bad_argument(InvalidInputError, "tests", "one or more HeadSetTest and a HeadSetTest control", self.tests, raw=True)
        sizes = {t.family for t in self.tests.values()}
        if sizes != {len(self.tests)}:
            raise bad_argument(InvalidInputError, "tests", f"tests sized for a family of {len(self.tests)}", sorted(sizes), raw=True)

    @property
    def m(self) -> int:
        return len(self.tests)

    @property
    def adjusted(self) -> dict[str, float]:
        """Holm-adjusted p of each test of the family."""
        return dict(zip(self.tests, stats.holm([t.p for t in self.tests.values()])))

    @property
    def control_detected(self) -> bool:
        """Whether the positive control reached ``α / m`` (it would survive Holm as the family's strictest test)."""
        return self.control.decidable and self.control.p < self.alpha / self.m

    def inconclusive(self, key: str) -> str:
        """Why ``key``'s test cannot decide ("" when it can)."""
        t = self.tests[key]
        if not t.decidable:
            return f"smallest reachable p = {t.smallest_p:.3g} > α/m = {self.alpha / self.m:.3g}"
        if not self.control_detected:
            return f"the positive control was not detected (p = {self.control.p:.3g}, α/m = {self.alpha / self.m:.3g})"
        return ""

    def verdict(self, key: str) -> str:
        if self.inconclusive(key):
            return "inconclusive"
        t = self.tests[key]
        return "supported" if self.adjusted[key] < self.alpha and t.effect > t.null_mean else "not supported"

    def findings(self) -> list[Finding]:
        """Each test as its registered finding (:data:`attnbook.registry.CAUSAL_RULE`): measured the
        effect above the null's mean and the Holm-adjusted p; control a median null member's."""
        from ..registry import CAUSAL, CAUSAL_P, spec

        out = []
        adjusted = self.adjusted
        for key, t in self.tests.items():
            low, high = t.interval
            interval = f" [{fmt(low)}, {fmt(high)}]" if math.isfinite(low) else ""
            detail = (f"effect {fmt(t.effect)}{interval} over {t.units} units; null mean {fmt(t.null_mean)} ({t.null}, "
                      f"{t.result.draws} of {t.result.space - 1} sets{', exact' if t.result.exact else ''}); p = {t.p:.3g}, "
                      f"Holm p = {adjusted[key]:.3g}, smallest reachable p = {t.smallest_p:.3g}; detectable effect {fmt(t.detectable)}; "
                      f"positive control p = {self.control.p:.3g}")
            out.append(spec(key).result({CAUSAL: t.effect - t.null_mean, CAUSAL_P: adjusted[key]},
                                        {CAUSAL: 0.0, CAUSAL_P: min(1.0, t.null_median_p * self.m)}, detail=detail,
                                        inconclusive=self.inconclusive(key)))
        return out

    def records(self, metric: str, seed: int, texts: Mapping[str, str] | None = None) -> list[dict]:
        """The family's and the positive control's records for ``summary.json``'s ``causal`` list;
        ``texts`` names what each test's heads are (default: the finding key)."""
        texts = dict(texts or {})
        adjusted = self.adjusted
        rows = [{**t.record(texts.get(k, k), metric, p_adjusted=adjusted[k], selection=self.selection, test_split=self.test_split,
                            verdict=self.verdict(k)), "key": k, "seed": seed} for k, t in self.tests.items()]
        control = self.control.record(texts.get(POSITIVE_CONTROL, "the heads whose single ablation hurt most on the selection split"),
                                      metric, role=POSITIVE_CONTROL, selection=self.selection, test_split=self.test_split,
                                      verdict="detected" if self.control_detected else "not detected")
        return [*rows, {**control, "key": POSITIVE_CONTROL, "seed": seed}]

    def frame(self, texts: Mapping[str, str] | None = None):
        """The family as a table: heads, null, effect [interval], null mean, draws of the space, raw p,
        Holm p, smallest reachable p, detectable effect, verdict — the positive control last."""
        import pandas as pd

        texts = dict(texts or {})
        adjusted = self.adjusted
        rows = []
        for key, t in [*self.tests.items(), (POSITIVE_CONTROL, self.control)]:
            low, high = t.interval
            rows.append({"test": texts.get(key, key), "heads": ", ".join(f"{n}:{h}" for n, h in t.heads), "null": t.null,
                         "effect [95 % CI]": f"{fmt(t.effect)} [{fmt(low)}, {fmt(high)}]" if math.isfinite(low) else fmt(t.effect),
                         "null mean": fmt(t.null_mean), "sets drawn": f"{t.result.draws} of {t.result.space - 1}" + (" (exact)" if t.result.exact else ""),
                         "p": f"{t.p:.3g}", "Holm p": f"{adjusted[key]:.3g}" if key in adjusted else "— (not in the family)",
                         "smallest p": f"{t.smallest_p:.3g}", "detectable effect": fmt(t.detectable),
                         "verdict": self.verdict(key) if key in adjusted else ("detected" if self.control_detected else "not detected")})
        return pd.DataFrame(rows).set_index("test")
