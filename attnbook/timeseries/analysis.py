"""The seed study's six questions, each turned into a measurement with a control; the chapter's
checks and findings.

The measurements return plain numbers, for the trained forecasters and (``untrained=True``) for the
same networks at their initial weights, so the chapter can print them, glue them into prose and
store them in ``summary.json``. The findings (:mod:`attnbook.registry`, ``distribution-effects/…``)
test each measurement on the trained forecasters against its control — usually the untrained
networks, measured the same way. Attention averages are over layers, heads and the recorded
validation windows unless a docstring says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy.stats import mannwhitneyu

from .. import metrics
from ..claims import Check, Finding, fmt
from ..maps import AttentionMaps
from ..registry import spec
from .experiment import GeneratorRun, attention
from .experiment import untrained as untrained_model
from .windows import normalise

__all__ = ["SPIKE_KEYS", "STATIONARY", "NON_STATIONARY", "SEASONAL", "NOISE", "MIN_LAG", "spike_preference", "recency", "persistence",
           "turbulence", "regime_recovery", "family_table", "stationarity_test", "lag_peak", "near_period", "period_distance",
           "untrained_answers", "question_findings", "autocorrelation_rank", "profile_period", "chapter_values",
           "chapter_checks", "forecast_findings", "period_reading", "acf_reading", "seed_answers", "seed_findings", "QUESTION_SEED",
           "fresh_units", "spike_units", "spike_preference_fresh", "remove_spikes", "mean_entropy", "persistence_fresh", "turbulence_fresh", "fresh_answers", "linear_ars"]

_KEY = "distribution-effects/"

SPIKE_KEYS = {"HeavyTailedAR1": "spikes", "JumpDiffusion": "jumps", "SeasonTrendOutliers": "outliers"}
STATIONARY = ("HeavyTailedAR1", "GARCH11", "MultiSeasonality", "OneOverFNoise")
NON_STATIONARY = ("JumpDiffusion", "RegimeSwitching", "TrendBreaks", "RandomWalk", "SeasonTrendOutliers")
SEASONAL = ("SeasonTrendOutliers", "MultiSeasonality")
NOISE = ("HeavyTailedAR1", "GARCH11", "OneOverFNoise")
MIN_LAG = 3  # lags 0-2 are locality, present in every trained head


def _windows_with(run: GeneratorRun, positions: np.ndarray, limit: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Validation windows (indices) whose input contains any of ``positions``, and those keys."""
    K = run.data.raw_val_inputs.shape[1]
    chosen, keys = [], []
    for i, start in enumerate(run.data.val_starts):
        inside = positions[(positions >= start) & (positions < start + K)] - start
        if 0 < len(inside) < K:
            chosen.append(i)
            keys.append(inside)
        if len(chosen) == limit:
            break
    return np.array(chosen, dtype=int), keys


def _remove_spikes(run: GeneratorRun, window: np.ndarray, start: int, keys: np.ndarray) -> np.ndarray:
    """The window with its spikes taken out: a jump's level shift undone, an outlier or a
    heavy-tailed shock replaced by the mean of its neighbours."""
    return remove_spikes(run.name, run.data.series.truth, window, start, keys)


def remove_spikes(name: str, truth: Mapping[str, Any], window: np.ndarray, start: int, keys: np.ndarray) -> np.ndarray:
    """``window`` (starting at series step ``start``) of a ``name`` series with ``truth``, its spikes
    at ``keys`` taken out: a jump's level shift undone, an outlier or a heavy-tailed shock replaced by
    the mean of its neighbours."""
    out = window.copy()
    if name == "JumpDiffusion":
        sizes = dict(zip(truth["jumps"].tolist(), truth["jump_sizes"].tolist()))
        for k in keys:
            out[k:] -= sizes[int(start + k)]
        return out
    for k in keys:
        left = out[k - 1] if k > 0 else out[k + 1]
        right = out[k + 1] if k + 1 < len(out) else out[k - 1]
        out[k] = 0.5 * (left + right)
    return out


def spike_preference(run: GeneratorRun, limit: int = 64, *, untrained: bool = False) -> dict[str, float]:
    """Q1: attention mass on spike keys over their share of keys (1 = no preference), for the
    model on windows with spikes and, as control, on the same windows with the spikes removed;
    ``untrained``: the same network at its initial weights."""
    model = untrained_model(run.config) if untrained else run.model
    positions = np.asarray(run.data.series.truth[SPIKE_KEYS[run.name]])
    idx, keys = _windows_with(run, positions, limit)
    if len(idx) == 0:
        return {"windows": 0, "preference": float("nan"), "control": float("nan")}
    raw = run.data.raw_val_inputs[idx]
    clean = np.stack([_remove_spikes(run, w, int(run.data.val_starts[i]), k) for w, i, k in zip(raw, idx, keys)])
    K = raw.shape[1]
    onehot = torch.zeros(len(idx), K)
    for row, k in enumerate(keys):
        onehot[row, k] = 1.0
    share = onehot.sum(1) / K  # (windows,)

    def preference(windows: np.ndarray) -> float:
        w = attention(model, torch.tensor(normalise(windows)[0], dtype=torch.float32))
        mass = (w * onehot[None, :, None, None, :]).sum(-1).mean(dim=(0, 2, 3))  # per window
        return float((mass / share).mean())

    return {"windows": int(len(idx)), "preference": preference(raw), "control": preference(clean)}


