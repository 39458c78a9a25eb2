"""Every finding of the book, declared once: statement, measure, control, rule, profiles, and when
the rule was declared.

A chapter measures; this module decides what the measurement is tested against. The notebooks build
their :class:`~attnbook.claims.Finding` results with :func:`spec` (``spec(key).result(measured,
control)``), the findings page and the API page read the same declarations, and the tests compare
the verdicts with the committed table of expected ones (``tests/expected_verdicts.csv``). A rule
change is a visible change to a declaration here, with its reason in ``note``.

Every rule below was written after its first result (``declared="post hoc"``): the rules were carried
over from the chapters' earlier claims and hypotheses, which were set while the chapters were built.
A finding declared before its first result says ``"pre-registered"``.

Causal findings share one measure, :data:`CAUSAL`: the chosen heads' ablation effect minus the 95th
percentile of random head sets' effects (same size, same metric), above 0 when the heads matter more
than 95 % of random sets; the control is a median random set, measured the same way.
"""

from __future__ import annotations

from .claims import FindingSpec, Rule
from .errors import InvalidInputError, bad_argument

__all__ = ["CAUSAL", "CAUSAL_RULE", "FINDINGS", "spec", "chapter_specs", "frame"]

#: the measure of every causal finding: effect − the random sets' 95th percentile
CAUSAL = "effect − random sets' 95th percentile"
#: the rule of every causal finding: above at least 95 % of the random sets
#:
#: :meta hide-value:
CAUSAL_RULE = Rule.of((CAUSAL, ">", 0.0))
_RANDOM_SETS = "random head sets of the same size (a median set, measured the same way)"

