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
           "chapter_checks", "forecast_findings", "period_reading", "acf_reading", "seed_answers", "seed_findings"]

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
    out = window.copy()
    truth = run.data.series.truth
    if run.name == "JumpDiffusion":
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
            "norm_entropy": float(metrics.entropy(maps, normalized=True).nanmean()),
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
    """The six questions' measurements on the untrained networks (each run's initial weights, same
    windows): ``spikes``, ``persist``, ``turb``, ``regime``, ``stat`` and ``peaks``, as the trained
    ones are measured in the chapter — the findings' controls."""
    first = {name: seeds[0] for name, seeds in runs.items()}
    return {"spikes": {g: spike_preference(first[g], untrained=True) for g in SPIKE_KEYS},
            "persist": persistence(runs, untrained=True),
            "turb": turbulence(first["GARCH11"], untrained=True),
            "regime": regime_recovery(first["RegimeSwitching"], untrained=True),
            "stat": stationarity_test(family_table(runs, untrained=True)),
            "peaks": {g: lag_peak(r.untrained_maps) for g, r in first.items()}}


def _lowest_spike_ratio(spikes: Mapping[str, dict]) -> float:
    over = [v["preference"] / v["control"] for v in spikes.values() if v["windows"]]
    return float(min(over)) if over else float("nan")


def _lag_peak_values(peaks: Mapping[str, dict], periods: Mapping[str, Sequence[int]]) -> dict[str, float]:
    return {"largest peak distance (lags)": max(period_distance(peaks[g]["lag"], periods[g]) for g in SEASONAL),
            "prominence − noise max": min(peaks[g]["prominence"] for g in SEASONAL) - max(peaks[g]["prominence"] for g in NOISE)}


def question_findings(*, spikes: Mapping[str, dict], persist: dict, turb: dict, regime: dict, stat: dict, peaks: Mapping[str, dict],
                      untrained: Mapping[str, Any], periods: Mapping[str, Sequence[int]], profile: str) -> list[Finding]:
    """The six questions as their registered findings, each measured on the trained forecasters and
    on ``untrained`` (:func:`untrained_answers`, the control):

    1. ``spikes``: the lowest, over the spiky processes with spike windows, of preference ÷ its spikes-removed value;
    2. ``persistence``: the random walk's recency minus GARCH's (one training seed's forecasters: ``persist``
       from :func:`persistence` on one run each);
    3. ``turbulence``: entropy of turbulent minus calm GARCH windows, and the Mann–Whitney p;
    4. ``regime-switch``: the post-switch share ratio for recent switches;
    5. ``non-stationary-recency``: the one-sided Mann–Whitney p of non-stationary over stationary recency;
    6. ``seasonal-lag-peaks``: the seasonal peaks' largest distance to a true period and their lowest
       prominence minus the noise processes' highest; with ``profile`` "full" also
       ``multiseasonality-period-peak``: MultiSeasonality's peak distance to a true period.
    """
    u = untrained
    spiky = ", ".join(f"{g} {fmt(v['preference'])} ÷ {fmt(v['control'])}" for g, v in spikes.items() if v["windows"])
    found = [
        spec(_KEY + "spikes").result(_lowest_spike_ratio(spikes), _lowest_spike_ratio(u["spikes"]),
                                     detail=f"preference ÷ spikes removed: {spiky or 'no spike windows'}",
                                     inconclusive="" if spiky else "no validation window holds a spike"),
        spec(_KEY + "persistence").result(persist["separation"], u["persist"]["separation"],
                                          detail=f"recency: walk {fmt(persist['walk_mean'])}, GARCH {fmt(persist['noise_mean'])}"),
        spec(_KEY + "turbulence").result(
            {"entropy turbulent − calm": turb["entropy_turbulent"] - turb["entropy_calm"], "Mann-Whitney p": turb["p_value"]},
            {"entropy turbulent − calm": u["turb"]["entropy_turbulent"] - u["turb"]["entropy_calm"], "Mann-Whitney p": u["turb"]["p_value"]},
            detail=f"entropy {fmt(turb['entropy_turbulent'])} (top volatility quartile) against {fmt(turb['entropy_calm'])} (bottom)"),
        spec(_KEY + "regime-switch").result(regime["ratio_recent_switch"], u["regime"]["ratio_recent_switch"],
                                            detail=f"{regime['windows']} windows with a switch"),
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
    trained = float(np.mean([float(metrics.entropy(r.maps, normalized=True).nanmean()) for r in first.values()]))
    untrained = float(np.mean([float(metrics.entropy(r.untrained_maps, normalized=True).nanmean()) for r in first.values()]))
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


def forecast_findings(values: Mapping[str, float]) -> list[Finding]:
    """The forecasters against the naive baselines (:func:`chapter_values`): ``beats-baselines-seasonal``
    (the worse of the two seasonal MSE ratios; control the baseline itself, ratio 1) and
    ``beats-baselines-most`` (processes beaten; control the untrained forecasters' count)."""
    ratios = {"SeasonTrendOutliers": values["ratio_sto"], "MultiSeasonality": values["ratio_ms"]}
    return [spec(_KEY + "beats-baselines-seasonal").result(max(ratios.values()), 1.0,
                                                           detail=", ".join(f"{g} {fmt(r)}" for g, r in ratios.items())),
            spec(_KEY + "beats-baselines-most").result(float(values["n_beat"]), float(values["n_beat_untrained"]),
                                                       detail=f"{values['n_beat']} of {values['processes']} processes")]


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

def seed_answers(one: Mapping[str, GeneratorRun]) -> dict[str, Any]:
    """Every measurement of one training seed's nine forecasters (``one``: generator → run), as the
    chapter reads them: ``values`` (:func:`chapter_values`), ``spikes``, ``persist``, ``turb``,
    ``regime``, ``stat`` (with its ``rows``), ``peaks`` and the ``untrained`` answers (the controls),
    and ``periods``. The evaluation windows are the same for every seed (the ablations:
    :func:`attnbook.timeseries.causal.causal_section`)."""
    lists = {g: [r] for g, r in one.items()}
    rows = family_table(lists)
    return {
        "values": chapter_values(one),
        "spikes": {g: spike_preference(one[g]) for g in SPIKE_KEYS},
        "persist": persistence(lists),
        "turb": turbulence(one["GARCH11"]),
        "regime": regime_recovery(one["RegimeSwitching"]),
        "rows": rows,
        "stat": stationarity_test(rows),
        "peaks": {g: lag_peak(r.maps) for g, r in one.items()},
        "untrained": untrained_answers(lists),
        "periods": {g: tuple(r.data.series.truth.get("periods", ())) for g, r in one.items()},
    }


def seed_findings(answers: Mapping[str, Any], profile: str, causal: Sequence[Finding] = ()) -> list[Finding]:
    """One training seed's findings from its :func:`seed_answers`: the forecasters against the naive
    baselines, the six questions against the untrained networks, and ``causal`` (the seed's pooled
    causal findings, :meth:`attnbook.timeseries.causal.PooledFamily.findings`)."""
    a = answers
    found = forecast_findings(a["values"])
    found += question_findings(spikes=a["spikes"], persist=a["persist"], turb=a["turb"], regime=a["regime"], stat=a["stat"],
                               peaks=a["peaks"], untrained=a["untrained"], periods=a["periods"], profile=profile)
    return found + list(causal)
