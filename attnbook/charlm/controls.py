"""The attention statistics chapter 5's findings read, on many independent windows, and their controls (issue 31).

The tracker's snapshots (8 windows each, every ``snapshot_every`` steps) draw the curves; the findings
that read the untrained (step 0) and the trained (last snapshot) model read them here instead, measured
on ``windows`` (≥ 512 in both profiles) **independent** validation windows — windows at multiples of
``T + 1`` characters, so no two share a character (:func:`independent_starts`) — from the weights the run
cache stores (the last snapshot's) and the initialisation the run's seed rebuilds exactly
(:func:`attnbook.charlm.experiment.load_model`, ``_build``). The two findings that read an intermediate
snapshot (head diversity a quarter in, layer 0's entropy at the floor crossing) still read the tracker's 8
windows: the run cache keeps no weights of those steps (storing them is a run-cache version bump, i.e. a
retraining of every run, not done in issue 31).

The controls, each a world that keeps everything but the thing its finding claims:

- **shuffled text** (:func:`shuffle_within`): the trained model reading the same windows with the
  characters of each window permuted (seeded): the same characters, positions and weights, no order.
  A statistic that comes out the same on it is a property of positions and weights, not of reading text.
- **permuted positions** (:func:`permute_positions`): the trained model with the rows of its learned
  position embedding permuted (seeded), reading the same text: a head that puts its mass on the
  previous character *because of where it is* loses it; one that does so because of which characters
  tend to follow which keeps it.
- **unrepeated strings**: the induction probe's random strings, the second half drawn afresh instead
  of copied: the same positions, no earlier occurrence to copy from.
- **position 1**: the sink's mass measured on the second position instead of the first, same ratio to
  uniform attention: attention that favours the start of the window, not a sink at its first position.

The correlations between attention statistics and loss or sample quality over training are described
(:func:`partial_correlation`, :func:`partial_correlations`): the snapshots of one run are not independent,
so they are never findings.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from .. import checks, metrics
from ..errors import InvalidInputError, bad_argument
from ..runs import map_tasks  # the run engine's; named here too, as the chapter calls it

__all__ = ["WINDOWS", "CHUNK", "MEASURES", "window_length", "run_models", "map_tasks", "layer_diversity", "within_between", "independent_starts", "shuffle_within", "permute_positions", "unrepeated_batch", "window_statistics",
           "RunStatistics", "run_statistics", "seed_statistics", "partial_correlation", "partial_correlations", "partial_reading"]

#: independent validation windows the findings read (issue 31: at least 512)
WINDOWS = 512
#: windows per captured forward (memory: L·chunk·H·T² floats)
CHUNK = 64


def independent_starts(length: int, block_size: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` window starts into a split of ``length`` characters at multiples of ``block_size + 1``
    (inputs and targets of one window never overlap another's), drawn without replacement (seeded), sorted."""
    length, block_size, count = (checks.positive_int(n, v) for n, v in (("length", length), ("block_size", block_size), ("count", count)))
    fit = (length - 1) // (block_size + 1)
    if count > fit:
        raise bad_argument(InvalidInputError, "count", f"at most {fit} independent windows of {block_size} + 1 characters in {length}", count)
    chosen = np.random.default_rng(seed).choice(fit, size=count, replace=False)
    return np.sort(chosen) * (block_size + 1)


def window_length(length: int, block_size: int, count: int) -> int:
    """The windows' length: the context ``block_size``, or less where ``count`` independent windows of it do not fit a
    split of ``length`` characters (``full`` on tiny Shakespeare: 434 windows of 256 fit, 512 of 216)."""
    fit = (checks.positive_int("length", length) - 1) // checks.positive_int("count", count) - 1
    if fit < 2:
        raise bad_argument(InvalidInputError, "count", f"few enough that windows of 2 characters or more fit {length} characters", count)
    return min(checks.positive_int("block_size", block_size), fit)