#: every finding of the book, in chapter order (the findings page tables them with their verdicts)
#:
#: :meta hide-value:
FINDINGS: tuple[FindingSpec, ...] = (
    # -- chapter 1: reading-attention ----------------------------------------------------------------------
    # -- end of chapter 1 ----------------------------------------------------------------------------------

    # -- chapter 2: distribution-effects -------------------------------------------------------------------
    # -- end of chapter 2 ----------------------------------------------------------------------------------

    # -- chapter 3: vitime-harmonics -----------------------------------------------------------------------
    FindingSpec("vitime-harmonics/period-head",
                "pretraining forms a head that attends one, two and three periods of sin(n/10) back",
                "experiment 1: the best head's period contrast at 62.8 samples, and its three highest lag peaks' largest distance "
                "to 63/126/189 samples",
                "the same network before pretraining (random init), its best head on the same input",
                Rule.of(("period contrast", ">=", 2.0), ("peak error (samples)", "<=", 8.0)),
                note="Was two claims (contrast >= 2; peaks within half a patch, 8 samples). The random-init control was added in issue 28."),
    FindingSpec("vitime-harmonics/period-head-vanishes",
                "the best head's comb is the input's: it falls away when sin(n/10) is removed",
                "experiment 2 (no sin(n/10)): the same head's period contrast at 62.8 samples",
                "experiment 1, where sin(n/10) is present: the same head, same measure",
                Rule.of(("period contrast", "<", 1.5)),
                note="Was a claim; the control (the input with the harmonic) was implicit."),
    FindingSpec("vitime-harmonics/follows-sin-n-5",
                "without sin(n/10) the best head follows sin(n/5) instead",
                "experiment 2: the best head's contrast at 31.4 samples",
                "the random-init network's same head at 31.4 samples",
                Rule.of(("contrast at 31.4 samples", ">=", 1.5))),
    FindingSpec("vitime-harmonics/follows-held-out-periods",
                "the best head follows periods it was not probed with (held-out 48, 80, 100)",
                "the lowest of the best head's contrasts at each held-out input's period",
                "the random-init network's same head on experiment 1 at 62.8 samples",
                Rule.of(("lowest contrast", ">=", 2.0))),
    FindingSpec("vitime-harmonics/heads-share-profile",
                "the periodic heads share a lag profile",
                "mean Pearson r between the lag profiles of the top-3 heads by contrast",
                "every pair of heads of the same model (mean r)",
                Rule.of(("mean r", ">=", 0.5))),
    FindingSpec("vitime-harmonics/rollout-keeps-period",
                "the period survives attention rollout across all blocks",
                "the rollout's period contrast at 62.8 samples on experiment 1",
                "the random-init network's rollout, same measure",
                Rule.of(("rollout contrast", ">=", 2.0))),
    FindingSpec("vitime-harmonics/experiment-1-forecast",
                "attending to the period means forecasting it: on experiment 1 the model beats repeat-last-period",
                "experiment 1: the model's argmax MSE over the horizon ÷ repeat-last-period's",
                "repeat-last-period itself (its ratio to itself)",
                Rule.of(("MSE ÷ repeat last period", "<", 1.0))),
    FindingSpec("vitime-harmonics/held-out-probes-forecast",
                "the model forecasts the three held-out probe periods better than both naive baselines",
                "the largest, over the held-out inputs, of the model's argmax MSE ÷ the better of history mean's and repeat-last-period's",
                "the better baseline itself (its ratio to itself)",
                Rule.of(("largest MSE ratio", "<", 1.0))),
    FindingSpec("vitime-harmonics/forecasts-held-out-series",
                "the model forecasts periods never seen in pretraining (64 held-out series) — the profile's bars",
                "the model's mean MSE (expectation decoding) over the 720-sample horizon ÷ the history mean's and ÷ repeat-last-period's",
                "the seasonal-average draft the model is given, alone: a model that only copied it would score this",
                Rule.of(("÷ history mean", "<=", 0.7), ("÷ repeat last period", "<", 1.0)),
                profiles=("quick",),
                note="The quick bar of issue 27. The draft as control was added in issue 28."),
    FindingSpec("vitime-harmonics/forecasts-held-out-series-full",
                "the model forecasts periods never seen in pretraining (64 held-out series) — the full bar",
                "the model's mean MSE (expectation decoding) over the 720-sample horizon ÷ repeat-last-period's",
                "the seasonal-average draft the model is given, alone",
                Rule.of(("÷ repeat last period", "<=", 0.8)),
                profiles=("full",),
                note="The full bar of issue 27."),
    FindingSpec("vitime-harmonics/best-head-used-exp1",
                "ablating the best head changes the experiment-1 forecast more than random heads",
                "mean squared change of the 720-sample forecast (8 windows) under mean ablation", _RANDOM_SETS, CAUSAL_RULE),
    FindingSpec("vitime-harmonics/best-head-used-exp2",
                "ablating the best head changes the experiment-2 forecast (no sin(n/10)) more than random heads",
                "mean squared change of the 720-sample forecast (8 windows) under mean ablation", _RANDOM_SETS, CAUSAL_RULE),
    FindingSpec("vitime-harmonics/best-head-used-for-period",
                "ablating the best head changes the forecast more with sin(n/10) present than without, relative to random heads",
                "ratio of the forecast changes, experiment 1 ÷ experiment 2", _RANDOM_SETS, CAUSAL_RULE),
    FindingSpec("vitime-harmonics/top3-used-exp1",
                "ablating the top-3 heads changes the experiment-1 forecast more than random heads",
                "mean squared change of the 720-sample forecast (8 windows) under mean ablation", _RANDOM_SETS, CAUSAL_RULE),
    FindingSpec("vitime-harmonics/top3-used-exp2",
                "ablating the top-3 heads changes the experiment-2 forecast (no sin(n/10)) more than random heads",
                "mean squared change of the 720-sample forecast (8 windows) under mean ablation", _RANDOM_SETS, CAUSAL_RULE),
    FindingSpec("vitime-harmonics/top3-used-for-period",
                "ablating the top-3 heads changes the forecast more with sin(n/10) present than without, relative to random heads",
                "ratio of the forecast changes, experiment 1 ÷ experiment 2", _RANDOM_SETS, CAUSAL_RULE),
    # -- end of chapter 3 ----------------------------------------------------------------------------------

    # -- chapter 4: ad-compression -------------------------------------------------------------------------
    FindingSpec("ad-compression/learns-in-context",
                "AD improves within its context on held-out bandits: its regret per pull falls from the first 10 pulls to the last 10",
                "AD's mean regret per pull over the last 10 of 60 pulls minus over the first 10 (held-out tasks, actions sampled)",
                "ED, the same transformer trained on an expert's histories (it never saw learning), measured the same way",
                Rule.of(("last 10 − first 10", "<", 0.0)),
                note="Was the claim 'AD per-step regret, last 10 pulls minus first 10 < 0' and the hypothesis 'ED does not improve "
                     "within context as AD does' (ED's first−last improvement < half of AD's). Merged in issue 28: ED is the control, "
                     "measured with the claim's rule; the half-of-AD's bar is gone."),
    FindingSpec("ad-compression/beats-random",
                "AD's cumulative regret on held-out bandits is at most 0.7 of random play's",
                "AD's mean cumulative regret at T = 60 ÷ random play's on the same held-out tasks",
                "ED (same architecture, trained on an expert's histories), its regret at T ÷ random play's",
                Rule.of(("R(T) ÷ random's", "<=", 0.7)),
                note="Was a claim. ED as the measured control was added in issue 28 (random play itself would score 1)."),
    FindingSpec("ad-compression/matches-source",
                "AD reproduces its source: its cumulative regret is within 15 % of UCB1's",
                "|AD's mean cumulative regret at T = 60 ÷ UCB1's − 1| on the same held-out tasks",
                "Thompson sampling run from scratch on the same tasks (another learning algorithm), the same measure",
                Rule.of(("|R(T) ÷ source's − 1|", "<=", 0.15)),
                note="Was a claim. Thompson sampling as the measured control was added in issue 28: a finding that any good bandit "
                     "learner also met would not say that AD reproduces its own source."),
    FindingSpec("ad-compression/compression-keeps-return",
                "cut to K <= L/2 transitions, AD's context keeps >= 90 % of the full context's improvement over random play "
                "(the best strategy that is faster than the full context)",
                "% of full (the share of the full context's regret reduction over random play kept) of the best strategy at K <= L/2 "
                "with a batched speed-up > 1",
                "random-K (K random transitions kept) at the same K, the same measure",
                Rule.of(("% of full", ">=", 90.0)),
                note="Was a claim. Random-K at the same K as the measured control was added in issue 28."),
    FindingSpec("ad-compression/topk-beats-random",
                "attention marks the transitions AD needs: keeping the K most attended beats keeping K random ones at every K",
                "the largest, over K = L/2, L/4, L/8, of top-K's mean cumulative regret at T minus random-K's",
                "random-K in both slots (difference 0)",
                Rule.of(("largest regret difference", "<", 0.0)),
                note="Was a hypothesis (lower regret than random-K at every K)."),
    FindingSpec("ad-compression/recency-survives",
                "the seed's recency bias survives entropy normalised by log L and a sink term left out",
                "of AD's heads whose raw recency ratio (newest quarter ÷ oldest) is > 2, the share that keep a ratio > 2 without "
                "position 0 and have entropy ÷ log L < 0.9 (0 when no head has a raw ratio > 2)",
                "the same transformer at random init (AD's weights before training), on the same held-out windows",
                Rule.of(("surviving share", ">", 0.5)),
                note="Was a hypothesis ('most raw-recency heads' survive; its table's control, '16 heads', was the number of heads, "
                     "not a measurement). The random-init control was added in issue 28."),
    FindingSpec("ad-compression/reward-attention-bandits",
                "the query's attention concentrates on rewarded transitions (bandits)",
                "AD's query weight on rewarded transitions ÷ their share of the context, mean over heads, layers and held-out tasks",
                "the same attention scored against another held-out task's rewards (each task's rolled by one): the same reward rate "
                "along the history, no link to what this task's query reads",
                Rule.of(("mean enrichment", ">", 1.5)),
                profiles=("quick",),
                note="Was a hypothesis (control '1 = no preference'); in the full profile the hypothesis read Dark Room instead "
                     "(reward-attention-darkroom). The rolled-rewards control was added in issue 28: AD's rewards grow along a "
                     "history while it learns, so a recency-biased head is 'enriched' without reading rewards."),
    FindingSpec("ad-compression/reward-attention-darkroom",
                "the query's attention concentrates on rewarded transitions (Dark Room)",
                "AD's query weight on rewarded transitions ÷ their share of the context, mean over heads, layers and held-out goals",
                "the same attention scored against another held-out goal's rewards (each goal's rolled by one)",
                Rule.of(("mean enrichment", ">", 1.5)),
                profiles=("full",),
                note="Was the full profile's form of the reward hypothesis. The rolled-rewards control was added in issue 28."),
    FindingSpec("ad-compression/darkroom-in-context",
                "AD learns in context on Dark Room's held-out goals",
                "AD's mean return per episode over the last 10 in-context episodes minus twice the first 10's, and the last 10's ÷ "
                "the optimal return",
                "ED (the same transformer trained on the expert's histories), the same measures",
                Rule.of(("last 10 − 2 × first 10", ">=", 0.0), ("last 10 ÷ optimal", ">=", 0.5)),
                profiles=("full",),
                note="Was a hypothesis (last 10 >= 2 × first 10 and >= 50 % of optimal; AD's own paper's claim at our scale), "
                     "with the other players' last 10 as its control. ED as the measured control: issue 28."),
    FindingSpec("ad-compression/recency-heads-used",
                "the 2 most recency-biased heads matter more for AD's in-context regret than random heads (mean-ablated)",
                "the rise in AD's mean cumulative regret at T on held-out bandits when the heads are mean-ablated together",
                _RANDOM_SETS, CAUSAL_RULE),
    # -- end of chapter 4 ----------------------------------------------------------------------------------

    # -- chapter 5: charlm-evolution -----------------------------------------------------------------------
    # -- end of chapter 5 ----------------------------------------------------------------------------------
)

