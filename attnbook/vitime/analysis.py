"""Chapter 3's checks and findings: what the measured lag contrasts, profile correlations, rollout
and forecasts say about the seed's statements, each against its control under the rule declared in
:mod:`attnbook.registry`; and the causal section (issue 30): do the period heads matter for the
harmonic? Ablating them is tested on pairs of random-phase series with and without ``sin(n/10)``
(:class:`HarmonicDamage`: the damage with the harmonic minus without, per pair) against head sets
of the same shape, heads chosen on a selection split and tested on a disjoint test split
(:func:`causal_section`).

A *contrast* is the attention at the input's period against the attention between its multiples
(:func:`~attnbook.vitime.lags.period_contrast`): 1 means no preference for the period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import checks
from ..capture import find_attention
from ..claims import Check, Finding, fmt
from ..errors import InvalidInputError, bad_argument
from ..intervene import HeadMeans
from ..registry import spec
from . import harmonics as hm
from . import lags

__all__ = ["attention_findings", "forecast_findings", "forecast_reading", "FLAT_PERCENT", "chapter_checks", "peak_error",
           "top_head_agreement", "SELECTION_SEED", "TEST_SEED", "PERIOD_HEADS_KEY", "DAMAGE_SCALE", "PairedSeries", "paired_series", "paired_images",
           "HarmonicDamage", "period_ranking", "period_heads", "reference_images", "CausalData", "causal_data", "CausalSection",
           "causal_section", "causal_frame", "causal_records", "strips"]


def attention_findings(*, best_contrast: float, peak_err: float, exp2_contrast: float, exp2_contrast_p31: float,
                       held_contrasts: Mapping[str, float], top_corr: float, rollout_contrast: float,
                       aperiodic: Mapping[str, Mapping[str, float]], all_corr: float | None = None,
                       random_best_contrast: float | None = None) -> list[Finding]:
    """The chapter's attention findings (:mod:`attnbook.registry`, ``vitime-harmonics/…``), each
    measured on the pretrained model and on its control. Since issue 31 every lag-peak finding's control
    is the same measure of the same head(s) on the aperiodic inputs (``aperiodic``, from
    :func:`attnbook.vitime.controls.aperiodic_measures`: ``{input: {measure: value}}``), the one of the three
    most favourable to the rule (:func:`attnbook.vitime.controls.strongest`):

    1. ``period-head``: experiment 1's best head, contrast ``best_contrast`` and ``peak_err``
       (:func:`peak_error`); control: the same head's contrast at 62.8 samples and peak error on the aperiodic inputs;
    2. ``period-head-vanishes``: the same head on experiment 2 (``exp2_contrast``); control: on experiment 1;
    3. ``follows-sin-n-5``: its contrast at 31.4 samples on experiment 2; control: the same, aperiodic;
    4. ``follows-held-out-periods``: the lowest of ``held_contrasts``; control: the lowest of its contrasts at
       the held-out periods on each aperiodic input;
    5. ``heads-share-profile``: the top-3 heads' mean r ``top_corr``; control: the same heads' mean r, aperiodic;
    6. ``rollout-keeps-period``: ``rollout_contrast``; control: the rollout's contrast, aperiodic.

    ``all_corr`` (every pair's mean r) and ``random_best_contrast`` (the random-init network's best head), the
    controls before issue 31, go into the details.
    """
    from .controls import strongest  # controls imports this module

    c = "vitime-harmonics/"
    names = ", ".join(aperiodic)

    def ctrl(key: str, measures: Mapping[str, str]) -> tuple[dict[str, float], str]:
        rule = spec(c + key).rule
        per_input = {n: {m: v[src] for m, src in measures.items()} for n, v in aperiodic.items()}
        text = "aperiodic (" + "; ".join(f"{n}: " + ", ".join(fmt(float(v[m])) for m in measures) for n, v in per_input.items()) + ")"
        return strongest(per_input, rule), text

    ph, ph_text = ctrl("period-head", {"period contrast": "contrast 62.8", "peak error (samples)": "peak error"})
    p31, p31_text = ctrl("follows-sin-n-5", {"contrast at 31.4 samples": "contrast 31.4"})
    ho, ho_text = ctrl("follows-held-out-periods", {"lowest contrast": "lowest held-out contrast"})
    r3, r3_text = ctrl("heads-share-profile", {"mean r": "top-3 mean r"})
    ro, ro_text = ctrl("rollout-keeps-period", {"rollout contrast": "rollout contrast"})
    held = ", ".join(f"{n}: {fmt(v)}" for n, v in held_contrasts.items())
    rnd = "" if random_best_contrast is None else f"; random init's best head {fmt(random_best_contrast)}"
    pairs = "" if all_corr is None else f"; all pairs of heads {fmt(all_corr)}"
    return [
        spec(c + "period-head").result({"period contrast": best_contrast, "peak error (samples)": peak_err}, ph, detail=ph_text + rnd),
        spec(c + "period-head-vanishes").result(exp2_contrast, best_contrast),
        spec(c + "follows-sin-n-5").result(exp2_contrast_p31, p31, detail=p31_text),
        spec(c + "follows-held-out-periods").result(min(held_contrasts.values()), ho, detail=f"{held}; {ho_text}"),
        spec(c + "heads-share-profile").result(top_corr, r3, detail=r3_text + pairs),
        spec(c + "rollout-keeps-period").result(rollout_contrast, ro, detail=ro_text),
    ]


#: a forecast whose error is within this many per cent of the history mean's on every input is "flat"
FLAT_PERCENT = 5.0


def _held_out_ratios(scores):
    """Per held-out input (``scores`` rows named ``"held out …"``): the model's argmax MSE over the
    better baseline's (the lower of the history mean's and repeat-last-period's)."""
    rows = scores[[str(name).startswith("held out") for name in scores.index]]
    if rows.empty or not {"model_argmax", "history_mean", "repeat_last_period"} <= set(rows.columns):
        raise bad_argument(InvalidInputError, "scores", "forecast_scores rows named 'held out …' with model_argmax, history_mean, repeat_last_period",
                           f"index {list(scores.index)}, columns {list(scores.columns)}", raw=True)
    return rows["model_argmax"] / rows[["history_mean", "repeat_last_period"]].min(axis=1)