def shuffle_within(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``x`` (B, T) with each row's entries permuted by its own seeded permutation (the same multiset per row)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise bad_argument(InvalidInputError, "x", "a (batch, time) tensor of ids", x)
    g = torch.Generator().manual_seed(seed)
    order = torch.stack([torch.randperm(x.shape[1], generator=g) for _ in range(x.shape[0])]) if x.shape[0] else x.long()
    return x.gather(1, order.to(x.device))


def permute_positions(model, seed: int = 0):
    """A copy of ``model`` (a char :class:`~attnbook.charlm.model.GPT`) whose learned position embedding rows
    ``0 … block_size − 1`` are permuted (seeded); ``model`` is untouched.
    Returns ``(copy, permutation)``."""
    wpe = getattr(model, "wpe", None)
    if not isinstance(wpe, torch.nn.Embedding):
        raise bad_argument(InvalidInputError, "model", "a GPT with a learned position embedding (wpe)", type(model).__name__, raw=True)
    T = wpe.weight.shape[0]
    perm = torch.randperm(T, generator=torch.Generator().manual_seed(seed))
    out = copy.deepcopy(model)
    with torch.no_grad():
        out.wpe.weight.copy_(model.wpe.weight[perm])
    return out.eval(), perm


def unrepeated_batch(vocab_size: int, batch: int, period: int, seed: int = 0) -> torch.Tensor:
    """The induction probe's control: ``batch`` random id strings of length ``2·period`` whose first half is
    :func:`~attnbook.charlm.tracking.repeated_batch`'s (same seed) and whose second half is drawn afresh."""
    from .tracking import repeated_batch

    first = repeated_batch(vocab_size, batch, period, seed=seed)[:, :period]
    g = torch.Generator().manual_seed(seed + 1)
    return torch.cat([first, torch.randint(0, vocab_size, (batch, period), generator=g)], dim=1)


def _chunks(n: int, size: int):
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)


#: what :func:`window_statistics` can measure
MEASURES = ("entropy", "span", "previous_token", "sink", "key1", "distances")


def window_statistics(model, x: torch.Tensor, *, period: int | None = None, repeated: torch.Tensor | None = None,
                      chunk: int = CHUNK, measures: Sequence[str] = MEASURES) -> dict[str, np.ndarray]:
    """Per head ``(L, H)`` means over the windows ``x`` (B, T), captured ``chunk`` windows at a time:
    ``entropy``, ``span`` (mean distance), ``previous_token``, ``sink`` (mass on position 0, queries ≥ 1),
    ``key1`` (mass on position 1, queries ≥ 2); ``distances``, the JS matrix between all heads
    ``(L·H, L·H)`` (:func:`attnbook.metrics.head_distances`, mean over windows); with ``repeated``
    (B', 2·period) also ``induction`` (:func:`attnbook.metrics.induction_score`). ``measures``: which of
    :data:`MEASURES` to compute (the rest cost forwards' worth of time for nothing)."""
    from .tracking import causal_maps

    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[0] < 1:
        raise bad_argument(InvalidInputError, "x", "a non-empty (batch, time) tensor of ids", x)
    chunk = checks.positive_int("chunk", chunk)
    for m in measures:
        checks.choice("measures", m, MEASURES)
    head = {"entropy": metrics.entropy, "span": metrics.mean_distance, "previous_token": metrics.previous_token_mass,
            "sink": lambda maps: metrics.key_mass(maps, 0), "key1": lambda maps: metrics.key_mass(maps, 1)}
    sums: dict[str, torch.Tensor] = {}
    model.eval()

    def add(name: str, value: torch.Tensor, weight: int) -> None:
        sums[name] = sums.get(name, 0) + value.double() * weight

    with torch.no_grad():
        for lo, hi in _chunks(x.shape[0], chunk) if measures else ():
            maps = causal_maps(model, x[lo:hi])
            n = hi - lo
            for name in measures:
                add(name, metrics.head_distances(maps) if name == "distances" else torch.nanmean(head[name](maps), dim=1), n)
        if repeated is not None:
            if period is None:
                raise bad_argument(InvalidInputError, "period", "the repeat period of the repeated batch", None, raw=True)
            for lo, hi in _chunks(repeated.shape[0], chunk):
                add("induction", torch.nanmean(metrics.induction_score(causal_maps(model, repeated[lo:hi]), period), dim=1), hi - lo)
    out = {k: (v / x.shape[0]).numpy() for k, v in sums.items() if k != "induction"}
    if "induction" in sums:
        out["induction"] = (sums["induction"] / repeated.shape[0]).numpy()
    return out


@dataclass
class RunStatistics:
    """One run's statistics on the independent windows: ``start`` (the untrained model, step 0),
    ``end`` (the last snapshot), ``shuffled`` (the last snapshot on shuffled text), ``positions`` (the last
    snapshot with permuted position embeddings) and ``unrepeated`` (its induction measure on unrepeated
    strings), each a :func:`window_statistics` dict; ``windows`` how many, each ``window`` characters long."""

    name: str
    dataset: str
    seed: int
    windows: int
    window: int
    start: dict[str, np.ndarray]
    end: dict[str, np.ndarray]
    shuffled: dict[str, np.ndarray]
    positions: dict[str, np.ndarray]
    unrepeated: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0