_ENTROPY: dict[int, tuple[AttentionMaps, float]] = {}


def mean_entropy(maps: AttentionMaps) -> float:
    """The mean normalised entropy of ``maps`` (:func:`attnbook.metrics.entropy`), computed once per
    maps object (the checks, Q5's table and the chapter's values all read it)."""
    hit = _ENTROPY.get(id(maps))
    if hit is None or hit[0] is not maps:
        hit = _ENTROPY[id(maps)] = (maps, float(metrics.entropy(maps, normalized=True).nanmean()))
    return hit[1]


def spike_units(generator: str, n_series: int, seed: int | None = None, input_len: int = 100, limit: int = 64) -> dict[str, Any]:
    """Q1's independent units: the first input window of fresh ``generator`` series (series ``i`` from
    ``seed + i``, default :data:`QUESTION_SEED`) that holds a spike (a key of ``SPIKE_KEYS[generator]``
    in the window, not every key), at most ``limit`` of the ``n_series`` drawn: ``raw`` and ``clean``
    (the same windows with the spikes removed, :func:`remove_spikes`), both normalised as in training,
    the spike ``keys`` of each, and the ``seeds``."""
    from .data import make

    seed = QUESTION_SEED if seed is None else seed
    raw, clean, keys, seeds = [], [], [], []
    for i in range(n_series):
        series = make(generator).generate(max(input_len + 20, 200), seed + i)
        positions = np.asarray(series.truth[SPIKE_KEYS[generator]])
        inside = positions[positions < input_len]
        if 0 < len(inside) < input_len:
            window = series.values[:input_len]
            raw.append(window)
            clean.append(remove_spikes(generator, series.truth, window, 0, inside))
            keys.append(inside)
            seeds.append(seed + i)
        if len(raw) == limit:
            break
    return {"raw": normalise(np.stack(raw))[0] if raw else np.zeros((0, input_len)),
            "clean": normalise(np.stack(clean))[0] if clean else np.zeros((0, input_len)), "keys": keys, "seeds": seeds}


def spike_preference_fresh(model: torch.nn.Module, units: Mapping[str, Any]) -> dict[str, float]:
    """Q1 on independent series (:func:`spike_units`): per window the attention mass on its spike keys
    ÷ their share of keys (mean over layers, heads and queries), on the windows with spikes
    (``preference``, the mean over windows) and with them removed (``control``); ``low``/``high``: the
    bootstrap interval over the series of ``preference ÷ control``."""
    from .controls import ratio_interval

    n = len(units["keys"])
    if n < 2:
        return {"windows": n, "preference": float("nan"), "control": float("nan"), "low": float("nan"), "high": float("nan")}
    K = units["raw"].shape[1]
    onehot = torch.zeros(n, K)
    for row, k in enumerate(units["keys"]):
        onehot[row, k] = 1.0
    share = onehot.sum(1) / K

    def per_window(x: np.ndarray) -> np.ndarray:
        w = attention(model, torch.tensor(x, dtype=torch.float32))
        return ((w * onehot[None, :, None, None, :]).sum(-1).mean(dim=(0, 2, 3)) / share).double().numpy()

    raw, clean = per_window(units["raw"]), per_window(units["clean"])
    low, high = ratio_interval(raw, clean)
    return {"windows": n, "preference": float(raw.mean()), "control": float(clean.mean()), "low": low, "high": high}


def _maps(run: GeneratorRun, untrained: bool) -> AttentionMaps:
    return run.untrained_maps if untrained else run.maps


def recency(run: GeneratorRun, *, untrained: bool = False) -> float:
    """Q2/Q5: recency ratio (last 25% of keys over first 25%), averaged over layers, heads, windows
    (``untrained``: of the network at its initial weights)."""
    return float(metrics.recency_ratio(_maps(run, untrained)).nanmean())