def forecast_findings(scores) -> list[Finding]:
    """The forecasts of the chapter's own inputs (``scores``: :func:`attnbook.vitime.harmonics.forecast_scores`
    per input, rows "experiment 1" and "held out …"): ``experiment-1-forecast`` (the model's argmax MSE
    ÷ repeat-last-period's on experiment 1) and ``held-out-probes-forecast`` (the largest, over the
    held-out inputs, of the model's MSE ÷ the better of the history mean's and repeat-last-period's).
    Since issue 31 each control is the seasonal-average draft the model is given (column ``seasonal_average``),
    the same ratio: a model that only copied its draft would score it (was the baseline itself, ratio 1,
    which can never pass a ``< 1`` rule)."""
    ratio = _held_out_ratios(scores)
    if "experiment 1" not in scores.index or "seasonal_average" not in scores.columns:
        raise bad_argument(InvalidInputError, "scores", "a row 'experiment 1' and a column 'seasonal_average'",
                           f"index {list(scores.index)}, columns {list(scores.columns)}", raw=True)
    rows = scores[[str(name).startswith("held out") for name in scores.index]]
    draft = rows["seasonal_average"] / rows[["history_mean", "repeat_last_period"]].min(axis=1)
    e1 = scores.loc["experiment 1"]
    c = "vitime-harmonics/"
    return [spec(c + "experiment-1-forecast").result(float(e1["model_argmax"] / e1["repeat_last_period"]),
                                                     float(e1["seasonal_average"] / e1["repeat_last_period"]),
                                                     detail=f"MSE {fmt(float(e1['model_argmax']))} against {fmt(float(e1['repeat_last_period']))}"
                                                            f" (draft {fmt(float(e1['seasonal_average']))})"),
            spec(c + "held-out-probes-forecast").result(float(ratio.max()), float(draft.max()),
                                                        detail=", ".join(f"{n.removeprefix('held out ')}: {fmt(float(r))}" for n, r in ratio.items())
                                                               + "; draft: " + ", ".join(f"{n.removeprefix('held out ')}: {fmt(float(r))}"
                                                                                         for n, r in draft.items()))]


