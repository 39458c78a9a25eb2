"""Tables over char-LM runs: the seed's results table, metrics over training, correlations; the
chapter's checks and findings; the causal test of the heads attention points to.

Every finding is measured per training seed — on that seed's runs, one per corpus that ran, with that
seed's causal test and generation record (:func:`seed_findings`) — and reported across seeds with
:func:`attnbook.claims.across_seeds`. Checks hold over every run of every seed (the worst seed).

Aggregation over seeds uses the standard error ``std / √n`` (ddof 1); the seed's code divided
by ``n``, which understates the spread — we do not copy that.

Most findings say that something *forms during training*; their control is the same runs' step-0
(untrained) snapshot, measured the same way. The correlations between attention statistics and the
validation loss or sample quality are described, not tested: both sides trend with the training
step, so they correlate whatever attention does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..claims import AcrossSeeds, Check, Finding, fmt
from ..errors import InvalidInputError, bad_argument
from ..maps import AttentionMaps
from .causal import DISTINCT, PREVIOUS, USE_KEYS, UseTest
from .experiment import RunResult, Settings

__all__ = ["by_dataset", "by_seed", "seed_findings", "stored_window", "window_maps", "mean_se", "runs_table", "results_table", "layer_series", "correlations", "overhead_table", "samples_table",
           "correlation_reading", "head_similarity", "floor_crossing", "floor_crossing_loss", "js_reference", "chapter_checks",
           "depth_order", "largest_head_value", "sink_ratio", "diversity_timing", "chapter_findings", "findings_glue", "verdict_list", "full_not_run",
           "learning_summary", "window_measures", "previous_token_heads", "previous_token_reading", "profile_not_run",
           "generation_attention", "SEED_BEST_VAL",
           "PREVIOUS", "DISTINCT", "USE_KEYS", "head_distinctness", "distinct_count", "choose_heads"]

#: the seed study's best validation loss per corpus (nats / char; 6×6×384, block 256, GPU, 5k / 100k steps)
SEED_BEST_VAL = {"tinyshakespeare": 1.468, "enwik8": 1.006, "text8": 0.981}


def by_dataset(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    """Runs grouped by dataset, in first-seen order."""
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.spec.dataset, []).append(r)
    return groups


def by_seed(results: Sequence[RunResult]) -> dict[int, list[RunResult]]:
    """Runs grouped by training seed (in first-seen order), each seed's runs in corpus order."""
    groups: dict[int, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.spec.seed, []).append(r)
    return groups


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error ``std/√n`` (ddof 1; NaN for a single value)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise bad_argument(InvalidInputError, "values", "at least one value", values)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan


def runs_table(results: Sequence[RunResult]) -> pd.DataFrame:
    """One row per run: steps, snapshots, best and final validation loss (empty with no runs)."""
    rows = [{"run": r.spec.name, "steps": r.spec.train.steps, "snapshots": len(r.steps), "best val loss": r.history.best_val,
             "final val loss": r.history.val_loss[-1]} for r in results]
    return pd.DataFrame(rows, columns=["run", "steps", "snapshots", "best val loss", "final val loss"]).set_index("run")


def results_table(results: Sequence[RunResult]) -> pd.DataFrame:
    """The seed's table per dataset: final train loss, best val loss, train time (s), inference tok/s,
    each as mean and standard error over seeds, with the number of seeds (empty with no runs)."""
    if not results:
        keys = ("final_train_loss", "best_val_loss", "total_train_time_s", "inference_tok_s")
        return pd.DataFrame(columns=["dataset", "seeds", *(k + e for k in keys for e in ("", "_se"))]).set_index("dataset")
    rows = []
    for dataset, runs in by_dataset(results).items():
        row = {"dataset": dataset, "seeds": len(runs)}
        for key, get in (("final_train_loss", lambda r: r.final_train_loss), ("best_val_loss", lambda r: r.history.best_val),
                         ("total_train_time_s", lambda r: r.seconds), ("inference_tok_s", lambda r: r.inference_tok_s)):
            row[key], row[key + "_se"] = mean_se([get(r) for r in runs])
        rows.append(row)
    return pd.DataFrame(rows).set_index("dataset")


def layer_series(runs: Sequence[RunResult], metric: str) -> np.ndarray:
    """``metric`` per run, snapshot and layer: (runs, snapshots, L) — head-mean for per-head
    metrics, as stored for per-layer ones."""
    if not runs:
        raise bad_argument(InvalidInputError, "runs", "at least one run", runs)
    if metric not in runs[0].snapshots:
        raise bad_argument(InvalidInputError, "metric", f"one of {sorted(runs[0].snapshots)}", metric)
    out = []
    for r in runs:
        x = r.snapshots[metric]
        out.append(np.nanmean(x, axis=-1) if x.ndim == 3 and metric not in ("layer_js", "layer_cosine") else x)
    return np.stack(out)


