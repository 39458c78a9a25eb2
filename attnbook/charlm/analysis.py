"""Tables over char-LM runs: the seed's results table, metrics over training, correlations.

Aggregation over seeds uses the standard error ``std / √n`` (ddof 1); the seed's code divided
by ``n``, which understates the spread — we do not copy that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InvalidInputError, bad_argument
from ..maps import AttentionMaps
from .experiment import RunResult

__all__ = ["by_dataset", "mean_se", "results_table", "layer_series", "correlations", "overhead_table", "samples_table",
           "head_similarity", "floor_crossing", "js_reference"]


def by_dataset(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    """Runs grouped by dataset, in first-seen order."""
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.spec.dataset, []).append(r)
    return groups


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error ``std/√n`` (ddof 1; NaN for a single value)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise bad_argument(InvalidInputError, "values", "at least one value", values)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan


def results_table(results: Sequence[RunResult]) -> pd.DataFrame:
    """The seed's table per dataset: final train loss, best val loss, train time (s), inference tok/s,
    each as mean and standard error over seeds, with the number of seeds."""
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
    return pd.DataFrame(rows)


def overhead_table(results: Sequence[RunResult]) -> pd.DataFrame:
    """Per run: training seconds, seconds inside the attention tracker and the sampler, and the
    tracking overhead ``train / (train − tracker)`` (the sampler is a separate, optional cost)."""
    rows = []
    for r in results:
        rest = r.seconds - r.tracking_seconds - r.sampling_seconds
        rows.append({"run": r.spec.name, "train_s": r.seconds, "tracker_s": r.tracking_seconds, "sampler_s": r.sampling_seconds,
                     "tracking_overhead": (rest + r.tracking_seconds) / rest, "sampling_overhead": (rest + r.sampling_seconds) / rest})
    return pd.DataFrame(rows).set_index("run")


def samples_table(results: Sequence[RunResult], steps: Sequence[int] | None = None, chars: int = 120) -> pd.DataFrame:
    """The first seed's sample of each dataset at ``steps`` (default: first, middle, last snapshot)
    with its quality metrics; text cut to ``chars`` characters."""
    rows = []
    for dataset, runs in by_dataset(results).items():
        r = runs[0]
        picked = steps if steps is not None else [r.steps[0], r.steps[len(r.steps) // 2], r.steps[-1]]
        for s in picked:
            match = [x for x in r.samples if x["step"] == s]
            if not match:
                raise bad_argument(InvalidInputError, "steps", f"snapshot steps of {r.spec.name} ({r.steps})", s)
            x = match[0]
            rows.append({"dataset": dataset, "step": s, "sample": x["text"][:chars], "coherence": x["coherence"],
                         "repetition": x["repetition"], "distinct_2_words": x["distinct_2_words"], "distinct_4_chars": x["distinct_4_chars"]})
    return pd.DataFrame(rows)


def _window_maps(m: np.ndarray) -> AttentionMaps:
    """A run's stored window maps ``(L, H, T, T)`` as causal :class:`AttentionMaps` of batch 1."""
    import torch

    T = m.shape[-1]
    return AttentionMaps(torch.as_tensor(m)[:, None], tuple(f"layer {l}" for l in range(m.shape[0])),
                         mask=torch.ones(T, T, dtype=torch.bool).tril()[None])


def head_similarity(run: RunResult, snapshot: int = -1) -> tuple[float, float]:
    """Mean JS divergence between heads of the same layer and between heads of different layers,
    on the stored window at ``snapshot`` (Clark et al. 2019's comparison)."""
    from .. import metrics

    maps = _window_maps(run.maps[snapshot].astype(np.float32))
    L, H = maps.n_layers, maps.n_heads
    D = metrics.head_distances(maps).numpy()
    same_layer = np.kron(np.eye(L), np.ones((H, H))).astype(bool)
    return float(D[same_layer & ~np.eye(L * H, dtype=bool)].mean()), float(D[~same_layer].mean())


def floor_crossing(run: RunResult, floor: float, layer: int = 0) -> float:
    """Share of ``layer``'s total entropy drop already done at the first evaluation whose validation
    loss is below ``floor``: ``(e_0 − e_cross) / (e_0 − e_end)``; NaN if the floor is never crossed
    or that evaluation has no snapshot."""
    steps, val = np.asarray(run.history.steps), np.asarray(run.history.val_loss)
    below = steps[val < floor]
    if not below.size or int(below[0]) not in run.steps:
        return math.nan
    e = run.snapshots["entropy"][:, layer].mean(-1)
    return float((e[0] - e[run.steps.index(int(below[0]))]) / (e[0] - e[-1]))


def js_reference(run: RunResult, snapshot: int = -1) -> dict[str, float]:
    """Head diversity of the stored window (rows renormalised after float16 storage) recomputed with
    scipy (``jensenshannon(p, q)²``, natural log, every head pair and causal row) next to :func:`attnbook.metrics.head_diversity`, which
    clamps to [0, ln 2]: the range of the unclamped reference values and the largest per-layer
    difference between the two."""
    from scipy.spatial.distance import jensenshannon

    from .. import metrics

    m = run.maps[snapshot].astype(np.float64)  # (L, H, T, T), stored as float16: renormalise the causal rows
    m = np.tril(m) / np.tril(m).sum(-1, keepdims=True)
    L, H, T = m.shape[0], m.shape[1], m.shape[-1]
    ref = np.zeros(L)
    values = []
    for l in range(L):
        js = [jensenshannon(m[l, a, i, : i + 1], m[l, b, i, : i + 1]) ** 2 for a in range(H) for b in range(a + 1, H) for i in range(T)]
        values.extend(js)
        ref[l] = np.mean(js)
    ours = metrics.head_diversity(_window_maps(m.astype(np.float32)))[:, 0].double().numpy()
    return {"min": float(np.min(values)), "max": float(np.max(values)), "max_difference": float(np.abs(ours - ref).max())}