def forecast_reading(scores) -> str:
    """What the forecasting table says, in one sentence computed from it (Markdown): the model beats
    both baselines on every held-out input (by at least how much), or its forecast is flat (error
    within :data:`FLAT_PERCENT` % of the history mean's on every input), or neither."""
    ratio = _held_out_ratios(scores)
    deviation = float((scores["model_argmax"] / scores["history_mean"] - 1).abs().max() * 100)
    if (ratio < 1).all():
        return (f"On every held-out input the model beats both baselines, by at least {fmt(float(100 * (1 - ratio.max())))} % "
                f"of the better one's error: it forecasts periods it was never probed with")
    if deviation < FLAT_PERCENT:
        return (f"On every input the forecast's error is within {fmt(deviation)} % of the history mean's: the model paints a "
                f"nearly flat line. Where it \"beats\" repeat-last-period it is because that baseline repeats an integer period "
                f"that drifts against a non-integer one, not because the model forecasts. The model has learned where to look before "
                f"it has learned what to paint; its periodic heads show the input's self-similarity, not a forecasting mechanism")
    worse = [name.removeprefix("held out ") for name, r in ratio.items() if r >= 1]
    return (f"The forecast is not flat (up to {fmt(deviation)} % from the history mean's error), but it loses to the better baseline "
            f"on {', '.join(worse)}")


def peak_error(peaks: list[float], period: float) -> float:
    """Largest distance (samples) of the three highest lag peaks, sorted, to ``period``, 2·``period``
    and 3·``period``; ``inf`` unless there are exactly three peaks."""
    if len(peaks) != 3:
        return float("inf")
    return max(abs(p - k * period) for k, p in enumerate(sorted(peaks), 1))


def chapter_checks(fell: float, random_contrasts: Any, round_trip: float, shuffle_diff: float,
                   forecast_ratio: float | None = None) -> list[Check]:
    """Chapter 3's checks — what the findings rely on, not findings: pretraining lowered the validation
    loss (``fell`` = best / step 0); with ``forecast_ratio`` (the model's mean MSE on the held-out test ÷
    the history mean's), the model forecasts better than the history's mean — its task, which a cheaper
    pretraining must keep; the lag measure reads flat on the random-init network (every
    head's contrast in [0.8, 1.25], ``random_contrasts``); the official-format checkpoint round-trips
    exactly; the shuffled encoder, un-permuted, gives raster order's contrasts. Over several seeds, pass
    the worst seed's values (:func:`attnbook.vitime.seeds.seed_checks`)."""
    random_contrasts = np.asarray(random_contrasts, dtype=np.float64)
    task = [] if forecast_ratio is None else [
        Check("held-out test: the model's mean MSE ÷ the history mean's (it forecasts better than a flat line)", float(forecast_ratio), "<", 1.0)]
    return [
        Check("pretraining: best validation loss / loss at step 0", fell, "<", 0.95),
        *task,
        Check("random init: lowest contrast over all heads (the measure reads flat)", float(random_contrasts.min()), ">=", 0.8),
        Check("random init: highest contrast over all heads (the measure reads flat)", float(random_contrasts.max()), "<=", 1.25),
        Check("official-format checkpoint written and reloaded: max output difference", round_trip, "<=", 0.0),
        Check("shuffled encoder, un-permuted: max contrast difference to raster order", shuffle_diff, "<", 1e-3),
    ]