_BY_KEY = {s.key: s for s in FINDINGS}
if len(_BY_KEY) != len(FINDINGS):  # pragma: no cover - a duplicated key is a bug in this file
    raise RuntimeError("attnbook.registry: duplicated finding keys")


def spec(key: str) -> FindingSpec:
    """The declaration of finding ``key`` (``"<chapter slug>/<name>"``)."""
    if key not in _BY_KEY:
        raise bad_argument(InvalidInputError, "key", "a registered finding (attnbook.registry.FINDINGS)", key)
    return _BY_KEY[key]


def chapter_specs(chapter: str, profile: str | None = None) -> tuple[FindingSpec, ...]:
    """The findings ``chapter`` (a slug) declares, in order; with ``profile``, those that apply to it."""
    from .chapters import EXPERIMENTS

    slugs = [c.slug for c in EXPERIMENTS]
    if chapter not in slugs:
        raise bad_argument(InvalidInputError, "chapter", f"an experiment chapter's slug, one of {slugs}", chapter)
    return tuple(s for s in FINDINGS if s.chapter == chapter and (profile is None or profile in s.profiles))


def frame():
    """The registry as a pandas DataFrame indexed by key: chapter, statement, measure, control, rule,
    profiles, declared, note."""
    import pandas as pd

    rows = [{"key": s.key, "chapter": s.chapter, "statement": s.statement, "measure": s.measure, "control": s.control, "rule": str(s.rule),
             "profiles": ", ".join(s.profiles), "declared": s.declared, "note": s.note} for s in FINDINGS]
    return pd.DataFrame(rows).set_index("key")
