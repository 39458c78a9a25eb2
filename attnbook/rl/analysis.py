"""The seed study's statistics of the query token's attention over the context, with its fixes.

For the query row ``w`` of one head (weights on the ``L`` context transitions; the query's
weight on itself is left out and the rest renormalised, ``p = w[:L] / Σ w[:L]``):

- ``mean``, ``std`` of ``p``; ``entropy = −Σ p log p`` (nats) and ``entropy / log L`` (the seed
  compared raw entropy with 2 nats, which depends on ``L``: log 60 ≈ 4.1);
- ``recency``: mean of ``p`` over the newest 25 % of positions / mean over the oldest 25 %;
  ``recency_no_sink`` the same with position 0 left out of the oldest quarter (a sink there
  would otherwise make every head look "distant");
- ``argmax`` position (0 = oldest) and ``argmax_rel = argmax / (L − 1)``;
- ``sink``: ``p[0]``, the weight on the oldest transition;
- ``reward_mass``: ``Σ p`` over transitions with reward > 0, and ``reward_enrichment`` = that
  over their share of positions (1 = no preference; NaN without rewarded transitions).

:func:`insights` turns the table into the seed's kind of sentences with thresholds that do not
depend on ``L`` (documented in :data:`THRESHOLDS`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..claims import Claim, Hypothesis, fmt
from ..errors import InvalidInputError, bad_argument

__all__ = ["STATS", "THRESHOLDS", "query_stats", "summarise", "insights", "reward_enrichment", "finite_mean", "chapter_hypotheses",
           "best_compression", "chapter_claims", "RECENCY_STAT", "recency_heads", "head_label", "tokens_and_heads",
           "head_hypothesis", "head_record"]

STATS = ("mean", "std", "entropy", "entropy_norm", "recency", "recency_no_sink", "argmax", "argmax_rel", "sink",
         "reward_mass", "reward_enrichment")

THRESHOLDS = {
    "recency_biased": ("recency_no_sink", ">", 2.0),   # newest quarter gets > 2× the oldest (sink excluded)
    "diffuse": ("entropy_norm", ">", 0.9),             # close to uniform over the context
    "focused": ("entropy_norm", "<", 0.5),
    "sink": ("sink", ">", 0.2),                         # one fifth of the mass on the oldest transition
    "reward_seeking": ("reward_enrichment", ">", 2.0),  # rewarded transitions get > 2× their share
}


def query_stats(attention: Any, rewards: Any | None = None) -> dict[str, np.ndarray]:
    """Statistics of query rows ``attention`` ``(layers, batch, heads, L + 1)`` (the query last);
    ``rewards`` ``(batch, L)`` of the context transitions. Each value is ``(layers, batch, heads)``."""
    w = torch.as_tensor(attention, dtype=torch.float64)
    if w.dim() != 4 or w.shape[-1] < 3:
        raise bad_argument(InvalidInputError, "attention", "query rows (layers, batch, heads, L + 1) with L >= 2", tuple(w.shape), raw=True)
    L = w.shape[-1] - 1
    p = w[..., :L] / w[..., :L].sum(-1, keepdim=True).clamp_min(1e-300)
    q = max(1, L // 4)
    ent = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)
    out = {
        "mean": p.mean(-1),
        "std": p.std(-1, unbiased=False),
        "entropy": ent,
        "entropy_norm": ent / math.log(L),
        "recency": p[..., L - q:].mean(-1) / p[..., :q].mean(-1).clamp_min(1e-12),
        "recency_no_sink": p[..., L - q:].mean(-1) / p[..., 1:q + 1].mean(-1).clamp_min(1e-12),
        "argmax": p.argmax(-1).double(),
        "argmax_rel": p.argmax(-1).double() / (L - 1),
        "sink": p[..., 0],
    }
    if rewards is not None:
        r = torch.as_tensor(np.asarray(rewards, dtype=np.float64))
        if r.shape != (w.shape[1], L):
            raise bad_argument(InvalidInputError, "rewards", f"shape (batch={w.shape[1]}, L={L})", tuple(r.shape), raw=True)
        hit = (r > 0).double()[None, :, None, :]
        share = hit.mean(-1)
        mass = (p * hit).sum(-1)
        out["reward_mass"] = mass
        out["reward_enrichment"] = torch.where(share > 0, mass / share.clamp_min(1e-12), torch.full_like(mass, float("nan")))
    else:
        nan = torch.full_like(ent, float("nan"))
        out["reward_mass"], out["reward_enrichment"] = nan, nan.clone()
    return {k: v.numpy() for k, v in out.items()}


def summarise(stats: dict[str, np.ndarray]) -> list[dict]:
    """One row per layer and head: the mean over samples of every statistic, and its std."""
    if not isinstance(stats, dict) or "mean" not in stats:
        raise bad_argument(InvalidInputError, "stats", "the dict of query_stats", type(stats).__name__, raw=True)
    layers, _, heads = stats["mean"].shape
    rows = []
    for layer in range(layers):
        for head in range(heads):
            row = {"layer": layer, "head": head}
            for name in STATS:
                values = stats[name][layer, :, head]
                row[name] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
                row[f"{name}_std"] = float(np.nanstd(values)) if np.isfinite(values).any() else float("nan")
            rows.append(row)
    return rows


def insights(rows: list[dict]) -> list[str]:
    """Sentences for every head a documented threshold marks (:data:`THRESHOLDS`)."""
    ops = {">": lambda a, b: a > b, "<": lambda a, b: a < b}
    out = []
    for label, (stat, op, value) in THRESHOLDS.items():
        heads = [f"L{r['layer']}H{r['head']}" for r in rows if math.isfinite(r[stat]) and ops[op](r[stat], value)]
        if heads:
            out.append(f"{label.replace('_', ' ')} ({stat} {op} {value:g}): {', '.join(heads)}")
        else:
            out.append(f"{label.replace('_', ' ')} ({stat} {op} {value:g}): no head")
    return out


#: the per-head recency measure that picks the heads to ablate: the sink-corrected ratio of :func:`query_stats`
RECENCY_STAT = "recency_no_sink"


def recency_heads(rows: list[dict], top: int = 2, stat: str = RECENCY_STAT) -> list[tuple[int, int]]:
    """The ``top`` heads whose query attention is most concentrated on the recent history: the largest
    mean ``stat`` (default :data:`RECENCY_STAT`) in :func:`summarise`'s rows, as ``(layer, head)``
    pairs from the most recent down (ties: the lower layer, then head, first; NaN never chosen)."""
    if not isinstance(rows, list) or not rows or any(stat not in r for r in rows):
        raise bad_argument(InvalidInputError, "rows", f"summarise's rows with {stat!r}", type(rows).__name__, raw=True)
    finite = [r for r in rows if math.isfinite(r[stat])]
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= len(finite):
        raise bad_argument(InvalidInputError, "top", f"between 1 and {len(finite)} heads (those with a finite {stat})", top)
    ranked = sorted(finite, key=lambda r: (-r[stat], r["layer"], r["head"]))
    return [(int(r["layer"]), int(r["head"])) for r in ranked[:top]]


def head_label(layer: int, head: int) -> str:
    """``L{layer}H{head}``, as :func:`insights` names heads."""
    return f"L{layer}H{head}"


def tokens_and_heads(sweep, ks: list[int], heads: list[tuple[int, int]], comparison: Any, n_heads: int, q: float = 95.0):
    """Dropping tokens beside dropping heads, one row each, in cumulative regret at T (damage > 0 = more regret).

    Tokens (one row per ``K`` of the compression ``sweep``, ``L`` = the full row's ``K``): the regret of
    keeping the ``K`` most attended transitions (top-K) and of keeping ``K`` random ones, each minus
    the full context's; attention marks what matters when top-K's damage is the smaller. Heads:
    ``comparison`` (a :class:`~attnbook.intervene.RandomComparison` of ``heads`` = (layer, head) pairs
    against random sets of as many of the model's ``n_heads`` heads): the chosen heads' effect beside
    the random sets' mean; attention marks what matters when the effect is above the ``q``-th
    percentile of the random sets (the hypothesis's rule)."""
    import pandas as pd

    at = lambda s, k: float(sweep[(sweep.strategy == s) & (sweep.K == k)]["performance"].iloc[0])  # noqa: E731
    full_row = sweep[sweep.strategy == "full"]
    full, L = float(full_row["performance"].iloc[0]), int(full_row["K"].iloc[0])
    rows = [{"dropped": f"tokens: {L - k} of {L} context transitions", "attention's choice": f"keep the {k} most attended",
             "damage, attention's choice": at("topk", k) - full, "damage, random choice": at("random", k) - full,
             "attention marks what matters": at("topk", k) < at("random", k)} for k in ks]
    rows.append({"dropped": f"heads: {len(heads)} of {n_heads} heads (mean-ablated)",
                 "attention's choice": f"ablate the most recency-biased ({', '.join(head_label(*h) for h in heads)})",
                 "damage, attention's choice": float(comparison.effect), "damage, random choice": float(np.mean(comparison.random_effects)),
                 "attention marks what matters": bool(comparison.exceeds(q))})
    return pd.DataFrame(rows)


def head_hypothesis(heads: list[tuple[int, int]], comparison: Any, q: float = 95.0) -> Hypothesis:
    """The causal test as a hypothesis: the most recency-biased ``heads`` raise AD's in-context regret
    more than random head sets of the same size (``comparison``'s rule: effect above the ``q``-th
    percentile of the random sets)."""
    names = ", ".join(head_label(*h) for h in heads)
    return comparison.hypothesis(f"the {len(heads)} most recency-biased heads ({names}) matter more for in-context regret "
                                 f"than random heads (mean-ablated)", q)


def head_record(heads: list[tuple[int, int]], comparison: Any, tasks: int, T: int, q: float = 95.0) -> dict:
    """``comparison``'s record for ``summary.json``'s ``causal`` list: what attention said about
    ``heads`` and the metric (cumulative regret at ``T`` on ``tasks`` held-out bandits)."""
    names = ", ".join(head_label(*h) for h in heads)
    return comparison.record(finding=f"the query's attention is most concentrated on recent history in {names} "
                                     f"(largest {RECENCY_STAT})",
                             metric=f"AD's mean cumulative regret at T={T} in context on {tasks} held-out bandits (damage > 0)", q=q)


def reward_enrichment(rows: list[dict], darkroom: float | None = None) -> float:
    """The fourth hypothesis's measure: Dark Room's mean enrichment where it ran, else the bandit
    proxy (mean over heads of ``reward_enrichment`` in :func:`summarise`'s rows)."""
    return finite_mean([r["reward_enrichment"] for r in rows]) if darkroom is None else float(darkroom)


def finite_mean(values: Any) -> float:
    """Mean of the finite entries of ``values`` (any shape); NaN, without a warning, when there are
    none (no head saw a rewarded transition)."""
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    return float(finite.mean()) if finite.size else math.nan


def chapter_hypotheses(sweep, ks: list[int], regret, rows: list[dict], darkroom_enrichment: float | None = None,
                       head_study: Any = None, darkroom_returns: Any = None) -> list[Hypothesis]:
    """Chapter 4's hypotheses, rules fixed in advance.

    ``sweep``: the compression sweep (columns ``strategy``, ``K``, ``performance`` = mean cumulative
    regret); ``ks``: its context sizes; ``regret``: per agent (index) the ``first 10`` / ``last 10``
    per-step regret; ``rows``: :func:`summarise`'s per-head query statistics;
    ``darkroom_enrichment``: Dark Room's reward enrichment (full profile) or None.

    1. top-K by attention beats random-K: lower regret at every K;
    2. ED does not improve in context as AD does: ED's first−last improvement < half of AD's;
    3. the seed's recency bias survives: most heads with raw recency > 2 keep recency > 2 without
       position 0 and have entropy / log L < 0.9;
    4. attention concentrates on rewarded transitions: mean enrichment > 1.5;
    5. (with ``head_study``, :func:`~attnbook.rl.experiment.recency_head_study`'s result) the most
       recency-biased heads matter more than random heads: :func:`head_hypothesis`;
    6. (with ``darkroom_returns``, the Dark Room study's table, full profile) AD learns in context on
       Dark Room: :func:`darkroom_hypothesis`.
    """
    at = lambda s, k: float(sweep[(sweep.strategy == s) & (sweep.K == k)]["performance"].iloc[0])  # noqa: E731
    wins = [k for k in ks if at("topk", k) < at("random", k)]
    ed_gain = float(regret.loc["ED", "first 10"] - regret.loc["ED", "last 10"])
    ad_gain = float(regret.loc["AD", "first 10"] - regret.loc["AD", "last 10"])
    raw_recent = [r for r in rows if r["recency"] > 2]
    survive = [r for r in raw_recent if r["recency_no_sink"] > 2 and r["entropy_norm"] < 0.9]
    enrichment = reward_enrichment(rows, darkroom_enrichment)
    where = "bandit proxy; Dark Room in the full profile" if darkroom_enrichment is None else "Dark Room"
    return [
        Hypothesis("top-K by attention beats random-K at equal K", ", ".join(f"K={k}: {fmt(at('topk', k))}" for k in ks),
                   ", ".join(f"K={k}: {fmt(at('random', k))}" for k in ks), "lower regret than random-K at every K", len(wins) == len(ks)),
        Hypothesis("ED does not improve within context as AD does", f"ED first−last 10 per-step regret {fmt(ed_gain)}", f"AD {fmt(ad_gain)}",
                   "ED's improvement < half of AD's", ed_gain < 0.5 * ad_gain),
        Hypothesis("the seed's recency bias survives log-L entropy and a sink term", f"{len(survive)} of {len(raw_recent)} heads with raw ratio > 2",
                   f"{len(rows)} heads", "most raw-recency heads keep ratio > 2 without position 0 and entropy/log L < 0.9",
                   bool(raw_recent) and len(survive) > len(raw_recent) / 2),
        Hypothesis(f"attention concentrates on rewarded transitions ({where})", f"mean enrichment {fmt(enrichment)}", "1 = no preference",
                   "mean enrichment > 1.5", enrichment > 1.5),
    ] + ([] if head_study is None else [head_hypothesis(head_study.heads, head_study.comparison)]) \
      + ([] if darkroom_returns is None else [darkroom_hypothesis(darkroom_returns)])


def darkroom_hypothesis(returns, window: int = 10) -> Hypothesis:
    """Dark Room's in-context learning, with the bar fixed in advance (AD's own paper's claim at our
    scale): AD's mean return per episode over the last ``window`` in-context episodes on the held-out
    goals is at least twice its mean over the first ``window`` and at least half the optimal return.

    ``returns``: :class:`~attnbook.rl.experiment.DarkRoomStudy`'s table (one row per episode, a column
    per player — ``AD``, the source, ``ED``, ``random`` — and ``optimal``); the other players' last
    ``window`` episodes are the control."""
    if "AD" not in returns or "optimal" not in returns or len(returns) < 2 * window:
        raise bad_argument(InvalidInputError, "returns", f"columns AD and optimal and >= {2 * window} episodes",
                           f"columns {list(returns.columns)}, {len(returns)} episodes", raw=True)
    ad = returns["AD"]
    first, last, best = float(ad.head(window).mean()), float(ad.tail(window).mean()), float(returns["optimal"].iloc[0])
    others = [c for c in returns.columns if c not in ("AD", "optimal")]
    return Hypothesis("AD learns in context on Dark Room (held-out goals)",
                      f"AD: first {window} episodes {fmt(first)}, last {window} {fmt(last)} per episode ({fmt(100 * last / best)} % of optimal {fmt(best)})",
                      "; ".join(f"{c}: last {window} {fmt(float(returns[c].tail(window).mean()))}" for c in others),
                      f"last {window} >= 2 × first {window} and >= 50 % of optimal", last >= 2 * first and last >= 0.5 * best)


def best_compression(sweep, L: int):
    """The sweep's best compressed row at ``K <= L / 2`` that is faster than the full context: the
    highest "% of full", ties broken by the batched speed-up (``topk`` and ``full`` excluded).
    A row with the column ``speed`` = its batched speed-up."""
    best = sweep[(sweep.K <= L // 2) & (sweep.strategy != "full") & (sweep.strategy != "topk")]
    best = best.assign(speed=best["speed-up, batched"]).sort_values(["% of full", "speed"], ascending=False)
    return best[best["speed"] > 1].iloc[0]


def chapter_claims(regret, sweep, weights: Any, L: int) -> tuple[list[Claim], Any]:
    """Chapter 4's claims: AD beats random play (regret at T at most 0.7 of random's), matches its
    source within 15 %, improves within its context (last 10 pulls below the first 10); the best
    compression at ``K <= L/2`` with a speed-up keeps >= 90 % of full context (:func:`best_compression`,
    returned too); the captured maps ``weights`` are causal and their rows sum to 1.

    ``regret``: :func:`~attnbook.rl.experiment.regret_summary` per player (index ``AD``,
    ``UCB1 (source)``, ``random``); ``sweep``: the compression table with its timing columns."""
    R = regret["R(T)"]
    top = best_compression(sweep, L)
    return [
        Claim("AD regret at T / random's (held-out tasks)", R["AD"] / R["random"], "<=", 0.7),
        Claim("|AD regret at T / source's − 1|", abs(R["AD"] / R["UCB1 (source)"] - 1), "<=", 0.15),
        Claim("AD per-step regret, last 10 pulls minus first 10", regret.loc["AD", "last 10"] - regret.loc["AD", "first 10"], "<", 0.0),
        Claim(f"best strategy at K <= L/2 with a speed-up ({top.strategy}, K={top.K}): % of full", float(top["% of full"]), ">=", 90.0),
        Claim("... its batched speed-up over the full context", float(top["speed"]), ">", 1.0),
        Claim("captured maps: largest weight above the diagonal", float(weights.triu(1).abs().max()), "<=", 0.0),
        Claim("captured maps: largest |row sum − 1|", float((weights.sum(-1) - 1).abs().max()), "<", 1e-5),
    ], top