def top_head_agreement(corr: np.ndarray, ranking: list[dict], n_heads: int, top: int = 3) -> tuple[float, float]:
    """Mean Pearson r of the lag profiles among the ``top`` heads by contrast (``ranking``, best
    first; ``corr`` from :func:`~attnbook.vitime.lags.profile_correlation`, layer-major) and over
    all pairs of heads (NaN pairs left out)."""
    heads = [r["layer"] * n_heads + r["head"] for r in ranking[:top]]
    among_top = float(np.nanmean([corr[i, j] for i in heads for j in heads if i < j]))
    return among_top, float(np.nanmean(corr[np.triu_indices_from(corr, 1)]))


# -- does the model use the period heads? (issue 30) -----------------------------------------------
#
# The unit is a PAIR of random-phase series: the same background harmonics (random phases), the same noise, one
# with sin(n/10) added (random phase), one without. The damage of an ablation on one series is the mean squared
# change of its 720-sample forecast from the intact model's, in units of that series' own history standard
# deviation; the pair's value is the damage with the harmonic minus the damage without it. Heads are chosen on a
# selection split of pairs and tested on a disjoint test split of fresh pairs (head_set_test, one family, Holm).

#: seeds of the two splits of paired series (the same for every training seed; distinct draws, so the splits share no series)
SELECTION_SEED, TEST_SEED = 40_000, 50_000
#: the registry key of the chapter's causal finding: the period heads, tested as a set
PERIOD_HEADS_KEY = "vitime-harmonics/top3-used-for-period"
#: a series' damage is reported in thousandths of its history variance (the mean squared change of the normalised forecast × 1000)
DAMAGE_SCALE = 1000.0
@dataclass(frozen=True)
class PairedSeries:
    """``n`` pairs of series of ``length`` samples: ``without[i]`` is the background (the harmonics of
    experiment 2, ``sin(2πn/31.4 + φ)`` and ``cos(2πn/6.28 + φ')``, phases drawn per pair) plus Gaussian
    noise (standard deviation ``noise``); ``with_harmonic[i]`` is the same series plus ``sin(2πn/62.8 + φ0)``
    (``phases[i] = (φ0, φ, φ')``). The pair shares everything but the harmonic."""

    with_harmonic: np.ndarray
    without: np.ndarray
    phases: np.ndarray
    noise: float
    seed: int

    def __len__(self) -> int:
        return len(self.without)


def paired_series(n: int, seed: int, *, length: int = 512, noise: float = 0.1) -> PairedSeries:
    """``n`` seeded :class:`PairedSeries` (``numpy.random.default_rng(seed)``: per pair, the three phases
    uniform on [0, 2π), then ``length`` noise samples)."""
    import dataclasses as dc

    n, length = checks.positive_int("n", n), checks.positive_int("length", length)
    noise = checks.non_negative("noise", noise)
    harmonic, background = hm.EXPERIMENTS[1][0], hm.EXPERIMENTS[2]
    rng = np.random.default_rng(checks.integer("seed", seed, minimum=0))
    t = np.arange(length, dtype=np.float64)
    with_h, without, phases = [], [], []
    for _ in range(n):
        phi = rng.uniform(0.0, 2.0 * np.pi, size=1 + len(background))
        eps = rng.normal(0.0, noise, size=length) if noise > 0 else np.zeros(length)
        base = sum(dc.replace(b, phase=float(p))(t) for b, p in zip(background, phi[1:])) + eps
        without.append(base)
        with_h.append(base + dc.replace(harmonic, phase=float(phi[0]))(t))
        phases.append(phi)
    return PairedSeries(np.stack(with_h), np.stack(without), np.stack(phases), float(noise), int(seed))