def _aligned(r: RunResult) -> tuple[np.ndarray, np.ndarray]:
    """Snapshot indices and evaluation indices of the steps both have."""
    steps = list(r.history.steps)
    pairs = [(k, steps.index(s)) for k, s in enumerate(r.steps) if s in steps]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def correlations(results: Sequence[RunResult], metrics: Sequence[str] = ("entropy", "span", "diversity", "previous_token", "sink")) -> pd.DataFrame:
    """Spearman ρ over snapshots of each attention metric (mean over layers and heads) with the
    validation loss and with the sample quality (coherence, repetition) at the same step, pooled
    over the runs of each dataset; with the p-value and the number of snapshots."""
    rows = []
    for dataset, runs in by_dataset(results).items():
        pooled: dict[str, list[float]] = {}
        for r in runs:
            snap, ev = _aligned(r)
            pooled.setdefault("val_loss", []).extend(np.asarray(r.history.val_loss)[ev])
            for q in ("coherence", "repetition"):
                pooled.setdefault(q, []).extend(r.samples[k][q] for k in snap)
            for m in metrics:
                pooled.setdefault(m, []).extend(np.nanmean(r.snapshots[m][snap].reshape(len(snap), -1), axis=1))
        for m in metrics:
            for target in ("val_loss", "coherence", "repetition"):
                x, y = np.asarray(pooled[m]), np.asarray(pooled[target])
                keep = np.isfinite(x) & np.isfinite(y)
                x, y = x[keep], y[keep]
                defined = x.size > 2 and np.ptp(x) > 0 and np.ptp(y) > 0  # a constant side has no rank correlation
                rho, p = stats.spearmanr(x, y) if defined else (math.nan, math.nan)
                rows.append({"dataset": dataset, "metric": m, "against": target, "spearman": float(rho), "p": float(p), "n": int(x.size)})
    return pd.DataFrame(rows, columns=["dataset", "metric", "against", "spearman", "p", "n"])


def correlation_reading(corr: pd.DataFrame, metric: str, against: str) -> str:
    """``"<corpus>: ρ=…, …"``: the Spearman ρ of ``metric`` against ``against`` per corpus, from
    :func:`correlations` ("none" without rows)."""
    rows = corr[(corr.metric == metric) & (corr.against == against)]
    return ", ".join(f"{d}: ρ={fmt(float(v))}" for d, v in zip(rows.dataset, rows.spearman)) or "none"


def overhead_table(results: Sequence[RunResult]) -> pd.DataFrame:
    """Per run: training seconds, seconds inside the attention tracker and the sampler, and the
    tracking overhead ``train / (train − tracker)`` (the sampler is a separate, optional cost)."""
    rows = []
    for r in results:
        rest = r.seconds - r.tracking_seconds - r.sampling_seconds
        rows.append({"run": r.spec.name, "train_s": r.seconds, "tracker_s": r.tracking_seconds, "sampler_s": r.sampling_seconds,
                     "tracking_overhead": (rest + r.tracking_seconds) / rest, "sampling_overhead": (rest + r.sampling_seconds) / rest})
    return pd.DataFrame(rows, columns=["run", "train_s", "tracker_s", "sampler_s", "tracking_overhead", "sampling_overhead"]).set_index("run")