def run_models(run) -> dict:
    """The models :func:`run_statistics` reads, from the run cache: ``"start"`` (the initialisation, rebuilt from
    the run's seed) and ``"end"`` (the last snapshot's stored weights)."""
    from .experiment import _build, load_model

    return {"start": _build(run.spec).eval(), "end": load_model(run.spec)}


def run_statistics(run, corpus, *, windows: int = WINDOWS, seed: int = 0, chunk: int = CHUNK,
                   models: Mapping | None = None) -> RunStatistics:
    """:class:`RunStatistics` of a cached run (``run``: a :class:`~attnbook.charlm.experiment.RunResult`) on
    ``windows`` independent validation windows of ``corpus`` (drawn with ``seed``, the evaluation seed: the
    same windows for every training seed) and its repeated strings (as many, period ``spec.induction_period``).
    ``models``: :func:`run_models` (default: read from the run cache here)."""
    import time

    from .tracking import repeated_batch

    began = time.perf_counter()
    spec = run.spec
    models = dict(models) if models is not None else run_models(run)
    T, P = window_length(len(corpus.val), spec.model.block_size, windows), spec.induction_period
    starts = independent_starts(len(corpus.val), T, windows, seed=seed)
    x = torch.as_tensor(corpus.val[starts[:, None] + np.arange(T)[None, :]].astype(np.int64))
    rep = repeated_batch(spec.model.vocab_size, windows, P, seed=seed)
    trained, untrained = models["end"], models["start"]
    moved, _ = permute_positions(trained, seed=seed)
    kw = {"period": P, "chunk": chunk}
    unrep = window_statistics(trained, x, repeated=unrepeated_batch(spec.model.vocab_size, windows, P, seed=seed), measures=(), **kw)
    return RunStatistics(spec.name, spec.dataset, spec.seed, windows, T,
                         start=window_statistics(untrained, x, measures=("span", "distances"), **kw),
                         end=window_statistics(trained, x, repeated=rep, **kw),
                         shuffled=window_statistics(trained, shuffle_within(x, seed=seed), measures=("span",), **kw),
                         positions=window_statistics(moved, x, measures=("previous_token",), **kw), unrepeated=unrep,
                         seconds=time.perf_counter() - began)


def seed_statistics(results: Sequence, corpora: Mapping, *, windows: int = WINDOWS, seed: int = 0) -> dict[int, list[RunStatistics]]:
    """``{training seed: [RunStatistics of each of its runs, corpus order]}`` for every run of ``results``, one task
    per run (:func:`map_tasks`; the models travel with the task); a run's statistics already computed by this code are
    read back (:mod:`attnbook.memo`)."""
    from .. import memo

    results = list(results)
    configs = [{"run": r.spec.to_dict(), "windows": windows, "seed": seed} for r in results]

    def compute(missing: list[int]) -> list[RunStatistics]:
        calls = [((results[i], corpora[results[i].spec.dataset]), {"windows": windows, "seed": seed, "models": run_models(results[i])})
                 for i in missing]
        return map_tasks(run_statistics, calls)

    out: dict[int, list[RunStatistics]] = {}
    for r, st in zip(results, memo.cached_map("charlm/statistics", configs, compute)):
        out.setdefault(r.spec.seed, []).append(st)
    return out