def paired_images(pairs: PairedSeries, mapping: Any, horizon: int = 720) -> tuple[torch.Tensor, list]:
    """The model inputs ``(2n, 1, W, h)`` of ``pairs``: the ``n`` series with the harmonic first, then their
    ``n`` twins in the same order, each mapped as the chapter maps its input
    (:func:`~attnbook.vitime.mapping.series_to_image`), and their :class:`~attnbook.vitime.mapping.Mapped`."""
    from .mapping import series_to_image

    if not isinstance(pairs, PairedSeries):
        raise bad_argument(InvalidInputError, "pairs", "a PairedSeries", type(pairs).__name__, raw=True)
    mapped = [series_to_image(x, horizon, mapping) for x in (*pairs.with_harmonic, *pairs.without)]
    return torch.as_tensor(np.stack([m.image for m in mapped]), dtype=torch.float32)[:, None], mapped


def _hooked(module: torch.nn.Module) -> bool:
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


def _ablation_check(hook: Any) -> bool:
    """Whether ``hook`` is one of the two hooks :func:`attnbook.intervene.ablate` puts on the whole model (they
    count that every chosen layer ran; they change nothing)."""
    return getattr(hook, "__module__", "") == "attnbook.intervene.core" and getattr(hook, "__qualname__", "").startswith("_installed.")


def _global_hooks() -> bool:
    from torch.nn.modules import module as torch_module

    return bool(torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks)