def persistence(runs: Mapping[str, Sequence[GeneratorRun]], walk: str = "RandomWalk", noise: str = "GARCH11", *,
                untrained: bool = False) -> dict[str, float]:
    """Q2: recency of the random walk vs a white-noise-like series across seeds, and the walk's
    forecast error relative to the last-value baseline (``untrained``: the networks at their
    initial weights, their error the validation loss at step 0)."""
    a = [recency(r, untrained=untrained) for r in runs[walk]]
    b = [recency(r, untrained=untrained) for r in runs[noise]]
    first = runs[walk][0]
    error = first.history.val_loss[0] if untrained else first.mse
    return {
        "walk_mean": float(np.mean(a)), "walk_min": float(np.min(a)), "walk_max": float(np.max(a)),
        "noise_mean": float(np.mean(b)), "noise_min": float(np.min(b)), "noise_max": float(np.max(b)),
        "separation": float(np.min(a) - np.max(b)), "seeds": len(a),
        "walk_vs_last_value": error / first.baselines["last value"],
    }


def turbulence(run: GeneratorRun, *, untrained: bool = False) -> dict[str, float]:
    """Q3: normalised entropy of windows in the top vs bottom quartile of realised volatility
    (the generator's true σ_t averaged over each window), with a two-sided Mann–Whitney test
    (``untrained``: the network at its initial weights, same windows)."""
    maps = _maps(run, untrained)
    n = maps.batch_size
    vol = np.array([run.data.series.truth["volatility"][s : s + maps.n_keys].mean() for s in run.data.val_starts[:n]])
    ent = metrics.entropy(maps, normalized=True).mean(dim=(0, 2)).numpy()  # per window
    lo, hi = np.quantile(vol, [0.25, 0.75])
    top, bottom = ent[vol >= hi], ent[vol <= lo]
    p = float(mannwhitneyu(top, bottom, alternative="two-sided").pvalue)
    return {"entropy_turbulent": float(top.mean()), "entropy_calm": float(bottom.mean()), "p_value": p, "windows": int(n)}