def samples_table(results: Sequence[RunResult], steps: Sequence[int] | None = None, chars: int = 120) -> pd.DataFrame:
    """The first training seed's sample of each dataset at ``steps`` (default: first, middle, last
    snapshot) with its quality metrics; text cut to ``chars`` characters."""
    rows = []
    for dataset, runs in by_dataset(results).items():
        r = runs[0]
        picked = steps if steps is not None else [r.steps[0], r.steps[len(r.steps) // 2], r.steps[-1]]
        for s in picked:
            match = [x for x in r.samples if x["step"] == s]
            if not match:
                raise bad_argument(InvalidInputError, "steps", f"snapshot steps of {r.spec.name} ({r.steps})", s)
            x = match[0]
            rows.append({"dataset": dataset, "seed": r.spec.seed, "step": s, "sample": x["text"][:chars], "coherence": x["coherence"],
                         "repetition": x["repetition"], "distinct_2_words": x["distinct_2_words"], "distinct_4_chars": x["distinct_4_chars"]})
    return pd.DataFrame(rows, columns=["dataset", "seed", "step", "sample", "coherence", "repetition", "distinct_2_words", "distinct_4_chars"])


def stored_window(run: RunResult, snapshot: int = -1) -> np.ndarray:
    """A run's stored window maps at ``snapshot`` ``(L, H, T, T)``, float64, with the causal rows
    renormalised (the run cache keeps them in float16)."""
    m = np.tril(run.maps[snapshot].astype(np.float64))
    return m / m.sum(-1, keepdims=True)


def window_maps(m: np.ndarray, labels: Sequence[str] | None = None) -> AttentionMaps:
    """A run's stored window maps ``(L, H, T, T)`` as causal :class:`AttentionMaps` of batch 1
    (``labels``: the window's characters, for queries and keys)."""
    import torch

    T = m.shape[-1]
    tokens = None if labels is None else [list(labels)]
    return AttentionMaps(torch.as_tensor(m)[:, None], tuple(f"layer {l}" for l in range(m.shape[0])), tokens, tokens,
                         mask=torch.ones(T, T, dtype=torch.bool).tril()[None])


def head_similarity(run: RunResult, snapshot: int = -1) -> tuple[float, float]:
    """Mean JS divergence between heads of the same layer and between heads of different layers,
    on the stored window at ``snapshot`` (Clark et al. 2019's comparison)."""
    from .. import metrics

    maps = window_maps(run.maps[snapshot].astype(np.float32))
    L, H = maps.n_layers, maps.n_heads
    D = metrics.head_distances(maps).numpy()
    same_layer = np.kron(np.eye(L), np.ones((H, H))).astype(bool)
    return float(D[same_layer & ~np.eye(L * H, dtype=bool)].mean()), float(D[~same_layer].mean())


def _first_below(run: RunResult, floor: float) -> int | None:
    """The history index of the first evaluation whose validation loss is below ``floor`` and that
    has a snapshot; None if there is none."""
    steps, val = np.asarray(run.history.steps), np.asarray(run.history.val_loss)
    below = np.flatnonzero(val < floor)
    if not below.size or int(steps[below[0]]) not in run.steps:
        return None
    return int(below[0])


def floor_crossing(run: RunResult, floor: float, layer: int = 0) -> float:
    """Share of ``layer``'s total entropy drop already done at the first evaluation whose validation
    loss is below ``floor``: ``(e_0 − e_cross) / (e_0 − e_end)``; NaN if the floor is never crossed
    or that evaluation has no snapshot."""
    k = _first_below(run, floor)
    if k is None:
        return math.nan
    e = run.snapshots["entropy"][:, layer].mean(-1)
    return float((e[0] - e[run.steps.index(int(run.history.steps[k]))]) / (e[0] - e[-1]))


def floor_crossing_loss(run: RunResult, floor: float) -> float:
    """The same share for the validation loss itself: ``(L_0 − L_cross) / (L_0 − L_end)`` at the
    evaluation :func:`floor_crossing` reads (what attention sharpening in step with the loss would
    give); NaN where :func:`floor_crossing` is."""
    k = _first_below(run, floor)
    if k is None:
        return math.nan
    val = np.asarray(run.history.val_loss)
    return float((val[0] - val[k]) / (val[0] - val[-1]))


def js_reference(run: RunResult, snapshot: int = -1) -> dict[str, float]:
    """Head diversity of the stored window (rows renormalised after float16 storage) recomputed with
    scipy (``jensenshannon(p, q)²``, natural log, every head pair and causal row) next to :func:`attnbook.metrics.head_diversity`, which
    clamps to [0, ln 2]: the range of the unclamped reference values and the largest per-layer
    difference between the two."""
    from scipy.spatial.distance import jensenshannon

    from .. import metrics

    m = stored_window(run, snapshot)
    L, H, T = m.shape[0], m.shape[1], m.shape[-1]
    ref = np.zeros(L)
    values = []
    for l in range(L):
        js = [jensenshannon(m[l, a, i, : i + 1], m[l, b, i, : i + 1]) ** 2 for a in range(H) for b in range(a + 1, H) for i in range(T)]
        values.extend(js)
        ref[l] = np.mean(js)
    ours = metrics.head_diversity(window_maps(m.astype(np.float32)))[:, 0].double().numpy()
    return {"min": float(np.min(values)), "max": float(np.max(values)), "max_difference": float(np.abs(ours - ref).max())}


def chapter_checks(results: Sequence[RunResult], floors: dict[str, float], profile: str, fresh_weights=None,
                   generation: dict | Sequence[dict] | None = None) -> list[Check]:
    """What chapter 5 stands on, for the corpora that ran (none: no checks). Per corpus: step-0 entropy
    within 1 % of the uniform-causal value and a final validation loss below the bigram floor
    (``floors``); tiny Shakespeare ≤ 2.0 in ``quick``; over all runs: entropy falls in every layer (it
    starts uniform, so any learning lowers it), no head collapses, head diversity agrees with scipy;
    ``fresh_weights`` (L, B, H, T, T), a fresh capture of a trained model
    (:func:`~attnbook.charlm.tracking.causal_maps`): causal and row-stochastic; ``generation``
    (:func:`generation_attention`, one or one per seed): maps recorded while sampling equal one forward
    (the largest difference over them)."""
    from .tracking import uniform_causal

    if not results:
        return []
    groups = by_dataset(results)
    uniform = uniform_causal(results[0].maps.shape[-1])
    entropy0 = {name: max(abs(r.snapshots["entropy"][0].mean() / uniform["entropy"] - 1) for r in runs) for name, runs in groups.items()}
    final_gap = {name: max(r.history.val_loss[-1] - floors[name] for r in runs) for name, runs in groups.items()}
    drop = max(float((r.snapshots["entropy"][-1].mean(-1) - r.snapshots["entropy"][0].mean(-1)).max()) for r in results)
    min_head = min(float(r.snapshots["entropy"].min()) for r in results)
    js = [js_reference(r) for r in results]  # scipy's unclamped JS on the stored window, last snapshot
    checks = [Check(f"step 0: mean entropy within 1% of (1/T) Σ ln t = {uniform['entropy']:.3f} ({name}, worst seed)", entropy0[name], "<=", 0.01)
              for name in groups]
    checks += [Check(f"final val loss − bigram floor ({name}, worst seed)", final_gap[name], "<", 0.0) for name in groups]
    if "tinyshakespeare" in groups and profile == "quick":
        checks.append(Check("tiny Shakespeare final val loss (worst seed), quick profile",
                            max(r.history.val_loss[-1] for r in groups["tinyshakespeare"]), "<=", 2.0))
    checks += [
        Check("entropy at the last snapshot − the first, every layer of every run (max)", drop, "<", 0.0),
        Check("no collapsed head: lowest mean entropy of any head at any snapshot (nats)", min_head, ">", 0.05),
        Check("JS between heads (scipy, unclamped, every run's last snapshot): lowest", min(j["min"] for j in js), ">=", 0.0),
        Check("JS between heads (scipy): highest, bounded by ln 2 = 0.693 (+1e-9 for rounding)", max(j["max"] for j in js), "<=", math.log(2) + 1e-9),
        Check("head diversity: attnbook.metrics vs scipy, largest difference", max(j["max_difference"] for j in js), "<=", 1e-4),
    ]
    if fresh_weights is not None:
        checks += [Check("fresh capture of a trained model: largest weight above the diagonal", float(fresh_weights.triu(1).abs().max()), "<=", 0.0),
                   Check("fresh capture: largest |row sum − 1|", float((fresh_weights.sum(-1) - 1).abs().max()), "<=", 1e-5)]
    generations = [generation] if isinstance(generation, dict) else list(generation or [])
    if generations:
        checks.append(Check("maps recorded while sampling (KV cache) − one forward over the same text: largest |difference|"
                            + (f" (over {len(generations)} seeds)" if len(generations) > 1 else ""),
                            max(g["capture_vs_forward"] for g in generations), "<=", 1e-5))
    return checks


# -- findings: each measured at the last snapshot and, as its control, the same way at step 0 -------

def depth_order(results: Sequence[RunResult], snapshot: int = -1) -> dict[str, float]:
    """Per corpus: the Pearson r between layer index and the layer's mean span at ``snapshot``, mean
    over the corpus's runs (NaN where the spans are all equal)."""
    out = {}
    for name, runs in by_dataset(results).items():
        spans = layer_series(runs, "span")[:, snapshot]  # (runs, L)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[name] = float(np.mean([np.corrcoef(np.arange(s.size), s)[0, 1] if np.ptp(s) > 0 else math.nan for s in spans]))
    return out


def largest_head_value(results: Sequence[RunResult], metric: str, snapshot: int = -1) -> float:
    """The largest value of a per-head ``metric`` (e.g. ``"previous_token"``) of any head of any run at ``snapshot``."""
    return max(float(np.nanmax(r.snapshots[metric][snapshot])) for r in results)


def sink_ratio(results: Sequence[RunResult], snapshot: int = -1) -> float:
    """The largest layer-mean mass on position 0 of any run and layer at ``snapshot``, over uniform
    causal attention's (:func:`~attnbook.charlm.tracking.uniform_causal`)."""
    from .tracking import uniform_causal

    sink = max(float(np.nanmean(r.snapshots["sink"][snapshot], axis=-1).max()) for r in results)
    return sink / uniform_causal(results[0].maps.shape[-1])["sink"]


def diversity_timing(results: Sequence[RunResult]) -> dict[str, float]:
    """When head diversity (mean over layers) rises: ``share``, its value a quarter into the snapshots
    over its final value (mean over runs); ``change``, final − step 0 (lowest over runs);
    ``linear_share``, the share a straight line in steps from each run's step-0 to its final value
    would reach at the same snapshot (mean over runs); ``start``, ``quarter``, ``end`` (means)."""
    div = np.stack([layer_series([r], "diversity")[0].mean(-1) for r in results])  # (runs, snapshots)
    q = div.shape[1] // 4
    fraction = np.array([r.steps[q] / r.steps[-1] for r in results])
    d0, dq, d_end = div[:, 0], div[:, q], div[:, -1]
    return {"share": float((dq / d_end).mean()), "change": float((d_end - d0).min()),
            "linear_share": float(((d0 + fraction * (d_end - d0)) / d_end).mean()),
            "start": float(d0.mean()), "quarter": float(dq.mean()), "end": float(d_end.mean()), "quarter_step": int(results[0].steps[q])}


def _finite_mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _r_depth(span: np.ndarray) -> float:
    """Pearson r between layer index and the layer's mean span (``span``: (L, H)); NaN when all equal."""
    s = np.asarray(span, dtype=np.float64).mean(-1)
    return float(np.corrcoef(np.arange(s.size), s)[0, 1]) if np.ptp(s) > 0 else math.nan


def window_measures(results: Sequence[RunResult], stats: Sequence, floors: dict[str, float]) -> dict:
    """The values chapter 5's attention findings read, from one seed's runs and their statistics on independent
    windows (``stats``: :func:`attnbook.charlm.controls.run_statistics` of each run, same order): for each finding
    the model's value and its control's (see :mod:`attnbook.registry`)."""
    from .controls import within_between
    from .tracking import uniform_causal

    if len(stats) != len(results) or any(s.name != r.spec.name for s, r in zip(stats, results)):
        raise bad_argument(InvalidInputError, "stats", "one RunStatistics per run, in the runs' order", [s.name for s in stats], raw=True)
    T = stats[0].window  # the windows' length (uniform attention's values depend on it)
    H = results[0].spec.model.n_head
    t = np.arange(1, T + 1)
    uniform_key1 = float((1.0 / t[2:]).mean())  # mass on position 1 of uniform causal attention, queries i >= 2
    out: dict = {"windows": min(s.windows for s in stats)}
    span0 = np.mean([s.start["span"].mean() for s in stats])
    out["span"] = (float(np.mean([s.end["span"].mean() for s in stats]) - span0), float(np.mean([s.shuffled["span"].mean() for s in stats]) - span0),
                   float(span0), float(np.mean([s.end["span"].mean() for s in stats])), float(np.mean([s.shuffled["span"].mean() for s in stats])))
    depth, depth0 = {}, {}
    for s in stats:
        depth.setdefault(s.dataset, []).append(_r_depth(s.end["span"]))
        depth0.setdefault(s.dataset, []).append(_r_depth(s.start["span"]))
    out["depth"] = ({k: float(np.mean(v)) for k, v in depth.items()}, {k: float(np.mean(v)) for k, v in depth0.items()})
    out["previous"] = (max(float(s.end["previous_token"].max()) for s in stats), max(float(s.positions["previous_token"].max()) for s in stats))
    out["previous_by_run"] = {s.name: (float(s.end["previous_token"].max()), float(s.positions["previous_token"].max())) for s in stats}
    out["induction"] = (max(float(np.nanmax(s.end["induction"])) for s in stats), max(float(np.nanmax(s.unrepeated["induction"])) for s in stats))
    wb, wb0 = np.mean([within_between(s.end["distances"], H) for s in stats], axis=0), np.mean([within_between(s.start["distances"], H) for s in stats], axis=0)
    out["alike"] = (float(wb[0] / wb[1]), float(wb0[0] / wb0[1]), float(wb[0]), float(wb[1]))
    out["sink"] = (max(float(s.end["sink"].mean(-1).max()) for s in stats) / uniform_causal(T)["sink"],
                   max(float(s.end["key1"].mean(-1).max()) for s in stats) / uniform_key1)
    # head diversity a quarter in / at the end (the tracker's 8 windows: no weights of the quarter step are stored);
    # control: the validation loss's share of its drop at the same evaluation, and its drop
    div = diversity_timing(results)
    loss_shares, loss_drops = [], []
    for r in results:
        q = int(r.steps[len(r.steps) // 4])
        val, steps = np.asarray(r.history.val_loss), list(r.history.steps)
        loss_shares.append(float((val[0] - val[steps.index(q)]) / (val[0] - val[-1])) if q in steps else math.nan)
        loss_drops.append(float(val[0] - val[-1]))
    out["diversity"] = {"share": div["share"], "change": div["change"], "loss_share": _finite_mean(loss_shares),
                        "loss_drop": float(np.min(loss_drops)), "quarter_step": div["quarter_step"]}
    # layer 0's entropy drop done at the first evaluation below the floor (the tracker's 8 windows, as above)
    out["cross"] = _finite_mean([floor_crossing(r, floors[r.spec.dataset]) for r in results])
    return out


def chapter_findings(results: Sequence[RunResult], floors: dict[str, float], generation: dict | None = None,
                     use: UseTest | None = None, stats: Sequence | None = None) -> list[Finding]:
    """The chapter's findings (:mod:`attnbook.registry`, ``charlm-evolution/…``) of one training seed,
    each measured on that seed's runs (``results``: one per corpus that ran) and on its control; the
    attention statistics come from ``stats`` (one :class:`~attnbook.charlm.controls.RunStatistics` per run:
    ≥ 512 independent validation windows, the trained model, the untrained one and the controls' worlds); the two
    findings about an intermediate snapshot (diversity a quarter in, the floor crossing) read the tracker's 8 windows. "On every corpus" means every corpus that ran, "mean over runs"
    the mean over those corpora. With ``generation`` (:func:`generation_attention`) also attention while
    writing; with ``use`` (:func:`attnbook.charlm.causal.use_test`) its two causal findings. No runs: none.
    :func:`seed_findings` calls it for every seed."""
    from ..registry import spec

    if not results:
        return []
    if stats is None:
        raise bad_argument(InvalidInputError, "stats", "the runs' statistics on independent windows (attnbook.charlm.controls.run_statistics)",
                           None, raw=True)
    c = "charlm-evolution/"
    v = window_measures(results, stats, floors)
    cross_loss = _finite_mean([floor_crossing_loss(r, floors[r.spec.dataset]) for r in results])
    listed = lambda d: ", ".join(f"{n} {fmt(x)}" for n, x in d.items())  # noqa: E731
    n = f"{v['windows']} independent validation windows"
    change, shuffled_change, span0, span_end, span_shuffled = v["span"]
    depth, depth0 = v["depth"]
    ratio, ratio0, within, between = v["alike"]
    div = v["diversity"]
    found = [
        spec(c + "span-increases").result(change, shuffled_change, detail=f"step 0 {fmt(span0)} → last snapshot {fmt(span_end)} characters, "
                                                                          f"{fmt(span_shuffled)} on shuffled text ({n})"),
        spec(c + "later-layers-attend-further").result(min(depth.values()), min(depth0.values()),
                                                       detail=f"r at the end: {listed(depth)}; at step 0: {listed(depth0)} ({n})"),
        spec(c + "previous-token-head").result(v["previous"][0], v["previous"][1],
                                               detail="; ".join(f"{k}: {fmt(a)}, permuted positions {fmt(b)}" for k, (a, b) in v["previous_by_run"].items())),
        spec(c + "induction-heads").result(v["induction"][0], v["induction"][1], detail=f"{v['windows']} strings written twice / not repeated"),
        spec(c + "heads-of-a-layer-alike").result(ratio, ratio0, detail=f"within {fmt(within)}, between {fmt(between)} nats ({n})"),
        spec(c + "diversity-rises-early").result(
            {"share of the final diversity at a quarter": div["share"], "lowest diversity change": div["change"]},
            {"share of the final diversity at a quarter": div["loss_share"], "lowest diversity change": div["loss_drop"]},
            detail=f"a quarter in: step {div['quarter_step']}; the loss had done {fmt(div['loss_share'])} of its drop there "
                   "(diversity on the tracker's 8 windows: no weights of that step are stored)"),
        spec(c + "attention-sink").result(v["sink"][0], v["sink"][1], detail=f"mass on position 1 ÷ uniform's {fmt(v['sink'][1])} ({n})"),
        spec(c + "floor-before-sharpening").result(v["cross"], cross_loss,
                                                   inconclusive="" if math.isfinite(v["cross"]) else "no run crossed its bigram floor at a snapshot"),
    ]
    if generation is not None:
        found.append(spec(c + "generation-differs-slightly").result(
            generation["relative_entropy_difference"], generation["validation_vs_validation"],
            detail=f"H {fmt(generation['entropy_sampled'])} on own samples vs {fmt(generation['entropy_validation'])} nats on validation text"
                   + (f" ({generation['windows']} windows each)" if "windows" in generation else "")))
    if use is not None:
        found += use.findings()
    return found


def seed_findings(results: Sequence[RunResult], floors: dict[str, float], generations: dict[int, dict] | None = None,
                  uses: dict[int, UseTest] | None = None, stats: dict[int, Sequence] | None = None) -> dict[int, list[Finding]]:
    """``{seed: chapter_findings(that seed's runs, floors, generations[seed], uses[seed], stats[seed])}`` for every
    training seed of ``results`` (:func:`by_seed`), for :func:`attnbook.claims.across_seeds`; empty with
    no runs. A seed without a generation record or causal test gets none of those findings, so pass
    one for every seed or for none."""
    generations, uses, stats = generations or {}, uses or {}, stats or {}
    return {seed: chapter_findings(runs, floors, generations.get(seed), uses.get(seed), stats.get(seed)) for seed, runs in by_seed(results).items()}


def previous_token_heads(stats: dict[int, Sequence], dataset: str) -> dict[int, dict]:
    """Per training seed, whether its ``dataset`` run has a **previous-token head** by the chapter's own rule
    (``charlm-evolution/previous-token-head`` applied to that run alone: its largest mass on i−1 on the independent
    windows, against the same model with permuted positions): ``{seed: {"named", "mass", "control", "verdict"}}``;
    seeds without such a run are left out. The chapter names a head "previous-token head" only where ``named``."""
    from ..registry import spec

    out = {}
    for seed, runs in stats.items():
        for s in runs:
            if s.dataset == dataset:
                mass, control = float(s.end["previous_token"].max()), float(s.positions["previous_token"].max())
                f = spec("charlm-evolution/previous-token-head").result(mass, control)
                out[seed] = {"named": f.verdict == "supported", "mass": mass, "control": control, "verdict": f.verdict}
    return out


def previous_token_reading(named: dict[int, dict], dataset: str) -> str:
    """Markdown for the causal section: per seed, whether the pair it tests includes heads the chapter may call
    previous-token heads (:func:`previous_token_heads`)."""
    if not named:
        return "not run"
    parts = []
    for seed, v in named.items():
        state = ("passes the rule, so its top head is a previous-token head in the chapter's sense" if v["named"] else
                 "does not pass it, so on this seed the pair are only the heads most on the previous character, not previous-token heads")
        parts.append(f"seed {seed}: largest mass on i−1 {fmt(v['mass'])} (permuted positions {fmt(v['control'])}) — {state}")
    return f"On {dataset}, " + "; ".join(parts) + "."


def profile_not_run(profile: str, settings: Settings, full: Settings, missing: dict[str, str]) -> dict[str, str]:
    """``{"<corpus> corpus": why}`` for every corpus of ``full`` (the seed's three) that this ``profile`` did not run:
    first those in the profile without data (``missing``, from :func:`~attnbook.charlm.experiment.load_corpora`, their
    reasons as given), then those the profile leaves out (enwik8 in ``quick``)."""
    from ..data import locate

    out = {f"{name} corpus": why for name, why in missing.items()}
    for name in full.datasets:
        if name not in settings.datasets and name not in missing:
            have = locate(name) is not None
            out[f"{name} corpus"] = (f"not in the `{profile}` profile (only `full` trains it)"
                                     + ("" if have else "; no copy of it is available to this build either"))
    return out


def _glue_name(key: str) -> str:
    return key.split("/", 1)[1].replace("-", "_")


def _reading(f: Finding | AcrossSeeds) -> str:
    """A finding's values for the prose: the model's, then the control's (one seed); across seeds the
    rule's first measure as mean and 95 % t-interval over seeds, then the control's mean."""
    values = lambda d: fmt(next(iter(d.values()))) if len(d) == 1 else ", ".join(f"{k} {fmt(v)}" for k, v in d.items())  # noqa: E731
    if isinstance(f, Finding):
        return f"{values(f.measured)}; control {values(f.control)}"
    if len(f.results) == 1:
        return _reading(f.results[0])
    mean, low, high = f.effect()
    interval = f" [{fmt(low)}, {fmt(high)}]" if math.isfinite(low) else ""
    geometric = " geometric" if f.spec.scale == "log" else ""
    return f"{fmt(mean)}{interval} ({geometric.strip() + ' ' if geometric else ''}mean of {len(f.seeds)} seeds, 95 % t-interval); control {values(f.means('control'))}"


def _per_seed_detail(f: Finding | AcrossSeeds) -> str:
    """Each seed's verdict letter and detail (or reason): ``seed 0 S: …; seed 1 N: …``."""
    if isinstance(f, Finding):
        return f.detail or f.reason
    letter = {"supported": "S", "not supported": "N", "inconclusive": "I"}
    return "; ".join(f"seed {seed} {letter[r.verdict]}: {r.detail or r.reason}" for seed, r in zip(f.seeds, f.results))


def findings_glue(found: Sequence[Finding | AcrossSeeds]) -> dict[str, str]:
    """The prose's glue values for every chapter-5 finding of the registry: ``<name>_verdict`` (the
    verdict in bold, across seeds with the count of seeds that support it), ``<name>_m`` (the model's
    measure — across seeds its mean and t-interval — and the control's) and ``<name>_detail`` (each
    seed's verdict and detail), ``<name>`` being the key's short name with ``_`` for ``-``; "not run" for
    a finding the chapter did not measure."""
    from ..registry import chapter_specs

    by_key = {f.spec.key: f for f in found}
    out = {}
    for s in chapter_specs("charlm-evolution"):
        f, name = by_key.get(s.key), _glue_name(s.key)
        if f is None:
            out.update({f"{name}_verdict": "not run", f"{name}_m": "not run", f"{name}_detail": "not run"})
            continue
        n = len(f.results) if isinstance(f, AcrossSeeds) else 1
        k = sum(v == "supported" for v in f.per_seed) if isinstance(f, AcrossSeeds) else int(f.verdict == "supported")
        out[f"{name}_verdict"] = f"**{f.verdict}**" + (f" ({k} of {n} seeds)" if n > 1 else "")
        out[f"{name}_m"] = _reading(f)
        out[f"{name}_detail"] = _per_seed_detail(f)
    return out


def verdict_list(found: Sequence[Finding | AcrossSeeds], verdict: str) -> str:
    """Markdown: the chapter's findings whose verdict (across seeds) is ``verdict``, each by its short
    name with its per-seed verdicts (``S N S``); "none" when there are none."""
    letter = {"supported": "S", "not supported": "N", "inconclusive": "I"}
    picked = [f for f in found if f.verdict == verdict]
    per_seed = lambda f: " ".join(letter[v] for v in f.per_seed) if isinstance(f, AcrossSeeds) else letter[f.verdict]  # noqa: E731
    return ", ".join(f"`{f.spec.key.split('/', 1)[1]}` ({per_seed(f)})" for f in picked) or "none"


def full_not_run(profile: str, full: Settings, seeds: int) -> str:
    """Markdown: which of the ``full`` profile's verdicts this run did not measure and the commands that
    run them (``full``: its settings, ``seeds``: its number of training seeds); empty for ``full`` itself."""
    if profile == "full":
        return ""
    m = full.model
    longest = max(d.train.steps for d in full.datasets.values())
    runs = len(full.datasets) * seeds
    return (f"**Not run: the full profile.** Every verdict above is `{profile}`'s. None of `full`'s has been run: {seeds} seeds of the "
            f"seed's {m.n_layer} × {m.n_head} × {m.n_embd} model ({m.block_size} characters of context) on {', '.join(full.datasets)}, "
            f"{runs} runs of up to {longest:,} steps, out of reach of a 2-core CPU. `python -m attnbook run 05 -p profile full` runs them "
            f"(on a CUDA GPU when there is one); with a Ray cluster, `RAY_ADDRESS=HEAD:6379 python -m attnbook run 05 -p profile full` "
            f"spreads the {runs} runs over its machines.")


def learning_summary(results: Sequence[RunResult], floors: dict[str, float], missing: dict[str, str], seed_scale: Settings) -> str:
    """Markdown: per corpus that ran, the mean final validation loss over seeds (and the worst seed's)
    against its bigram floor, the
    characters each run trained on as a share of the seed's (``seed_scale``: the ``full`` profile's
    settings) and the seed's best loss; per corpus that did not run, why."""
    parts = []
    for name, runs in by_dataset(results).items():
        train, model = runs[0].spec.train, runs[0].spec.model
        ours = train.steps * train.batch_size * model.block_size
        d = seed_scale.datasets.get(name)
        theirs = d.train.steps * d.train.batch_size * seed_scale.model.block_size if d else None
        scale = f", 1/{theirs / ours:.0f} of the seed's {theirs / 1e6:.0f}M" if theirs and theirs > ours else ""
        seed_loss = f"; the seed reached {SEED_BEST_VAL[name]:.3f}" if name in SEED_BEST_VAL else ""
        final = [r.history.val_loss[-1] for r in runs]
        over = f" (mean of {len(runs)} seeds, worst {fmt(max(final))})" if len(runs) > 1 else ""
        parts.append(f"**{name}** ends at a validation loss of {fmt(float(np.mean(final)))} nats per character{over} "
                     f"(bigram floor {fmt(floors[name])}) after {ours / 1e6:.1f}M training characters per run{scale}{seed_loss}.")
    parts += [f"**{name}** was not run: {why}." for name, why in missing.items()]
    if not parts:
        return "No corpus was configured."
    return " ".join(parts).replace("$", r"\$")  # "$ATTNBOOK_DATA_DIR … $ATTNBOOK_CACHE" is not inline math


def generation_attention(model, corpus, *, windows: int = 512, prompt: int = 16, seed: int = 0, temperature: float = 0.8,
                         top_k: int | None = 200) -> dict[str, float]:
    """Attention while the model writes, against attention while it reads.

    ``windows`` prompts of ``prompt`` validation characters (issue 31: 512 by default; prompts and both
    validation sets are independent windows, :func:`attnbook.charlm.controls.independent_starts`) are continued (KV cache, seeded) to a
    full context of ``T = block_size`` characters, with ``capture`` around the sampling: the passes
    assemble into one causal map over the ``T − 1`` positions the model read. Measured:
    ``capture_vs_forward``, the largest difference between those maps and one forward over the same
    text (the mechanism: 0 up to float rounding); ``entropy_sampled`` and ``entropy_validation``, the
    mean row entropy (nats) of every head on the sampled text and on as many validation windows of
    the same length; ``relative_entropy_difference`` = mean over heads of ``|H_s − H_v| / H_v``; and,
    as its control, ``validation_vs_validation``: the same measure between those validation windows
    and as many other ones (how much two texts of the corpus differ).
    """
    import torch

    from .. import metrics
    from ..capture import capture
    from .tracking import causal_maps

    from .controls import independent_starts

    # the context, or less where 3 × windows independent windows of it do not fit the validation split (full, tiny Shakespeare)
    T = min(model.config.block_size, (len(corpus.val) - 1) // (3 * windows) - 1)
    if T <= prompt:
        raise bad_argument(InvalidInputError, "windows", f"few enough that 3 × windows independent windows longer than the prompt fit "
                           f"the {len(corpus.val)} validation characters", windows)
    rng = np.random.default_rng(seed)  # independent windows (no shared character), dealt to prompts, validation, other validation
    starts = rng.permutation(independent_starts(len(corpus.val), T, 3 * windows, seed=seed))
    prompts = torch.as_tensor(np.stack([corpus.val[s:s + prompt] for s in starts[:windows]]).astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    with torch.no_grad(), capture(model) as cap:
        text = model.generate(prompts, T - prompt, temperature=temperature, top_k=top_k, generator=generator, use_cache=True)
    sampled = cap.to_maps()  # causal, over text[:, :-1]
    read = causal_maps(model, text[:, :-1])
    read_val = lambda chosen: causal_maps(model, torch.as_tensor(np.stack([corpus.val[s:s + T - 1] for s in chosen]).astype(np.int64)))  # noqa: E731
    h_sampled = metrics.entropy(sampled).mean(1)  # (L, H)
    h_validation = metrics.entropy(read_val(starts[windows:2 * windows])).mean(1)
    h_other = metrics.entropy(read_val(starts[2 * windows:])).mean(1)
    relative = lambda h: float(((h - h_validation).abs() / h_validation).mean())  # noqa: E731
    return {"capture_vs_forward": float((sampled.weights - read.weights).abs().max()),
            "entropy_sampled": float(h_sampled.mean()), "entropy_validation": float(h_validation.mean()),
            "relative_entropy_difference": relative(h_sampled), "validation_vs_validation": relative(h_other),
            "positions": T - 1, "windows": windows}


# -- does the model use it? (the test itself: attnbook.charlm.causal) ---------------------------------

def head_distinctness(maps: AttentionMaps) -> np.ndarray:
    """How far each head attends from the other heads of its layer, ``(L, H)``.

    ``d[l, h] = mean_{h' ≠ h} D[(l, h), (l, h')]`` with ``D`` the mean row Jensen–Shannon divergence
    of :func:`attnbook.metrics.head_distances` (natural log, over samples and valid rows, in
    ``[0, ln 2]``). The mean of ``d[l]`` over heads is the layer's head diversity (the chapter's
    ``diversity``); every value is 0 in a layer with a single head.
    """
    from .. import metrics

    L, H = maps.n_layers, maps.n_heads
    if H < 2:
        return np.zeros((L, H))
    D = metrics.head_distances(maps).double().numpy().reshape(L, H, L, H)
    within = np.stack([D[l, :, l, :] for l in range(L)])  # (L, H, H), zero diagonal
    return within.sum(-1) / (H - 1)


def distinct_count(n_layer: int, n_head: int) -> int:
    """How many heads "the most distinct heads" are: a quarter of all heads, at least one."""
    return max(1, (n_layer * n_head) // 4)


def choose_heads(previous_token: np.ndarray, distinctness: np.ndarray, count: int | None = None, *,
                 previous_count: int = 2) -> dict[str, list[tuple[int, int]]]:
    """The head sets the causal test asks about, chosen from attention statistics alone (``(L, H)``
    each): the **previous-token heads**, the ``previous_count`` heads with the most mass on the previous
    character (2 by default: a single head among few cannot reach a corrected threshold, issue 30); the
    **most distinct heads**, the ``count`` heads (default :func:`distinct_count`) farthest from the other
    heads of their layer (:func:`head_distinctness`). Ties go to the lower (layer, head); pairs are
    (layer, head), sorted."""
    p, d = np.asarray(previous_token, dtype=np.float64), np.asarray(distinctness, dtype=np.float64)
    if p.ndim != 2 or p.shape != d.shape or not np.isfinite(p).all() or not np.isfinite(d).all():
        raise bad_argument(InvalidInputError, "previous_token/distinctness", "two finite (layers, heads) arrays of one shape",
                           f"shapes {p.shape} and {d.shape}", raw=True)
    L, H = p.shape
    count = distinct_count(L, H) if count is None else count
    if not 1 <= count <= L * H:
        raise bad_argument(InvalidInputError, "count", f"between 1 and {L * H} heads", count)
    if not 1 <= previous_count <= L * H:
        raise bad_argument(InvalidInputError, "previous_count", f"between 1 and {L * H} heads", previous_count)
    top = lambda v, k: sorted(divmod(i, H) for i in sorted(range(L * H), key=lambda i: (-v.ravel()[i], i))[:k])  # noqa: E731
    return {PREVIOUS: top(p, previous_count), DISTINCT: top(d, count)}