def layer_diversity(distances: np.ndarray, n_head: int) -> np.ndarray:
    """Head diversity per layer from the JS matrix between all heads ``(L·H, L·H)``: the mean over the layer's
    head pairs ``h < h'`` (:func:`attnbook.metrics.head_diversity`, averaged over windows)."""
    D = np.asarray(distances, dtype=np.float64)
    H = checks.positive_int("n_head", n_head)
    if D.ndim != 2 or D.shape[0] != D.shape[1] or D.shape[0] % H:
        raise bad_argument(InvalidInputError, "distances", f"a square (L·H, L·H) matrix with H = {H}", D.shape)
    if H < 2:
        return np.zeros(D.shape[0] // H)
    iu = np.triu_indices(H, 1)
    return np.array([D[l * H:(l + 1) * H, l * H:(l + 1) * H][iu].mean() for l in range(D.shape[0] // H)])


def within_between(distances: np.ndarray, n_head: int) -> tuple[float, float]:
    """Mean JS between heads of the same layer (off the diagonal) and between heads of different layers."""
    D = np.asarray(distances, dtype=np.float64)
    H = checks.positive_int("n_head", n_head)
    L = D.shape[0] // H
    same = np.kron(np.eye(L), np.ones((H, H))).astype(bool)
    return float(D[same & ~np.eye(L * H, dtype=bool)].mean()), float(D[~same].mean())


# -- correlations over training, described ------------------------------------------------------------

def partial_correlation(x: Sequence[float], y: Sequence[float], covariates: np.ndarray) -> float:
    """Pearson r between the residuals of ``x`` and of ``y`` after a least-squares fit of each on an intercept
    and ``covariates`` ((n,) or (n, k)): their correlation with the covariates' linear part removed. NaN when a
    residual is constant (e.g. fewer than k + 3 points)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    Z = np.asarray(covariates, dtype=np.float64)
    Z = Z[:, None] if Z.ndim == 1 else Z
    if x.ndim != 1 or x.shape != y.shape or Z.ndim != 2 or Z.shape[0] != x.size:
        raise bad_argument(InvalidInputError, "x/y/covariates", "two (n,) series and (n,) or (n, k) covariates",
                           f"shapes {x.shape}, {y.shape}, {Z.shape}", raw=True)
    if not (np.isfinite(x).all() and np.isfinite(y).all() and np.isfinite(Z).all()):
        raise bad_argument(InvalidInputError, "x/y/covariates", "finite values", "NaN or inf", raw=True)
    A = np.column_stack([np.ones(x.size), Z])
    if x.size < A.shape[1] + 2:
        return math.nan
    rx = x - A @ np.linalg.lstsq(A, x, rcond=None)[0]
    ry = y - A @ np.linalg.lstsq(A, y, rcond=None)[0]
    sx, sy = np.linalg.norm(rx - rx.mean()), np.linalg.norm(ry - ry.mean())
    if sx < 1e-12 * max(1.0, np.linalg.norm(x)) or sy < 1e-12 * max(1.0, np.linalg.norm(y)):
        return math.nan
    return float(np.dot(rx - rx.mean(), ry - ry.mean()) / (sx * sy))


def partial_correlations(results: Sequence, metrics_: Sequence[str] = ("entropy", "span", "diversity", "previous_token", "sink"),
                         targets: Sequence[str] = ("val_loss", "coherence", "repetition")) -> pd.DataFrame:
    """Per corpus, attention statistic (mean over layers and heads) and target (validation loss, coherence,
    repetition at the same snapshot): the Pearson r over the snapshots of the corpus's runs (pooled over seeds)
    and the **partial** r controlling for training step (residuals on step and log(1 + step) and one intercept
    per run), with the number of snapshots. Descriptions: the snapshots of one run are not independent."""
    from .analysis import _aligned, by_dataset

    rows = []
    for dataset, runs in by_dataset(results).items():
        cols: dict[str, list[float]] = {}
        steps, run_ids = [], []
        for i, r in enumerate(runs):
            snap, ev = _aligned(r)
            steps.extend(np.asarray(r.steps)[snap])
            run_ids.extend([i] * len(snap))
            cols.setdefault("val_loss", []).extend(np.asarray(r.history.val_loss)[ev])
            for q in ("coherence", "repetition"):
                cols.setdefault(q, []).extend(r.samples[k][q] for k in snap)
            for m in metrics_:
                cols.setdefault(m, []).extend(np.nanmean(r.snapshots[m][snap].reshape(len(snap), -1), axis=1))
        step = np.asarray(steps, dtype=np.float64)
        dummies = np.eye(len(runs))[np.asarray(run_ids)][:, 1:]
        Z = np.column_stack([step, np.log1p(step), dummies])
        for m in metrics_:
            for t in targets:
                x, y = np.asarray(cols[m], dtype=np.float64), np.asarray(cols[t], dtype=np.float64)
                keep = np.isfinite(x) & np.isfinite(y)
                raw = float(np.corrcoef(x[keep], y[keep])[0, 1]) if keep.sum() > 2 and np.ptp(x[keep]) > 0 and np.ptp(y[keep]) > 0 else math.nan
                rows.append({"dataset": dataset, "metric": m, "against": t, "pearson": raw,
                             "partial_given_step": partial_correlation(x[keep], y[keep], Z[keep]), "n": int(keep.sum()),
                             "kind": "description"})
    return pd.DataFrame(rows, columns=["dataset", "metric", "against", "pearson", "partial_given_step", "n", "kind"])


def partial_reading(table: pd.DataFrame, metric: str, against: str) -> str:
    """``"<corpus>: r=…, partial r=…"`` per corpus from :func:`partial_correlations` ("none" without rows)."""
    from ..claims import fmt

    rows = table[(table.metric == metric) & (table.against == against)]
    return ", ".join(f"{d}: r={fmt(float(a))}, given the step r={fmt(float(b))}"
                     for d, a, b in zip(rows.dataset, rows.pearson, rows.partial_given_step)) or "none"