def regime_recovery(run: GeneratorRun, limit: int = 128, *, untrained: bool = False) -> dict:
    """Q4: for windows with a regime switch, the forecasting query's (last row's) attention share
    on post-switch keys over the post-switch share of keys, binned by steps since the switch
    (``untrained``: the network at its initial weights, same windows)."""
    switches = np.asarray(run.data.series.truth["switches"])
    idx, keys = _windows_with(run, switches, limit)
    K = run.data.raw_val_inputs.shape[1]
    last_switch = np.array([int(k.max()) for k in keys])
    model = untrained_model(run.config) if untrained else run.model
    w = attention(model, run.data.x_val[idx])[:, :, :, -1, :].mean(dim=(0, 2))  # (windows, K)
    post = torch.arange(K)[None, :] >= torch.tensor(last_switch)[:, None]
    ratio = ((w * post).sum(1) / (post.sum(1) / K)).numpy()
    since = K - last_switch
    bins = [(1, 10), (11, 25), (26, 50), (51, K - 1)]
    curve = [(f"{a}-{b}", float(ratio[(since >= a) & (since <= b)].mean()) if ((since >= a) & (since <= b)).any() else float("nan"),
              int(((since >= a) & (since <= b)).sum())) for a, b in bins]
    recent = ratio[since <= K // 2]
    return {"windows": int(len(idx)), "ratio_recent_switch": float(recent.mean()) if len(recent) else float("nan"), "curve": curve,
            "since": since.tolist(), "ratios": ratio.tolist()}


#: first generation seed of Q2's and Q3's fresh RandomWalk and GARCH series (series i: QUESTION_SEED + i)
QUESTION_SEED = 40_000


def fresh_units(n_series: int, fresh: Mapping[str, Any], input_len: int = 100) -> dict[str, Any]:
    """The independent units every seed's questions 2–4 and forecast comparisons read (the same for
    every training seed): ``switch`` (:func:`~attnbook.timeseries.controls.switch_windows`), ``pseudo``
    (:func:`~attnbook.timeseries.controls.pseudo_switch_windows`: the stationary twin's series with a
    pseudo-switch), ``walk`` and ``garch`` (the first window of ``n_series`` fresh RandomWalk and GARCH
    series, GARCH's with each window's mean true volatility ``garch_vol``) and ``fresh`` (the causal
    section's fresh series per process, :class:`~attnbook.timeseries.causal.FreshSeries`) and ``spikes``
    (per spiky process, :func:`spike_units` from ``n_series`` drawn)."""
    from . import controls as K

    garch, made = K.fresh_windows("GARCH11", n_series, QUESTION_SEED, input_len)
    return {"switch": K.switch_windows(n_series, input_len=input_len), "pseudo": K.pseudo_switch_windows(n_series, input_len=input_len),
            "walk": K.fresh_windows("RandomWalk", n_series, QUESTION_SEED, input_len)[0], "garch": garch,
            "garch_vol": np.array([s.truth["volatility"][:input_len].mean() for s in made]), "fresh": dict(fresh),
            "spikes": {g: spike_units(g, n_series, input_len=input_len) for g in SPIKE_KEYS}}


def persistence_fresh(walk: np.ndarray, noise: np.ndarray) -> dict[str, float]:
    """Q2 on independent series: the recency ratios (one per fresh series, :func:`~attnbook.timeseries.controls.window_recency`)
    of the random walk's forecaster on fresh walk windows (``walk``) and of GARCH's forecaster on fresh GARCH
    windows (``noise``): the difference of their means with its two-sample bootstrap interval."""
    from .controls import difference_interval

    walk, noise = np.asarray(walk, dtype=np.float64), np.asarray(noise, dtype=np.float64)
    low, high = difference_interval(walk, noise)
    return {"walk_mean": float(walk.mean()), "noise_mean": float(noise.mean()), "separation": float(walk.mean() - noise.mean()),
            "low": low, "high": high, "series": int(len(walk))}


def turbulence_fresh(entropy: np.ndarray, volatility: np.ndarray) -> dict[str, float]:
    """Q3 on independent series: the normalised entropy (one value per fresh GARCH series' window) of the
    windows in the top quartile of mean true ``volatility`` minus the bottom quartile's, the two-sided
    Mann–Whitney p and the two-sample bootstrap interval of the difference."""
    from .controls import difference_interval

    ent, vol = np.asarray(entropy, dtype=np.float64), np.asarray(volatility, dtype=np.float64)
    lo, hi = np.quantile(vol, [0.25, 0.75])
    top, bottom = ent[vol >= hi], ent[vol <= lo]
    low, high = difference_interval(top, bottom)
    return {"entropy_turbulent": float(top.mean()), "entropy_calm": float(bottom.mean()),
            "p_value": float(mannwhitneyu(top, bottom, alternative="two-sided").pvalue), "low": low, "high": high,
            "windows": int(len(top) + len(bottom))}


def fresh_answers(one: Mapping[str, GeneratorRun], twin: torch.nn.Module, units: Mapping[str, Any],
                  ars: Mapping[str, Any]) -> dict[str, Any]:
    """One training seed's measurements on independent series (issue 31): ``comparison`` (per process,
    :func:`~attnbook.timeseries.controls.forecast_comparison` of the forecaster and the linear AR
    ``ars[g]`` against the best naive baseline on the fresh series), ``persist`` and ``turb`` (fresh Q2,
    Q3; one captured forward of the GARCH windows serves both), ``regime`` (Q4 on the fresh switch
    windows), ``pseudo`` (Q4's measure of the stationary twin's forecaster ``twin`` at the
    pseudo-switches of its own fresh series; ``pseudo_own``: RegimeSwitching's own forecaster at the same
    pseudo-switches, shown beside it, not a rule), ``spikes`` (Q1, :func:`spike_preference_fresh`) and
    ``untrained`` (Q1, Q2, Q3 of the initial weights)."""
    from . import controls as K

    comparison = {}
    for g, run in one.items():
        fresh = units["fresh"][g]
        periods = tuple(run.data.series.truth.get("periods", ()))
        comparison[g] = K.forecast_comparison(K.model_units(run.model, fresh), K.baseline_units(fresh, periods, ars[g]))
    walk, garch = one["RandomWalk"], one["GARCH11"]

    def q2_q3(walk_model, garch_model):
        garch_maps = K.window_maps(garch_model, units["garch"])
        return (persistence_fresh(K.window_recency(K.window_maps(walk_model, units["walk"])), K.window_recency(garch_maps)),
                turbulence_fresh(K.window_entropy(garch_maps), units["garch_vol"]))

    persist, turb = q2_q3(walk.model, garch.model)
    u_persist, u_turb = q2_q3(untrained_model(walk.config), untrained_model(garch.config))
    spikes = {g: spike_preference_fresh(one[g].model, units["spikes"][g]) for g in SPIKE_KEYS}
    u_spikes = {g: spike_preference_fresh(untrained_model(one[g].config), units["spikes"][g]) for g in SPIKE_KEYS}
    return {"comparison": comparison, "persist": persist, "turb": turb, "spikes": spikes,
            "regime": K.post_switch_units(one["RegimeSwitching"].model, units["switch"]), "pseudo": K.post_switch_units(twin, units["pseudo"]),
            "pseudo_own": K.post_switch_units(one["RegimeSwitching"].model, units["pseudo"]),
            "untrained": {"persist": u_persist, "turb": u_turb, "spikes": u_spikes}}


def linear_ars(one: Mapping[str, GeneratorRun]) -> dict[str, Any]:
    """The linear AR baseline of every process, fitted on its run's normalised training windows (the
    same for every training seed: the data do not move with the seed)."""
    from .controls import LinearAR

    return {g: LinearAR.fit(r.data.x_train.double().numpy(), r.data.y_train.double().numpy()) for g, r in one.items()}


def family_table(runs: Mapping[str, Sequence[GeneratorRun]], *, untrained: bool = False) -> list[dict]:
    """Q5: per generator (its first run in ``runs``) normalised entropy, recency and diagonal-band strength
    (``untrained``: of the networks at their initial weights)."""
    rows = []
    for name, seeds in runs.items():
        r = seeds[0]
        maps = _maps(r, untrained)
        rows.append({
            "generator": name, "family": r.data.series.family,
            "stationary": name in STATIONARY,
            "norm_entropy": mean_entropy(maps),
            "recency": recency(r, untrained=untrained),
            "diagonal": float(metrics.diagonal_band_mass(maps, width=1).nanmean()),
        })
    return rows


def stationarity_test(rows: Sequence[dict], key: str = "recency") -> dict[str, float]:
    """Q5: one-sided Mann–Whitney test that non-stationary generators score higher on ``key``."""
    a = [r[key] for r in rows if r["generator"] in NON_STATIONARY]
    b = [r[key] for r in rows if r["generator"] in STATIONARY]
    return {"non_stationary": float(np.mean(a)), "stationary": float(np.mean(b)),
            "p_value": float(mannwhitneyu(a, b, alternative="greater").pvalue)}


def lag_peak(maps, max_lag: int | None = None) -> dict:
    """Q6: the head with the most prominent lag-profile peak in lags ``MIN_LAG … max_lag``
    (default half the window, so every lag averages at least half the queries).

    Prominence = peak value / median of the profile over that range (1 = flat).
    """
    max_lag = max_lag or maps.n_keys // 2
    profile = metrics.lag_profile(maps, max_lag=max_lag).nanmean(1)[..., MIN_LAG:]  # (L, H, lags)
    prominence = profile.amax(-1) / profile.median(-1).values
    layer, head = divmod(int(prominence.argmax()), maps.n_heads)
    return {"layer": layer, "head": head, "lag": int(profile[layer, head].argmax()) + MIN_LAG,
            "prominence": float(prominence.max()), "profile": profile[layer, head].tolist()}


def near_period(lag: int, periods: Sequence[int], tolerance: int = 2) -> bool:
    return any(abs(lag - p) <= tolerance for p in periods)


def period_distance(lag: int, periods: Sequence[int]) -> float:
    """Lags between ``lag`` and the nearest of ``periods`` (inf without periods)."""
    return float(min((abs(lag - p) for p in periods), default=float("inf")))


def untrained_answers(runs: Mapping[str, Sequence[GeneratorRun]]) -> dict[str, Any]:
    """Questions 5 and 6 measured on the untrained networks (each run's initial weights, same
    windows): ``stat`` and ``peaks``, as the trained ones are measured in the chapter — those
    findings' controls (Q1–Q3's untrained controls are measured on the fresh series,
    :func:`fresh_answers`; Q4's control is the stationary twin)."""
    first = {name: seeds[0] for name, seeds in runs.items()}
    return {"stat": stationarity_test(family_table(runs, untrained=True)),
            "peaks": {g: lag_peak(r.untrained_maps) for g, r in first.items()}}


def _unless_control_passes(key: str, control: Mapping[str, float] | float, reason: str) -> str:
    """``reason`` (a not-decided reason), dropped when the control itself meets the finding's rule: the
    verdict is then "not supported" whatever the model's uncertain value."""
    spec_ = spec(_KEY + key)
    values = control if isinstance(control, Mapping) else {spec_.rule.measures[0]: control}
    return "" if spec_.rule.passes(values) else reason


def _spike_undecided(spikes: Mapping[str, dict]) -> str:
    """Q1 is not decided when the deciding (lowest) process's interval of preference ÷ spikes removed holds 1.5."""
    from .controls import undecided

    lowest = min((g for g, v in spikes.items() if v["windows"]), key=lambda g: spikes[g]["preference"] / spikes[g]["control"])
    v = spikes[lowest]
    if "low" not in v:
        return ""
    return undecided(v["low"], v["high"], 1.5, f"{lowest} preference ratio")


def _lowest_spike_ratio(spikes: Mapping[str, dict]) -> float:
    over = [v["preference"] / v["control"] for v in spikes.values() if v["windows"]]
    return float(min(over)) if over else float("nan")


def _lag_peak_values(peaks: Mapping[str, dict], periods: Mapping[str, Sequence[int]]) -> dict[str, float]:
    return {"largest peak distance (lags)": max(period_distance(peaks[g]["lag"], periods[g]) for g in SEASONAL),
            "prominence − noise max": min(peaks[g]["prominence"] for g in SEASONAL) - max(peaks[g]["prominence"] for g in NOISE)}


def question_findings(*, spikes: Mapping[str, dict], persist: dict, turb: dict, regime: dict, stat: dict, peaks: Mapping[str, dict],
                      untrained: Mapping[str, Any], periods: Mapping[str, Sequence[int]], profile: str, pseudo: dict) -> list[Finding]:
    """The six questions as their registered findings, each measured on the trained forecasters and
    on ``untrained`` (:func:`untrained_answers`, the control):

    1. ``spikes``: the lowest, over the spiky processes with spike windows (fresh series,
       :func:`spike_preference_fresh`), of preference ÷ its spikes-removed value; not decided when the
       deciding process's interval holds 1.5;
    2. ``persistence``: the random walk's recency minus GARCH's on fresh series (:func:`persistence_fresh`);
       not decided when the difference's interval holds 0;
    3. ``turbulence``: entropy of turbulent minus calm fresh GARCH windows (:func:`turbulence_fresh`), and
       the Mann–Whitney p; not decided when the difference's interval holds 0;
    4. ``regime-switch``: the mean post-switch share ratio over fresh series with a recent switch
       (``regime``), its control ``pseudo`` — the stationary twin's forecaster at pseudo-switches of its
       own fresh series, same measure; not decided when the ratio's interval holds 1;
    5. ``non-stationary-recency``: the one-sided Mann–Whitney p of non-stationary over stationary recency;
    6. ``seasonal-lag-peaks``: the seasonal peaks' largest distance to a true period and their lowest
       prominence minus the noise processes' highest; with ``profile`` "full" also
       ``multiseasonality-period-peak``: MultiSeasonality's peak distance to a true period.
    """
    from .controls import undecided

    u = untrained
    spiky = ", ".join(f"{g} {fmt(v['preference'])} ÷ {fmt(v['control'])}" for g, v in spikes.items() if v["windows"])
    found = [
        spec(_KEY + "spikes").result(_lowest_spike_ratio(spikes), _lowest_spike_ratio(u["spikes"]),
                                     detail=f"preference ÷ spikes removed: {spiky or 'no spike windows'}",
                                     inconclusive=_unless_control_passes("spikes", _lowest_spike_ratio(u["spikes"]), _spike_undecided(spikes))
                                     if spiky else "no window holds a spike"),
        spec(_KEY + "persistence").result(persist["separation"], u["persist"]["separation"],
                                          detail=f"recency: walk {fmt(persist['walk_mean'])}, GARCH {fmt(persist['noise_mean'])}; "
                                                 f"difference [{fmt(persist['low'])}, {fmt(persist['high'])}] over fresh series",
                                          inconclusive=_unless_control_passes("persistence", u["persist"]["separation"],
                                                                              undecided(persist["low"], persist["high"], 0.0, "walk − GARCH recency"))),
        spec(_KEY + "turbulence").result(
            {"entropy turbulent − calm": turb["entropy_turbulent"] - turb["entropy_calm"], "Mann-Whitney p": turb["p_value"]},
            {"entropy turbulent − calm": u["turb"]["entropy_turbulent"] - u["turb"]["entropy_calm"], "Mann-Whitney p": u["turb"]["p_value"]},
            detail=f"entropy {fmt(turb['entropy_turbulent'])} (top volatility quartile) against {fmt(turb['entropy_calm'])} (bottom); "
                   f"difference [{fmt(turb['low'])}, {fmt(turb['high'])}] over fresh series",
            inconclusive=_unless_control_passes("turbulence", {"entropy turbulent − calm": u["turb"]["entropy_turbulent"] - u["turb"]["entropy_calm"],
                                                               "Mann-Whitney p": u["turb"]["p_value"]},
                                                undecided(turb["low"], turb["high"], 0.0, "entropy difference"))),
        spec(_KEY + "regime-switch").result(regime["ratio"], pseudo["ratio"],
                                            detail=f"{regime['series']} fresh series with a switch: {fmt(regime['ratio'])} "
                                                   f"[{fmt(regime['low'])}, {fmt(regime['high'])}]; stationary twin at pseudo-switches "
                                                   f"({pseudo['series']} series): {fmt(pseudo['ratio'])} [{fmt(pseudo['low'])}, {fmt(pseudo['high'])}]",
                                            inconclusive=_unless_control_passes("regime-switch", pseudo["ratio"],
                                                                                undecided(regime["low"], regime["high"], 1.0, "post-switch ratio"))),
        spec(_KEY + "non-stationary-recency").result(stat["p_value"], u["stat"]["p_value"],
                                                     detail=f"recency {fmt(stat['non_stationary'])} (non-stationary) against "
                                                            f"{fmt(stat['stationary'])} (stationary)"),
        spec(_KEY + "seasonal-lag-peaks").result(
            _lag_peak_values(peaks, periods), _lag_peak_values(u["peaks"], periods),
            detail=", ".join(f"{g}: lag {peaks[g]['lag']} ({fmt(peaks[g]['prominence'])})" for g in SEASONAL)
            + f"; noise max {fmt(max(peaks[g]['prominence'] for g in NOISE))}"),
    ]
    full = spec(_KEY + "multiseasonality-period-peak")
    if profile in full.profiles:
        found.append(full.result(period_distance(peaks["MultiSeasonality"]["lag"], periods["MultiSeasonality"]), period_distance(u["peaks"]["MultiSeasonality"]["lag"], periods["MultiSeasonality"]),
                                 detail=f"lag {peaks['MultiSeasonality']['lag']}; true periods "
                                        + ", ".join(map(str, periods["MultiSeasonality"]))))
    return found


def autocorrelation_rank(values: np.ndarray, lag: int, max_lag: int, min_lag: int = MIN_LAG) -> dict[str, float]:
    """Sample autocorrelation ``ρ(lag)`` of a series and the rank of ``|ρ(lag)|`` among lags
    ``min_lag … max_lag`` (1 = the lag where the series most resembles, or mirrors, itself)."""
    x = np.asarray(values, dtype=np.float64) - np.mean(values)
    denom = float(np.dot(x, x))
    rho = np.array([np.dot(x[:-k], x[k:]) / denom for k in range(min_lag, max_lag + 1)])
    order = np.argsort(-np.abs(rho))
    rank = int(np.where(order == lag - min_lag)[0][0]) + 1
    return {"rho": float(rho[lag - min_lag]), "rank": rank, "lags": len(rho)}


def profile_period(profile: Sequence[float], min_period: int = 4, max_period: int | None = None, pad: int = 10) -> float:
    """The dominant period (in lags) of a lag profile: the peak of the periodogram of the
    mean-removed profile, zero-padded ``pad``-fold for resolution, over periods
    ``min_period … max_period`` (default half the profile's length)."""
    x = np.asarray(profile, dtype=np.float64)
    x = x - x.mean()
    n = len(x) * pad
    power = np.abs(np.fft.rfft(x, n)) ** 2
    freq = np.fft.rfftfreq(n)
    max_period = max_period or len(x) // 2
    keep = (freq >= 1 / max_period) & (freq <= 1 / min_period)
    return float(1 / freq[keep][np.argmax(power[keep])])


def chapter_values(first: Mapping[str, GeneratorRun]) -> dict[str, float]:
    """The numbers the checks, the forecast findings and the prose quote, from one training seed's run
    per generator (``first``, generator → run): ``worst_fell`` (the largest best-val ÷ val-at-step-0), ``ratio_sto`` and
    ``ratio_ms`` (MSE ÷ best naive baseline on the two seasonal processes), ``n_beat`` (processes
    where the MSE is below the best baseline's, of ``processes``) and ``n_beat_untrained`` (the same for the
    validation loss at step 0, the untrained network), ``entropy_ratio`` (mean normalised
    entropy, trained ÷ untrained)."""
    ratio = {n: r.mse / r.best_baseline[1] for n, r in first.items()}
    trained = float(np.mean([mean_entropy(r.maps) for r in first.values()]))
    untrained = float(np.mean([mean_entropy(r.untrained_maps) for r in first.values()]))
    return {"worst_fell": max(r.history.best_val / r.history.val_loss[0] for r in first.values()),
            "ratio_sto": ratio["SeasonTrendOutliers"], "ratio_ms": ratio["MultiSeasonality"],
            "n_beat": sum(v < 1 for v in ratio.values()), "processes": len(first),
            "n_beat_untrained": sum(r.history.val_loss[0] < r.best_baseline[1] for r in first.values()),
            "entropy_ratio": trained / untrained}


def chapter_checks(values: Mapping[int, Mapping[str, float]], capture_change: float) -> list[Check]:
    """Chapter 2's checks — what the findings rely on, not findings — over every training seed
    (``values``: seed → :func:`chapter_values`): every forecaster trained (the largest ``worst_fell``),
    training changed the attention the questions read (the largest ``entropy_ratio``; any trained model
    passes), and capturing attention leaves the forecasts unchanged (``capture_change``, the largest
    difference)."""
    n = len(values)
    return [
        Check(f"worst best-val / val-at-step-0 over the nine forecasters of {n} seed(s)", max(v["worst_fell"] for v in values.values()),
              "<", 0.9),
        Check(f"mean normalised entropy, trained / untrained, the largest of {n} seed(s) (training changed attention)",
              max(v["entropy_ratio"] for v in values.values()), "<", 0.95),
        Check("capturing leaves the forecasts unchanged (max abs diff)", capture_change, "<", 1e-4),
    ]


def forecast_findings(comparison: Mapping[str, Mapping[str, Any]]) -> list[Finding]:
    """The forecasters against the baselines on the fresh series (per process
    :func:`~attnbook.timeseries.controls.forecast_comparison`), each with the linear AR fitted on the
    training windows as its control, measured the same way (issue 31):

    * ``beats-baselines-seasonal``: the larger over the two seasonal processes of the MSE ÷ the best
      naive baseline's (last value, window mean, seasonal naive at the known period); not decided when
      the deciding ratio's interval over the series holds 0.8;
    * ``beats-baselines-most``: the processes where the per-series difference to the best naive
      baseline has its whole interval below 0."""
    from .controls import undecided

    worst = lambda who: max(SEASONAL, key=lambda g: comparison[g][who]["ratio"])  # noqa: E731
    g = worst("forecaster")
    c = comparison[g]["forecaster"]
    seasonal = ", ".join(f"{h} {fmt(comparison[h]['forecaster']['ratio'])} [{fmt(comparison[h]['forecaster']['ratio_low'])}, "
                         f"{fmt(comparison[h]['forecaster']['ratio_high'])}] (linear AR {fmt(comparison[h]['linear AR']['ratio'])})"
                         for h in SEASONAL)
    beaten = [h for h, v in comparison.items() if v["forecaster"]["beats"]]
    ar_beaten = [h for h, v in comparison.items() if v["linear AR"]["beats"]]
    over_ar = ", ".join(f"{h} {fmt(v['forecaster ÷ linear AR'])}" for h, v in comparison.items())
    return [spec(_KEY + "beats-baselines-seasonal").result(
                c["ratio"], comparison[worst("linear AR")]["linear AR"]["ratio"],
                detail=f"MSE ÷ best naive on the fresh series: {seasonal}",
                inconclusive=_unless_control_passes("beats-baselines-seasonal", comparison[worst("linear AR")]["linear AR"]["ratio"],
                                                    undecided(c["ratio_low"], c["ratio_high"], 0.8, f"{g} MSE ratio"))),
            spec(_KEY + "beats-baselines-most").result(
                float(len(beaten)), float(len(ar_beaten)),
                detail=f"{len(beaten)} of {len(comparison)} processes (linear AR: {len(ar_beaten)}); forecaster ÷ linear AR: {over_ar}")]


def period_reading(trained_period: float, untrained_period: float) -> str:
    """Whether training changed the rhythm of the most peaked head's lag profile (periods within one step: no)."""
    if abs(trained_period - untrained_period) < 1:
        return "the same rhythm, so it comes with the data through content-based attention, not with training"
    return "a different rhythm, so training changed it"


def acf_reading(trained: dict, untrained: dict) -> str:
    """Whether each peak lag is among the five lags of largest absolute autocorrelation (ranks from :func:`autocorrelation_rank`)."""
    among = lambda acf: "among" if acf["rank"] <= 5 else "not among"  # noqa: E731
    return (f"the untrained peak is {among(untrained)} the five lags where the summed signal most resembles or mirrors itself, "
            f"the trained peak {among(trained)} them")


# -- does the model use it? -------------------------------------------------------------------------
# the ablations, their pooled test and its finding: attnbook.timeseries.causal


# -- one training seed's answers ----------------------------------------------------------------------

def seed_answers(one: Mapping[str, GeneratorRun], twin: torch.nn.Module, units: Mapping[str, Any], ars: Mapping[str, Any]) -> dict[str, Any]:
    """Every measurement of one training seed's nine forecasters (``one``: generator → run) and its
    stationary twin (``twin``), as the chapter reads them: ``values`` (:func:`chapter_values`, on the
    validation windows), ``rows``, ``stat`` and ``peaks`` (on the validation windows),
    ``spikes``, ``comparison``, ``persist``, ``turb``, ``regime`` and ``pseudo`` (on the fresh series ``units``,
    :func:`fresh_units`, with the linear ARs ``ars``: :func:`fresh_answers`), the ``untrained``
    answers and ``periods``."""
    lists = {g: [r] for g, r in one.items()}
    rows = family_table(lists)
    fresh = fresh_answers(one, twin, units, ars)
    return {
        "values": chapter_values(one),
        "spikes": fresh["spikes"],
        "comparison": fresh["comparison"],
        "persist": fresh["persist"],
        "turb": fresh["turb"],
        "regime": fresh["regime"],
        "pseudo": fresh["pseudo"],
        "pseudo_own": fresh["pseudo_own"],
        "rows": rows,
        "stat": stationarity_test(rows),
        "peaks": {g: lag_peak(r.maps) for g, r in one.items()},
        "untrained": untrained_answers(lists) | fresh["untrained"],
        "periods": {g: tuple(r.data.series.truth.get("periods", ())) for g, r in one.items()},
    }


def seed_findings(answers: Mapping[str, Any], profile: str, causal: Sequence[Finding] = ()) -> list[Finding]:
    """One training seed's findings from its :func:`seed_answers`: the forecasters against the
    baselines on the fresh series (control: the linear AR), the six questions against their controls,
    and ``causal`` (the seed's pooled causal findings, :meth:`attnbook.timeseries.causal.PooledFamily.findings`)."""
    a = answers
    found = forecast_findings(a["comparison"])
    found += question_findings(spikes=a["spikes"], persist=a["persist"], turb=a["turb"], regime=a["regime"], stat=a["stat"],
                               peaks=a["peaks"], untrained=a["untrained"], periods=a["periods"], profile=profile, pseudo=a["pseudo"])
    return found + list(causal)