class HarmonicDamage:
    """``metric(model) -> (n,)``: per pair (``images`` from :func:`paired_images`: ``n`` series with the
    harmonic, then their twins), the damage on the series with the harmonic minus the damage on its twin,
    where a series' damage is ``1000 · mean_t ((ŷ_t(model) − ŷ_t(intact)) / σ)²`` over the ``horizon`` forecast
    samples (expectation decoding), ``σ`` the series' history standard deviation (the mapping's): the forecast's
    change in the units the model reads the series in, in thousandths of the history's variance
    (:data:`DAMAGE_SCALE`). 0 for the intact model.

    The intact model's block inputs are kept: a call recomputes from the first block that has a hook installed
    (an ablation, a capture) — the blocks before it compute what they computed intact; :func:`~attnbook.intervene.ablate`'s
    two checking hooks on the whole model are run as the model's forward would run them. Any other hook on the model
    or outside the blocks, a global hook, a shuffled token order or another model run the whole forward. ``calls``
    counts the calls."""

    def __init__(self, model: torch.nn.Module, images: torch.Tensor, mapped: Sequence[Any]) -> None:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[0] != len(mapped) or len(mapped) % 2 or not mapped:
            raise bad_argument(InvalidInputError, "images", f"a tensor (2n, 1, W, h) with 2n = len(mapped) = {len(mapped)} (even)",
                               getattr(images, "shape", type(images).__name__), raw=True)
        model.check_input(images)  # once: the fast path skips the check
        self.images, self.mapped, self.n = images, list(mapped), len(mapped) // 2
        self.calls = 0
        self._model = model
        self._cache: list[torch.Tensor] | None = None
        with torch.no_grad():
            if model.model.token_order == "raster":
                self._cache = self._intact_inputs(model)
            self.clean = self.forecasts(model)

    # the forward, from a block on
    def _intact_inputs(self, model: torch.nn.Module) -> list[torch.Tensor]:
        vit = model.model
        x = vit.patch_embed(self.images.transpose(2, 3)) + vit.pos_embed[:, 1:, :]
        x = torch.cat(((vit.cls_token + vit.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1), x), dim=1)
        inputs = []
        for blk in vit.blocks:
            inputs.append(x)
            x = blk(x)
        x = vit.decoder_embed(vit.norm(x)) + vit.decoder_pos_embed
        for blk in vit.decoder_blocks:
            inputs.append(x)
            x = blk(x)
        return [*inputs, x]

    def _fast(self, model: torch.nn.Module) -> bool:
        vit = getattr(model, "model", None)
        return (model is self._model and self._cache is not None and vit.token_order == "raster" and not _global_hooks()
                and all(_ablation_check(h) for h in (*model._forward_hooks.values(), *model._forward_pre_hooks.values()))
                and not (model._forward_hooks_with_kwargs or model._forward_pre_hooks_with_kwargs)
                and not (vit._forward_hooks or vit._forward_pre_hooks)
                and not any(_hooked(m) for m in (vit.patch_embed, vit.norm, vit.decoder_embed, vit.decoder_norm, vit.decoder_pred)))

    def logits(self, model: torch.nn.Module) -> torch.Tensor:
        """The model's output logits ``(2n, 1, W, h)`` on the pairs (from the first hooked block on, when it can)."""
        if not self._fast(model):
            return model.logits(self.images)
        vit = model.model
        for hook in list(model._forward_pre_hooks.values()):  # ablate's count of the layers that ran: reset ...
            hook(model, (self.images,))
        blocks = [*vit.blocks, *vit.decoder_blocks]
        n_enc = len(vit.blocks)
        first = next((i for i, b in enumerate(blocks) if _hooked(b)), len(blocks))
        x = self._cache[first]
        for j in range(first, n_enc):
            x = blocks[j](x)
        if first < n_enc:
            x = vit.decoder_embed(vit.norm(x)) + vit.decoder_pos_embed
        for j in range(max(first, n_enc), len(blocks)):
            x = blocks[j](x)
        pred = vit.decoder_pred(vit.decoder_norm(x))[:, 1:, :]
        for hook in list(model._forward_hooks.values()):  # ... and check (it reads no output)
            hook(model, (self.images,), None)
        return vit.unpatchify(pred).transpose(2, 3)

    def forecasts(self, model: torch.nn.Module) -> np.ndarray:
        """The forecasts ``(2n, horizon)`` in units of each series' history σ around its μ (expectation decoding:
        :func:`~attnbook.vitime.mapping.image_to_series` divided by σ, minus μ/σ)."""
        from .mapping import resample

        config = self.mapped[0].config
        # one canvas column per sample (the chapter's canvas): only the forecast's columns are decoded
        direct = all(m.input_len + m.horizon == config.width for m in self.mapped) and len({m.input_len for m in self.mapped}) == 1
        first = self.mapped[0].input_len if direct else 0
        with torch.no_grad():
            probs = torch.softmax(self.logits(model)[:, 0, first:], dim=-1).double()  # as the model's output, decoded in float64
            row = (probs @ torch.arange(config.bins, dtype=torch.float64)) / (probs.sum(-1) + 1e-8)
        z = (row * config.bin_width - config.max_scal).numpy()
        if direct:
            return z
        return np.stack([resample(z[b], m.input_len + m.horizon)[m.input_len:] for b, m in enumerate(self.mapped)])

    def damage(self, model: torch.nn.Module) -> np.ndarray:
        """Each series' damage ``(2n,)``: the mean squared change of its normalised forecast, × :data:`DAMAGE_SCALE`."""
        return DAMAGE_SCALE * np.mean((self.forecasts(model) - self.clean) ** 2, axis=1)

    def __call__(self, model: torch.nn.Module) -> np.ndarray:
        self.calls += 1
        d = self.damage(model)
        return d[: self.n] - d[self.n:]


def period_ranking(model: torch.nn.Module, images: torch.Tensor, mapped: Sequence[Any], period: float | None = None) -> list[dict]:
    """Every head ranked by the period contrast (:func:`~attnbook.vitime.lags.period_contrast`, ``period``
    default 62.8 samples) of its lag profile averaged over the series ``images`` (one captured forward):
    the chapter's attention analysis, on a set of series instead of one input."""
    from ..capture import capture
    from .model import unshuffle_attention

    period = hm.PERIOD_63 if period is None else period
    model.eval()
    with torch.no_grad(), capture(model) as cap:
        model(images)
    maps = cap.maps
    if model.last_permutation is not None:
        maps = unshuffle_attention(maps, model.last_permutation)
    c, spp = model.config, mapped[0].samples_per_patch
    profiles = lags.lag_profiles(lags.time_attention(maps, c.grid_h, c.grid_w, samples_per_patch=spp))
    return lags.rank_heads(lags.period_contrast(profiles, period, spp), maps.layer_names)


