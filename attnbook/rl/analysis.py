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

The chapter's checks (:func:`chapter_checks`) and findings — :func:`play_findings`,
:func:`compression_findings`, :func:`attention_findings`, :func:`darkroom_finding` and the causal
family of :func:`~attnbook.rl.experiment.recency_head_study` (:func:`head_findings`) — measure the model and its control under the rules declared in
:mod:`attnbook.registry` (``ad-compression/…``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..claims import Check, Finding, fmt
from ..errors import InvalidInputError, bad_argument
from ..registry import spec

__all__ = ["STATS", "THRESHOLDS", "query_stats", "summarise", "insights", "finite_mean", "mean_enrichment", "other_tasks_rewards",
           "recency_survival", "play_findings", "compression_findings", "attention_findings", "darkroom_finding", "best_compression",
           "chapter_checks", "RECENCY_STAT", "recency_heads", "head_label", "tokens_and_heads", "head_texts", "head_findings",
           "head_records",
           "seed_findings", "regret_by_seed", "sweep_by_seed", "recency_k", "recency_log_ratio", "sharpness", "head_profile",
           "model_recency", "RECENCY_BAR", "SHARP_BAR", "spearman", "recency_vs_sharpness", "chosen_heads_profile", "recency_findings",
           "RECENCY_CONTROLS"]

STATS = ("mean", "std", "entropy", "entropy_norm", "recency", "recency_no_sink", "argmax", "argmax_rel", "sink",
         "reward_mass", "reward_enrichment")

#: the prefix of the chapter's finding keys in :mod:`attnbook.registry`
_KEY = "ad-compression/"

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


# -- recency as a defined quantity (issue 31) --------------------------------------------------------

#: a head is a "recency head" when its recency log-ratio is above log 2 (the newest k get at least twice their uniform share)
RECENCY_BAR = math.log(2.0)
#: a head is a "sharp head" when its sharpness (1 − entropy ÷ log L) is above 0.5 (the "focused" threshold of :data:`THRESHOLDS`)
SHARP_BAR = 0.5


def recency_k(L: int) -> int:
    """The ``k`` of the recency log-ratio for a context of ``L`` transitions: the newest quarter,
    ``⌊L/4⌋`` (at least 1) — the seed study's "newest 25 %", fixed before any result (issue 31).
    Bandits (L = 59): k = 14; Dark Room (L = 80): k = 20, one episode."""
    if not isinstance(L, int) or isinstance(L, bool) or L < 1:
        raise bad_argument(InvalidInputError, "L", "a context of at least 1 transition", L)
    return max(1, L // 4)


def _context_rows(attention: Any) -> torch.Tensor:
    w = torch.as_tensor(attention, dtype=torch.float64)
    if w.dim() != 4 or w.shape[-1] < 3:
        raise bad_argument(InvalidInputError, "attention", "query rows (layers, batch, heads, L + 1) with L >= 2", tuple(w.shape), raw=True)
    L = w.shape[-1] - 1
    return w[..., :L] / w[..., :L].sum(-1, keepdim=True).clamp_min(1e-300)


def _recent_mass(attention: Any, k: int | None) -> tuple[torch.Tensor, int, int]:
    p = _context_rows(attention)
    L = p.shape[-1]
    k = recency_k(L) if k is None else k
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= L:
        raise bad_argument(InvalidInputError, "k", f"between 1 and L = {L} transitions", k)
    return p[..., L - k:].sum(-1), k, L


def recency_log_ratio(attention: Any, k: int | None = None) -> np.ndarray:
    """The recency log-ratio of query rows ``attention`` ``(layers, batch, heads, L + 1)`` (the query
    last; its weight on itself left out and the rest renormalised over the ``L`` context transitions,
    as :func:`query_stats`): ``log( mass on the newest k transitions ÷ (k / L) )`` — the attention mass
    on the most recent ``k`` steps over the share uniform attention over the same keys puts there.
    0: no preference; log(L/k) at most (all mass on the newest k); negative: the recent steps get less
    than their share. ``k`` default :func:`recency_k`. ``(layers, batch, heads)``; −inf where a row puts
    no mass on the newest k."""
    mass, k, L = _recent_mass(attention, k)
    with np.errstate(divide="ignore"):
        return np.log(mass.numpy() / (k / L))


def sharpness(attention: Any) -> np.ndarray:
    """``1 − entropy ÷ log L`` of each query row ``(layers, batch, heads, L + 1)`` over its ``L`` context
    transitions (renormalised, as :func:`query_stats`): 0 for uniform attention, 1 for all weight on
    one transition. ``(layers, batch, heads)``."""
    p = _context_rows(attention)
    L = p.shape[-1]
    ent = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)
    return (1.0 - ent / math.log(L)).numpy()


def head_profile(attention: Any, k: int | None = None) -> list[dict]:
    """One row per layer and head: ``recency_log_ratio`` — ``log( mean over the batch of the mass on the
    newest k ÷ (k / L) )`` (the head's mean query row's log-ratio, finite unless the head never looks
    at the newest k) — ``sharpness`` (the mean over the batch of :func:`sharpness`), ``k`` and ``L``, and
    whether the head is a recency head (:data:`RECENCY_BAR`) and a sharp head (:data:`SHARP_BAR`)."""
    mass, k, L = _recent_mass(attention, k)
    sharp = sharpness(attention)
    m = mass.numpy().mean(1)  # (layers, heads)
    s = sharp.mean(1)
    rows = []
    for layer in range(m.shape[0]):
        for head in range(m.shape[1]):
            ratio = math.log(m[layer, head] / (k / L)) if m[layer, head] > 0 else -math.inf
            rows.append({"layer": layer, "head": head, "recency_log_ratio": ratio, "sharpness": float(s[layer, head]), "k": k, "L": L,
                         "recency_head": ratio > RECENCY_BAR, "sharp_head": float(s[layer, head]) > SHARP_BAR})
    return rows


def model_recency(attention: Any, k: int | None = None) -> float:
    """The model's recency log-ratio: ``log( mass on the newest k ÷ (k / L) )`` of the query row averaged
    over layers, heads and the batch (the mean mass, then the log: one head that never looks at the
    recent steps cannot drive it to −inf)."""
    mass, k, L = _recent_mass(attention, k)
    mean = float(mass.mean())
    return math.log(mean / (k / L)) if mean > 0 else -math.inf


def spearman(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> dict:
    """Spearman's rank correlation of ``x`` and ``y`` (scipy, two-sided p) with a Fisher-z interval whose
    variance is Fieller, Hartley & Pearson's (1957) ``1.06 / (n − 3)``: ``tanh(atanh ρ ± z · √(1.06/(n − 3)))``.
    ``{"rho", "p", "low", "high", "n"}``; NaN interval for n <= 3 or ``|ρ| = 1``."""
    from scipy import stats as st

    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size < 3 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise bad_argument(InvalidInputError, "x, y", "two finite 1-D sequences of the same length >= 3", (a.shape, b.shape), raw=True)
    res = st.spearmanr(a, b)
    rho, p = float(res.statistic), float(res.pvalue)
    n = a.size
    if n <= 3 or not abs(rho) < 1:
        return {"rho": rho, "p": p, "low": math.nan, "high": math.nan, "n": n}
    z = float(st.norm.ppf(0.5 + confidence / 2))
    half = z * math.sqrt(1.06 / (n - 3))
    return {"rho": rho, "p": p, "low": math.tanh(math.atanh(rho) - half), "high": math.tanh(math.atanh(rho) + half), "n": n}


def recency_vs_sharpness(profiles: Mapping[int, list[dict]]) -> dict:
    """Recency heads against sharp heads over every head of every seed (``profiles``: ``{seed:
    head_profile rows}``): the Spearman correlation of the recency log-ratio and the sharpness across
    all heads and seeds (:func:`spearman`; heads of one seed share a model, so the p treats the
    pairs as independent, which they are not quite — each seed's own correlation is beside it), the
    per-seed correlations, and the counts of recency heads, sharp heads and heads that are both."""
    rows = [r for seed_rows in profiles.values() for r in seed_rows if math.isfinite(r["recency_log_ratio"])]
    pooled = spearman([r["recency_log_ratio"] for r in rows], [r["sharpness"] for r in rows])
    per_seed = {}
    for seed, seed_rows in profiles.items():
        fin = [r for r in seed_rows if math.isfinite(r["recency_log_ratio"])]
        per_seed[seed] = spearman([r["recency_log_ratio"] for r in fin], [r["sharpness"] for r in fin])
    every = [r for seed_rows in profiles.values() for r in seed_rows]
    return {"pooled": pooled, "per_seed": per_seed, "heads": len(every), "recency_heads": sum(r["recency_head"] for r in every),
            "sharp_heads": sum(r["sharp_head"] for r in every), "both": sum(r["recency_head"] and r["sharp_head"] for r in every)}


def chosen_heads_profile(profile: list[dict], heads: Sequence[tuple[int, int]]) -> list[dict]:
    """Where the causal test's chosen ``heads`` ((layer, head) pairs) sit in ``profile`` (:func:`head_profile`):
    per head its recency log-ratio and sharpness, their ranks among the model's heads (1 = the largest),
    and whether it is a recency head and a sharp head."""
    rank = lambda key: {(r["layer"], r["head"]): i + 1 for i, r in enumerate(sorted(profile, key=lambda r: -r[key]))}  # noqa: E731
    by_ratio, by_sharp = rank("recency_log_ratio"), rank("sharpness")
    index = {(r["layer"], r["head"]): r for r in profile}
    out = []
    for h in heads:
        h = (int(h[0]), int(h[1]))
        if h not in index:
            raise bad_argument(InvalidInputError, "heads", "(layer, head) pairs of the profile", h)
        r = index[h]
        out.append({"head": head_label(*h), "recency_log_ratio": r["recency_log_ratio"], "recency rank": by_ratio[h],
                    "sharpness": r["sharpness"], "sharpness rank": by_sharp[h], "recency_head": r["recency_head"], "sharp_head": r["sharp_head"]})
    return out


#: the recency finding's controls (issue 31): the key of each finding and the control's name in :func:`recency_findings`' ``controls``
RECENCY_CONTROLS = {"shuffled": _KEY + "recency-vs-shuffled", "ed": _KEY + "recency-vs-ed", "untrained": _KEY + "recency-vs-untrained"}


def recency_findings(model_value: float, controls: Mapping[str, float], k: int, L: int) -> list[Finding]:
    """The recency finding under each of its controls (:data:`RECENCY_CONTROLS`), one finding each, all
    with the same rule: AD's :func:`model_recency` (``model_value``) against each control's on the same
    windows (``controls``: ``{"shuffled", "ed", "untrained"}`` → value)."""
    missing = sorted(set(RECENCY_CONTROLS) - set(controls))
    if missing:
        raise bad_argument(InvalidInputError, "controls", f"values for {sorted(RECENCY_CONTROLS)}", f"no {missing}", raw=True)
    return [spec(key).result(model_value, float(controls[name]),
                             detail=f"k = {k} of L = {L}; AD {fmt(model_value)}, control ({name}) {fmt(float(controls[name]))}")
            for name, key in RECENCY_CONTROLS.items()]


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


def tokens_and_heads(sweep, ks: list[int], heads: list[tuple[int, int]], test: Any, n_heads: int, marks: bool):
    """Dropping tokens beside dropping heads, one row each, in cumulative regret at T (damage > 0 = more regret).

    Tokens (one row per ``K`` of the compression ``sweep``, ``L`` = the full row's ``K``): the regret of
    keeping the ``K`` most attended transitions (top-K) and of keeping ``K`` random ones, each minus
    the full context's; attention marks what matters when top-K's damage is the smaller. Heads:
    ``test`` (the :class:`~attnbook.intervene.HeadSetTest` of ``heads`` = (layer, head) pairs against
    every other set of as many of the model's ``n_heads`` heads, on the test split): the chosen heads'
    effect beside the null's mean; attention marks what matters when ``marks`` (the causal family's
    verdict is "supported": :data:`attnbook.registry.CAUSAL_RULE`)."""
    import pandas as pd

    at = lambda s, k: float(sweep[(sweep.strategy == s) & (sweep.K == k)]["performance"].iloc[0])  # noqa: E731
    full_row = sweep[sweep.strategy == "full"]
    full, L = float(full_row["performance"].iloc[0]), int(full_row["K"].iloc[0])
    rows = [{"dropped": f"tokens: {L - k} of {L} context transitions", "attention's choice": f"keep the {k} most attended",
             "damage, attention's choice": at("topk", k) - full, "damage, random choice": at("random", k) - full,
             "attention marks what matters": at("topk", k) < at("random", k)} for k in ks]
    rows.append({"dropped": f"heads: {len(heads)} of {n_heads} heads (mean-ablated)",
                 "attention's choice": f"ablate the most recency-biased ({', '.join(head_label(*h) for h in heads)})",
                 "damage, attention's choice": float(test.effect), "damage, random choice": float(test.null_mean),
                 "attention marks what matters": bool(marks)})
    return pd.DataFrame(rows)


def head_texts(k: int) -> dict[str, str]:
    """What each test of the chapter's causal family ablates, ``k`` heads each (the family table's row labels)."""
    return {_KEY + "recency-heads-used": f"the {k} most recency-biased heads (largest {RECENCY_STAT})",
            "positive control": f"the {k} heads whose single ablation raised the regret most (positive control)"}


def head_findings(heads: Any) -> list[Finding]:
    """The causal family's findings of one seed (``heads``, a :class:`~attnbook.rl.experiment.HeadStudy`):
    ``ad-compression/recency-heads-used`` under :data:`attnbook.registry.CAUSAL_RULE`, inconclusive
    when the positive control was not detected (:class:`~attnbook.intervene.CausalFamily`)."""
    return heads.family.findings()


def head_records(heads: Any, T: int, seed: int) -> list[dict]:
    """The family's and the positive control's records for ``summary.json``'s ``causal`` list
    (``heads``: the seed's :class:`~attnbook.rl.experiment.HeadStudy`), with the per-layer mean
    single-head effect on the selection split beside each (the unmatched null's context)."""
    metric = (f"rise in AD's cumulative regret at T={T} in context, per episode (one per held-out task of the test split, "
              f"{heads.tasks} episodes; damage > 0)")
    per_layer = heads.per_layer
    return [{**r, "per_layer_single_head_effect": per_layer} for r in heads.family.records(metric, seed, head_texts(len(heads.heads)))]


def finite_mean(values: Any) -> float:
    """Mean of the finite entries of ``values`` (any shape); NaN, without a warning, when there are
    none (no head saw a rewarded transition)."""
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    return float(finite.mean()) if finite.size else math.nan


def mean_enrichment(query: Any, rewards: Any) -> float:
    """The query's mean reward enrichment (:func:`query_stats`) over layers, tasks and heads, for
    query rows ``query`` ``(layers, batch, heads, L + 1)`` and the context's ``rewards`` ``(batch, L)``;
    NaN when no window holds a rewarded transition. (Every head of a window shares its rewards, so
    this is also the mean over heads of :func:`summarise`'s per-head means.)"""
    return finite_mean(query_stats(query, rewards)["reward_enrichment"])


def other_tasks_rewards(rewards: Any) -> np.ndarray:
    """The reward-enrichment control: each task's context rewards ``(batch, L)`` replaced by the
    next task's (rolled by one task). The rate of rewards along the history is kept — it grows as
    AD learns, so a recency-biased head is "enriched" without reading rewards — and the link to what
    this task's query attends is gone."""
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 2 or len(r) < 2:
        raise bad_argument(InvalidInputError, "rewards", "(batch >= 2, L) context rewards", r.shape, raw=True)
    return np.roll(r, 1, axis=0)


def recency_survival(rows: list[dict]) -> tuple[int, int]:
    """The seed's recency bias after the fixes: ``(survivors, raw)`` — ``raw`` heads of :func:`summarise`'s
    ``rows`` with a raw recency ratio > 2, of which ``survivors`` keep a ratio > 2 without position 0
    (``recency_no_sink``) and have entropy ÷ log L < 0.9."""
    raw = [r for r in rows if r["recency"] > 2]
    return sum(r["recency_no_sink"] > 2 and r["entropy_norm"] < 0.9 for r in raw), len(raw)


def _survival_share(rows: list[dict]) -> float:
    survivors, raw = recency_survival(rows)
    return survivors / raw if raw else 0.0


def play_findings(regret: Mapping[str, np.ndarray], window: int = 10) -> list[Finding]:
    """The held-out play's findings (:mod:`attnbook.registry`), from every player's per-pull regret
    ``(tasks, T)`` (``regret``: :attr:`~attnbook.rl.experiment.HeldOut.regret`, keys ``AD``, ``ED``,
    ``UCB1 (source)``, ``Thompson``, ``random``):

    1. ``learns-in-context``: AD's mean regret per pull over the last ``window`` pulls minus the
       first ``window``; control: ED's;
    2. ``beats-random``: AD's mean cumulative regret at T ÷ random play's; control: ED's ÷ random's;
    3. ``matches-source``: ``|AD's ÷ UCB1's − 1|``; control: Thompson sampling's.
    """
    missing = sorted({"AD", "ED", "UCB1 (source)", "Thompson", "random"} - set(regret))
    if missing:
        raise bad_argument(InvalidInputError, "regret", "per-pull regret of AD, ED, UCB1 (source), Thompson and random",
                           f"no {missing}", raw=True)
    r = {name: np.asarray(v, dtype=np.float64) for name, v in regret.items()}
    if any(v.ndim != 2 or v.shape[1] < 2 * window for v in r.values()):
        raise bad_argument(InvalidInputError, "regret", f"(tasks, pulls >= {2 * window}) arrays", {k: v.shape for k, v in r.items()}, raw=True)
    change = {n: float(r[n][:, -window:].mean() - r[n][:, :window].mean()) for n in ("AD", "ED")}
    total = {n: float(v.sum(1).mean()) for n, v in r.items()}
    step = lambda n: f"{n}: first {window} {fmt(float(r[n][:, :window].mean()))}, last {window} {fmt(float(r[n][:, -window:].mean()))}"  # noqa: E731
    source = total["UCB1 (source)"]
    return [
        spec(_KEY + "learns-in-context").result(change["AD"], change["ED"], detail=f"regret per pull, {step('AD')}; {step('ED')}"),
        spec(_KEY + "beats-random").result(total["AD"] / total["random"], total["ED"] / total["random"],
                                          detail=f"R(T): AD {fmt(total['AD'])}, ED {fmt(total['ED'])}, random {fmt(total['random'])}"),
        spec(_KEY + "matches-source").result(abs(total["AD"] / source - 1), abs(total["Thompson"] / source - 1),
                                            detail=f"R(T): AD {fmt(total['AD'])}, UCB1 {fmt(source)}, Thompson {fmt(total['Thompson'])}; "
                                                   f"random play: {fmt(abs(total['random'] / source - 1))}"),
    ]


def _at(sweep, strategy: str, k: int, column: str) -> float:
    row = sweep[(sweep.strategy == strategy) & (sweep.K == k)]
    if row.empty:
        raise bad_argument(InvalidInputError, "sweep", f"a row for {strategy} at K={k}", "none", raw=True)
    return float(row[column].iloc[0])


def compression_findings(sweep, ks: Sequence[int], L: int, redrawn: Mapping[int, float]) -> list[Finding]:
    """The compression sweep's findings (``sweep``: columns ``strategy``, ``K``, ``performance`` =
    mean cumulative regret, ``% of full``, ``speed-up, batched``; ``ks`` its context sizes):

    1. ``compression-keeps-return``: "% of full" of :func:`best_compression` at ``K <= L/2``; control:
       random-K at the same K;
    2. ``topk-beats-random``: the largest, over ``ks``, of top-K's regret minus random-K's; control:
       the same difference for random-K drawn again (``redrawn``: ``{K: mean regret at T}`` of random-K
       with another draw of the kept transitions, the same actions' draws) minus random-K — what
       chance alone gives (issue 31: was random-K in both slots, a difference of 0 that could never pass).
    """
    top = best_compression(sweep, L)
    k = int(top.K)
    missing = sorted(set(ks) - set(redrawn))
    if missing:
        raise bad_argument(InvalidInputError, "redrawn", f"random-K drawn again at every K of {list(ks)}", f"no K = {missing}", raw=True)
    diff = {kk: _at(sweep, "topk", kk, "performance") - _at(sweep, "random", kk, "performance") for kk in ks}
    chance = {kk: float(redrawn[kk]) - _at(sweep, "random", kk, "performance") for kk in ks}
    return [
        spec(_KEY + "compression-keeps-return").result(float(top["% of full"]), _at(sweep, "random", k, "% of full"),
                                                      detail=f"{top.strategy} at K = {k}, batched speed-up {fmt(float(top['speed']))}"),
        spec(_KEY + "topk-beats-random").result(max(diff.values()), max(chance.values()),
                                               detail="top-K − random-K regret at T: " + ", ".join(f"K={kk}: {fmt(d)}" for kk, d in diff.items())
                                                      + "; random-K drawn again − random-K: " + ", ".join(f"K={kk}: {fmt(d)}" for kk, d in chance.items())),
    ]


def attention_findings(rows: list[dict], control_rows: list[dict], enrichment: float, enrichment_control: float,
                       darkroom: bool = False) -> list[Finding]:
    """The query statistics' findings:

    1. ``recency-survives``: the share of AD's raw-recency heads (``rows``, :func:`summarise`) that
       survive the fixes (:func:`recency_survival`; 0 without such heads); control: the heads of AD
       trained on shuffled histories on the same windows (``control_rows``; issue 31: was the random-init twin);
    2. ``reward-attention-bandits`` (or ``-darkroom`` with ``darkroom``): ``enrichment``
       (:func:`mean_enrichment`); control: ``enrichment_control``, the same attention against
       :func:`other_tasks_rewards`.
    """
    (s, n), (rs, rn) = recency_survival(rows), recency_survival(control_rows)
    where = "darkroom" if darkroom else "bandits"
    return [
        spec(_KEY + "recency-survives").result(_survival_share(rows), _survival_share(control_rows),
                                              detail=f"{s} of {n} heads with a raw ratio > 2 survive, of {len(rows)}; control: {rs} of {rn}"),
        spec(_KEY + f"reward-attention-{where}").result(enrichment, enrichment_control),
    ]


def darkroom_finding(returns, window: int = 10) -> Finding:
    """Dark Room's in-context learning (``ad-compression/darkroom-in-context``; AD's own paper's claim
    at our scale): AD's mean return per episode over the last ``window`` in-context episodes on the
    held-out goals minus twice the first ``window``'s (>= 0), and the last ``window``'s ÷ the optimal
    return (>= 0.5); control: ED, the same measures.

    ``returns``: :class:`~attnbook.rl.experiment.DarkRoomStudy`'s table (one row per episode, a column
    per player — ``AD``, the source, ``ED``, ``random`` — and ``optimal``)."""
    if not {"AD", "ED", "optimal"} <= set(returns) or len(returns) < 2 * window:
        raise bad_argument(InvalidInputError, "returns", f"columns AD, ED and optimal and >= {2 * window} episodes",
                           f"columns {list(returns.columns)}, {len(returns)} episodes", raw=True)
    best = float(returns["optimal"].iloc[0])

    def measures(player: str) -> dict[str, float]:
        first, last = float(returns[player].head(window).mean()), float(returns[player].tail(window).mean())
        return {"last 10 − 2 × first 10": last - 2 * first, "last 10 ÷ optimal": last / best}

    ends = lambda c: f"{c}: first {window} {fmt(float(returns[c].head(window).mean()))}, last {window} {fmt(float(returns[c].tail(window).mean()))}"  # noqa: E731
    others = [c for c in returns.columns if c not in ("optimal",)]
    return spec(_KEY + "darkroom-in-context").result(measures("AD"), measures("ED"),
                                                     detail="return per episode, " + "; ".join(map(ends, others)) + f"; optimal {fmt(best)}")


def best_compression(sweep, L: int):
    """The sweep's best compressed row at ``K <= L / 2`` that is faster than the full context: the
    highest "% of full", ties broken by the batched speed-up (``topk`` and ``full`` excluded).
    A row with the column ``speed`` = its batched speed-up."""
    best = sweep[(sweep.K <= L // 2) & (sweep.strategy != "full") & (sweep.strategy != "topk")]
    best = best.assign(speed=best["speed-up, batched"]).sort_values(["% of full", "speed"], ascending=False)
    return best[best["speed"] > 1].iloc[0]


def chapter_checks(weights: Any, top) -> list[Check]:
    """Chapter 4's checks — what the findings rely on, not findings: the captured maps ``weights``
    are causal and their rows sum to 1; the compressed context the compression finding reads
    (``top``, :func:`best_compression`'s row, or ``{seed: row}``: one check per training seed) is
    faster than the full one (batched)."""
    w = torch.as_tensor(weights)
    tops = top if isinstance(top, Mapping) else {None: top}
    return [
        Check("captured maps: largest weight above the diagonal", float(w.triu(1).abs().max()), "<=", 0.0),
        Check("captured maps: largest |row sum − 1|", float((w.sum(-1) - 1).abs().max()), "<", 1e-5),
    ] + [Check(f"best compression{'' if seed is None else f' of seed {seed}'} ({row.strategy}, K={row.K}): batched speed-up over "
               f"the full context", float(row["speed"]), ">", 1.0) for seed, row in tops.items()]


def seed_findings(study: Any, ks: Sequence[int], L: int, darkroom: Any | None = None) -> list[Finding]:
    """Every finding of one training seed: ``study`` (:class:`~attnbook.rl.experiment.BanditStudy`) gives
    the play, compression, attention and head findings; with ``darkroom`` (the seed's
    :class:`~attnbook.rl.experiment.DarkRoomStudy`, full profile) the reward finding reads Dark Room and
    Dark Room's own finding is added. ``ks``: the sweep's context sizes, ``L`` the full context."""
    enrichment = study.enrichment if darkroom is None else (darkroom.enrichment, darkroom.enrichment_other_goals)
    found = play_findings(study.held.regret)
    found += compression_findings(study.sweep, ks, L, study.redrawn)
    found += attention_findings(study.rows, study.control_rows["shuffled"], *enrichment, darkroom=darkroom is not None)
    found += recency_findings(study.recency["AD"], study.recency, study.recency_k, L)
    found += head_findings(study.heads)
    if darkroom is not None:
        found.append(darkroom_finding(darkroom.returns))
    return found


def regret_by_seed(tables: Mapping[int, Any]):
    """The held-out play's cumulative regret at T, one row per player, one column per training seed
    (``tables``: ``{seed: HeldOut.table}``), with the mean over seeds first. The baselines (UCB1,
    Thompson, random) ran on fixed evaluation draws: their value is the same on every seed."""
    import pandas as pd

    out = pd.DataFrame({f"R(T), seed {seed}": t["R(T)"] for seed, t in tables.items()})
    out.insert(0, "R(T), mean over seeds", out.mean(axis=1))
    return out


def sweep_by_seed(sweeps: Mapping[int, Any]):
    """The compression sweep over training seeds, one row per (strategy, K): the mean over seeds of the
    regret at T and of "% of full", each seed's "% of full", and the (shared) cost columns."""
    import pandas as pd

    first = next(iter(sweeps.values()))
    out = first[["strategy", "K"]].copy()
    out["regret at T, mean over seeds"] = np.mean([s["performance"].to_numpy() for s in sweeps.values()], 0)
    out["% of full, mean over seeds"] = np.mean([s["% of full"].to_numpy() for s in sweeps.values()], 0)
    for seed, s in sweeps.items():
        if not (s[["strategy", "K"]].to_numpy() == first[["strategy", "K"]].to_numpy()).all():
            raise bad_argument(InvalidInputError, "sweeps", "sweeps over the same strategies and K", f"seed {seed} differs", raw=True)
        out[f"% of full, seed {seed}"] = s["% of full"].to_numpy()
    cost = [c for c in first.columns if c.startswith("ms/step") or c.startswith("speed-up") or c.startswith("attention memory")]
    return pd.concat([out, first[cost]], axis=1)