def period_heads(ranking: Sequence[Mapping], top: int = 1) -> list[tuple[int, int]]:
    """The first ``top`` heads of ``ranking`` (:func:`~attnbook.vitime.lags.rank_heads`, best period contrast
    first) as ``(layer, head)`` pairs; ``layer`` is capture's layer index, which
    :func:`attnbook.intervene.ablate` reads the same way."""
    top = checks.integer("top", top, minimum=1)
    if len(ranking) < top:
        raise bad_argument(InvalidInputError, "ranking", f"at least {top} ranked heads", len(ranking), raw=True)
    return [(int(r["layer"]), int(r["head"])) for r in ranking[:top]]


def reference_images(data: Any, mapping: Any, n: int, seed: int) -> torch.Tensor:
    """``n`` pretraining-distribution series (RealTS, ``seed``) as model inputs ``(n, 1, W, h)``: the
    reference a head's mean output is taken over for ``how="mean"``."""
    from .realts import batch_images, generate

    return batch_images(generate(checks.positive_int("n", n), data, seed=seed), mapping)[0]


@dataclass(frozen=True)
class CausalData:
    """The two splits of paired series and their model inputs (built once, the same for every seed)."""

    selection: PairedSeries
    test: PairedSeries
    selection_images: torch.Tensor
    selection_mapped: list
    test_images: torch.Tensor
    test_mapped: list

    @property
    def selection_text(self) -> str:
        return (f"{len(self.selection)} random-phase pairs (seed {self.selection.seed}): the period heads by the contrast of their mean lag "
                f"profile on the series with the harmonic; the positive control by single-head effect")

    @property
    def test_text(self) -> str:
        return f"{len(self.test)} fresh random-phase pairs (seed {self.test.seed}), none of them in the selection split"


def causal_data(selection_pairs: int, test_pairs: int, mapping: Any, *, noise: float = 0.1, horizon: int = 720, length: int = 512) -> CausalData:
    """The selection split (:data:`SELECTION_SEED`) and the test split (:data:`TEST_SEED`) as :class:`CausalData`."""
    sel = paired_series(selection_pairs, SELECTION_SEED, length=length, noise=noise)
    test = paired_series(test_pairs, TEST_SEED, length=length, noise=noise)
    return CausalData(sel, test, *paired_images(sel, mapping, horizon), *paired_images(test, mapping, horizon))


@dataclass(frozen=True)
class CausalSection:
    """One seed's causal section: the family (:class:`~attnbook.intervene.CausalFamily`), the heads chosen on
    the selection split (``period_heads`` by contrast, ``control_heads`` by single-head effect), the selection
    split's ``ranking`` and single-head effects (``selection_effects``, a HeadEffects), their mean per layer,
    and the ``cost`` (seconds, forwards = metric calls, draws = null sets measured after stopping)."""

    family: Any
    period_heads: tuple[tuple[int, int], ...]
    control_heads: tuple[tuple[int, int], ...]
    ranking: list
    selection_effects: Any
    per_layer: dict
    cost: dict

    @property
    def control_single_sum(self) -> float:
        """The sum of the positive control's heads' single-head effects on the selection split (what the set's
        effect would be if the heads' effects added up)."""
        e = self.selection_effects.effects
        return float(sum(float(e[layer, head]) for layer, head in self.control_heads))

    @property
    def texts(self) -> dict[str, str]:
        from ..intervene import POSITIVE_CONTROL

        k = len(self.period_heads)
        return {PERIOD_HEADS_KEY: f"the period heads (top {k} by period contrast, selection split)",
                POSITIVE_CONTROL: f"positive control (top {k} by single-head effect, selection split)"}


def causal_section(model: torch.nn.Module, reference: Any, data: CausalData, *, heads: int = 3, max_draws: int | None = None,
                   seed: int = 0, profile: str | None = None, progress: bool = False) -> CausalSection:
    """Chapter 3's causal section on one trained model (every training seed runs it on its own model):

    1. on the selection split: rank the heads by period contrast on the series with the harmonic
       (:func:`period_ranking`); the period heads are the first ``heads``; every head's single-head
       mean-ablation effect on the paired metric (:class:`HarmonicDamage`), whose ``heads`` strongest
       are the positive control (:func:`~attnbook.intervene.strongest_heads`);
    2. on the test split: :func:`~attnbook.intervene.head_set_test` of the period heads (the registry's family
       for the chapter, ``m`` tests, Holm) and of the positive control (``family=m``), mean ablation over
       ``reference`` (inputs or HeadMeans), layer-matched null with its stated fallback, ``max_draws`` (None:
       :func:`attnbook.stats.draws_for`), Besag–Clifford stopping (a space is enumerated only when it has no more
       members than the draws).
    """
    import time

    from ..intervene import CausalFamily, head_effects, head_means, head_set_test, per_layer_effects, strongest_heads
    from ..registry import causal_family

    start = time.perf_counter()
    heads = checks.positive_int("heads", heads)
    keys = causal_family("vitime-harmonics", profile)
    if keys != (PERIOD_HEADS_KEY,):
        raise bad_argument(InvalidInputError, "registry", f"the chapter's causal family ({PERIOD_HEADS_KEY!r},)", keys, raw=True)
    m = len(keys)
    means = reference if isinstance(reference, HeadMeans) else head_means(model, reference)
    n = len(data.selection)
    ranking = period_ranking(model, data.selection_images[:n], data.selection_mapped[:n])
    chosen = period_heads(ranking, heads)
    selection_metric = HarmonicDamage(model, data.selection_images, data.selection_mapped)
    effects = head_effects(model, lambda mod: float(np.mean(selection_metric(mod))), how="mean", reference=means, progress=progress)
    control = strongest_heads(effects, heads)
    test_metric = HarmonicDamage(model, data.test_images, data.test_mapped)
    common = dict(how="mean", reference=means, alpha=0.05, family=m, max_draws=max_draws, seed=seed, exact_up_to=0, progress=progress)
    tests = {PERIOD_HEADS_KEY: head_set_test(model, test_metric, chosen, **common)}
    positive = head_set_test(model, test_metric, control, **common)
    family = CausalFamily(tests, positive, selection=data.selection_text, test_split=data.test_text)
    cost = {"seed": seed, "seconds": time.perf_counter() - start, "forwards": selection_metric.calls + test_metric.calls,
            "draws": sum(t.result.draws for t in (*tests.values(), positive))}
    return CausalSection(family, tuple(chosen), tuple(control), ranking, effects, per_layer_effects(effects), cost)


def causal_frame(sections: Mapping[int, CausalSection]):
    """Every seed's family table (:meth:`~attnbook.intervene.CausalFamily.frame`) in one, with a seed level."""
    import pandas as pd

    return pd.concat({s: c.family.frame(c.texts) for s, c in sections.items()}, names=["seed"])


def causal_records(sections: Mapping[int, CausalSection], metric: str) -> list[dict]:
    """Every seed's records for ``summary.json``'s ``causal`` list."""
    return [r for s, c in sections.items() for r in c.family.records(metric, s, c.texts)]


def strips(sections: Mapping[int, CausalSection]) -> dict[str, tuple[float, tuple[float, ...]]]:
    """``{row: (effect, null effects)}`` for :func:`attnbook.plots.ablation_strips`: per seed, the period
    heads and the positive control (rows ``"s<seed> period heads"``, ``"s<seed> control"``)."""
    out = {}
    for s, c in sections.items():
        for label, t in (("period heads", c.family.tests[PERIOD_HEADS_KEY]), ("control", c.family.control)):
            out[f"s{s} {label}"] = (t.effect, t.result.null)
    return out
