"""Chapter 1's checks and findings: Clark et al. (2019, "What Does BERT Look At?") re-measured on
MiniLM, and whether the heads attention singles out matter to the paraphrase margin.

Each finding is declared in :mod:`attnbook.registry` (``reading-attention/…``): its measure is read
from batch-mean head metrics of the pretrained model and, the same way, from its randomly
initialised twin (the control), so a pattern counts only if the untrained architecture does not show
it too. Thresholds are the paper's (50 % of a head's attention) or stated in the rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .. import metrics
from ..claims import Check, Finding, fmt
from ..intervene import HeadEffects, RandomComparison, against_random, head_effects, head_means
from ..maps import AttentionMaps
from ..registry import spec
from .attention import encode
from .importance import embed
from .model import LanguageModel

__all__ = ["SPECIAL", "PUNCTUATION", "GROUPS", "layer_label_profile", "nearest_same_layer_rate", "chance_same_layer_rate", "head_measures",
           "exemplar_heads", "CHAPTER", "MEASURES", "early_share", "label_peaks", "peaks_in_their_third", "finding_values",
           "attention_findings", "head_values", "chapter_checks", "rank_agreement", "RANKED_STATISTICS", "paraphrase_margin", "margin_lost",
           "attention_groups", "CausalStudy", "effect_ranks", "single_head_ranks", "causal_study", "CAUSAL_KEYS", "SHARPNESS",
           "causal_findings", "finding_texts", "causal_records"]

SPECIAL = ("[CLS]", "[SEP]")
PUNCTUATION = (".", ",")
GROUPS = {"[CLS]": ("[CLS]",), "[SEP]": ("[SEP]",), "punctuation": PUNCTUATION}


def _mean_over_batch(x: torch.Tensor) -> torch.Tensor:
    return x.nanmean(1)  # (L, B, H) -> (L, H)


def layer_label_profile(maps: AttentionMaps) -> dict[str, torch.Tensor]:
    """Per layer, the mean over heads and sentences of the mass on [CLS], [SEP] and punctuation."""
    return {name: _mean_over_batch(metrics.label_mass(maps, set(labels))).mean(1) for name, labels in GROUPS.items()}


def nearest_same_layer_rate(distances: torch.Tensor, n_heads: int) -> float:
    """Fraction of heads whose nearest other head (smallest JS divergence) is in the same layer.

    By chance this is ``(H − 1) / (L·H − 1)``.
    """
    d = distances.clone()
    d.fill_diagonal_(float("inf"))
    nearest = d.argmin(1)
    layer = torch.arange(d.shape[0]) // n_heads
    return float((layer[nearest] == layer).float().mean())


def chance_same_layer_rate(n_layers: int, n_heads: int) -> float:
    return (n_heads - 1) / (n_layers * n_heads - 1)


def head_measures(maps: AttentionMaps) -> dict[str, torch.Tensor]:
    """Batch-mean (layers, heads) tensors the findings are read from."""
    return {
        "self": _mean_over_batch(metrics.self_mass(maps)),
        "previous": _mean_over_batch(metrics.previous_token_mass(maps)),
        "next": _mean_over_batch(metrics.next_token_mass(maps)),
        "special": _mean_over_batch(metrics.label_mass(maps, set(SPECIAL))),
        "norm_entropy": _mean_over_batch(metrics.entropy(maps, normalized=True)),
    }


def exemplar_heads(measures: dict[str, torch.Tensor]) -> dict[str, tuple[int, int]]:
    """(layer, head) of the strongest previous/next-token head, special-token sink and broadest head."""
    H = measures["self"].shape[1]

    def at(x: torch.Tensor) -> tuple[int, int]:
        i = int(x.flatten().argmax())
        return i // H, i % H

    return {
        "positional": at(torch.maximum(measures["previous"], measures["next"])),
        "sink": at(measures["special"]),
        "broad": at(measures["norm_entropy"]),
    }


def _positional_heads(m: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.maximum(m["previous"], m["next"]) > 0.5


def _thirds(n_layers: int) -> tuple[range, range, range]:
    a, b = n_layers // 3, 2 * n_layers // 3
    return range(0, a), range(a, b), range(b, n_layers)


#: the chapter's slug, the first part of its findings' keys
CHAPTER = "reading-attention"

#: the measures of the attention findings (:mod:`attnbook.registry`, ``reading-attention/…``), by finding
MEASURES = {
    "positional-heads": ("strongest previous/next-token head", "share of heads > 0.5 in the early half"),
    "sink-heads": ("strongest [CLS]+[SEP] head",),
    "little-self-attention": ("share of heads < 0.1 on the current token",),
    "layer-label-peaks": ("labels peaking in their third",),
    "broad-early-heads": ("broadest early head (normalised entropy)",),
    "heads-of-a-layer-alike": ("same-layer rate ÷ chance",),
}


def _early(n_layers: int) -> list[int]:
    """The early half of the layers (0 … L//2 − 1)."""
    return list(range(n_layers // 2))


def early_share(positional: torch.Tensor) -> float:
    """Share of the heads of ``positional`` (layers × heads, ``max(previous, next)``) above 0.5 that sit
    in the early half of the layers; 0 when no head is above 0.5."""
    heads = positional > 0.5
    n = int(heads.sum())
    return int(heads[_early(positional.shape[0])].sum()) / n if n else 0.0


def label_peaks(maps: AttentionMaps) -> dict[str, int]:
    """Per label of :data:`GROUPS`, the layer where its mass (:func:`layer_label_profile`) peaks."""
    return {k: int(v.argmax()) for k, v in layer_label_profile(maps).items()}


def peaks_in_their_third(peaks: dict[str, int], n_layers: int) -> int:
    """How many of ``[CLS]``, ``[SEP]``, punctuation peak in their third of the layers (first, middle, last)."""
    return sum(peaks[label] in third for label, third in zip(GROUPS, _thirds(n_layers)))


def finding_values(maps: AttentionMaps) -> dict[str, float]:
    """Every measure of :data:`MEASURES` on one model's ``maps`` (the trained model or its twin), by
    name, and the counts the findings' details report: heads above each 50 % rule
    (``positional_heads``, ``positional_heads_early``, ``sink_heads``), early heads above 0.9
    normalised entropy (``broad_early_heads``), ``same_layer_rate`` and ``peak_layer_<label>``."""
    L, H = maps.n_layers, maps.n_heads
    m = head_measures(maps)
    positional = torch.maximum(m["previous"], m["next"])
    rate = nearest_same_layer_rate(metrics.head_distances(maps), H)
    peaks = label_peaks(maps)
    names = [name for names in MEASURES.values() for name in names]
    values = [float(positional.max()), early_share(positional), float(m["special"].max()), float((m["self"] < 0.1).float().mean()),
              float(peaks_in_their_third(peaks, L)), float(m["norm_entropy"][_early(L)].max()), rate / chance_same_layer_rate(L, H)]
    counts = {"positional_heads": int((positional > 0.5).sum()), "positional_heads_early": int((positional[_early(L)] > 0.5).sum()),
              "sink_heads": int((m["special"] > 0.5).sum()), "broad_early_heads": int((m["norm_entropy"][_early(L)] > 0.9).sum()),
              "same_layer_rate": rate, **{f"peak_layer_{k}": v for k, v in peaks.items()}}
    return {**dict(zip(names, values)), **counts}


def _peaks_text(c: dict) -> str:
    return ", ".join(f"{k} L{c[f'peak_layer_{k}']}" for k in GROUPS)


def attention_findings(maps: AttentionMaps, control: AttentionMaps) -> tuple[list[Finding], dict]:
    """The six attention findings (:data:`MEASURES`) measured on ``maps`` (MiniLM) and on ``control``
    (the random-init twin), and the numbers behind them (:func:`finding_values` of each, ``"MiniLM"``
    and ``"random twin"``, and ``"same_layer_chance"``: for the chapter's table and summary)."""
    L, H = maps.n_layers, maps.n_heads
    c, t = finding_values(maps), finding_values(control)
    early = f"layers 0-{L // 2 - 1}"
    thirds = ", ".join(f"{r.start}-{r.stop - 1}" for r in _thirds(L))
    details = {
        "positional-heads": f"{c['positional_heads']} heads > 0.5, {c['positional_heads_early']} in {early}; twin {t['positional_heads']}",
        "sink-heads": f"{c['sink_heads']} heads > 0.5; twin {t['sink_heads']}",
        "little-self-attention": "",
        "layer-label-peaks": f"{_peaks_text(c)} (thirds {thirds}); twin {_peaks_text(t)}",
        "broad-early-heads": f"{c['broad_early_heads']} heads > 0.9 in {early}; twin {t['broad_early_heads']}",
        "heads-of-a-layer-alike": f"rate {fmt(c['same_layer_rate'])} against chance {fmt(chance_same_layer_rate(L, H))}; "
                                  f"twin {fmt(t['same_layer_rate'])}",
    }
    found = [spec(f"{CHAPTER}/{key}").result(c, t, detail=detail) for key, detail in details.items()]
    return found, {"MiniLM": c, "random twin": t, "same_layer_chance": chance_same_layer_rate(L, H)}


def head_values(measures: dict[str, torch.Tensor], random_measures: dict[str, torch.Tensor]) -> dict[str, float]:
    """The chapter's head numbers for MiniLM and its random twin (from :func:`head_measures`): mean
    normalised entropy and its ratio, the strongest previous/next-token head ``max(previous, next)``
    and ``[CLS]+[SEP]`` sink, and how many heads put more than half their attention there."""
    positional = torch.maximum(measures["previous"], measures["next"])
    random_positional = torch.maximum(random_measures["previous"], random_measures["next"])
    entropy, random_entropy = measures["norm_entropy"].mean(), random_measures["norm_entropy"].mean()
    return {"mean_entropy": float(entropy), "random_entropy": float(random_entropy), "entropy_ratio": float(entropy / random_entropy),
            "max_positional": float(positional.max()), "random_max_positional": float(random_positional.max()),
            "max_sink": float(measures["special"].max()), "random_max_sink": float(random_measures["special"].max()),
            "n_positional": int((positional > 0.5).sum()), "n_sinks": int((measures["special"] > 0.5).sum())}


def chapter_checks(entropy_ratio: float, capture_error: float, output_change: float, paraphrase_margin: float) -> list[Check]:
    """Chapter 1's checks — what the findings rely on, not findings: capture equals ``output_attentions``
    and changes nothing; the trained weights are loaded (MiniLM's mean normalised entropy well below
    its random twin's, ``entropy_ratio`` from :func:`head_values`); and the embeddings, which the
    ablation metric reads, separate a paraphrase from an unrelated sentence (``paraphrase_margin`` =
    cos(a, paraphrase) − cos(a, unrelated))."""
    return [
        Check("captured maps = output_attentions (max abs diff)", capture_error, "<", 1e-5),
        Check("capturing leaves the output unchanged (max abs diff)", output_change, "<", 1e-5),
        Check("trained weights loaded: mean normalised entropy, MiniLM / random twin", entropy_ratio, "<", 0.9),
        Check("the encoder works: similarity of a paraphrase pair minus an unrelated pair", paraphrase_margin, ">", 0.2),
    ]


def rank_agreement(received: list[float], relevance: list[float], tokens: list[str]) -> tuple[float, str]:
    """Spearman's ρ between attention received and gradient relevance over the non-special tokens,
    and its reading: "largely agree" (ρ ≥ 0.7), "agree only in part" (ρ ≥ 0.3), else "barely agree"."""
    from scipy.stats import spearmanr

    words = [i for i, t in enumerate(tokens) if t not in SPECIAL]
    rho = float(spearmanr([received[i] for i in words], [relevance[i] for i in words]).statistic)
    return rho, "largely agree" if rho >= 0.7 else "agree only in part" if rho >= 0.3 else "barely agree"


# -- does the model use it? ablations against random head sets ----------------------------------------

#: the per-head attention statistics whose rank is compared with the single-head ablation effect
RANKED_STATISTICS = ("previous/next-token mass", "[CLS]+[SEP] mass", "sharpness (1 - normalised entropy)")


def paraphrase_margin(lm: LanguageModel, pairs: Sequence[tuple[str, str]]) -> float:
    """Mean ``cos(a_i, b_i)`` over the (sentence, paraphrase) pairs minus mean ``cos(a_i, b_j)``, ``i ≠ j``
    (every sentence with every other sentence's paraphrase: the unrelated pairs), on mean-pooled embeddings."""
    a = F.normalize(embed(lm, [p[0] for p in pairs]), dim=-1)
    b = F.normalize(embed(lm, [p[1] for p in pairs]), dim=-1)
    cos = a @ b.T
    n = cos.shape[0]
    same = cos.diagonal().sum()
    return float(same / n - (cos.sum() - same) / (n * n - n))


def margin_lost(lm: LanguageModel, pairs: Sequence[tuple[str, str]]) -> Callable[[nn.Module], float]:
    """The ablation metric (damage > 0): the negated paraphrase margin of ``lm`` as it is now."""
    return lambda _model: -paraphrase_margin(lm, pairs)


def attention_groups(measures: dict[str, torch.Tensor]) -> dict[str, list[tuple[int, int]]]:
    """The heads attention points to, by the chapter's 50 % rule on :func:`head_measures`: previous/next-token
    heads (``max(previous, next) > 0.5``) and ``[CLS]``/``[SEP]`` sinks (``special > 0.5``), as (layer, head)."""
    def heads(mask: torch.Tensor) -> list[tuple[int, int]]:
        return [(int(l), int(h)) for l, h in mask.nonzero().tolist()]

    return {"previous/next-token heads": heads(_positional_heads(measures)), "[CLS]/[SEP] sink heads": heads(measures["special"] > 0.5)}


def _statistics(measures: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return dict(zip(RANKED_STATISTICS, (torch.maximum(measures["previous"], measures["next"]), measures["special"],
                                         1 - measures["norm_entropy"])))


@dataclass(frozen=True)
class CausalStudy:
    """Chapter 1's ablations: every head alone (``effects``), each attention group against random sets
    (``comparisons``; groups with no head are absent), and Spearman's (ρ, p) between each attention
    statistic and the single-head effects (``rank``)."""

    clean_margin: float
    effects: HeadEffects
    groups: dict[str, list[tuple[int, int]]]
    comparisons: dict[str, RandomComparison]
    rank: dict[str, tuple[float, float]]


def _reference(lm: LanguageModel, texts: Sequence[str], how: str):
    """For ``how='mean'``: every head's mean output over ``texts``, each sentence run alone (no padding enters the mean)."""
    return head_means(lm.model, lambda m: [m(**encode(lm, text)[0]) for text in texts]) if how == "mean" else None


def effect_ranks(measures: dict[str, torch.Tensor], effects: HeadEffects) -> dict[str, tuple[float, float]]:
    """Spearman's (ρ, p) over the heads between each statistic of :data:`RANKED_STATISTICS` (from
    :func:`head_measures`) and the single-head ablation effects."""
    from scipy.stats import spearmanr

    flat = effects.effects.flatten().numpy()
    rank = {}
    for name, values in _statistics(measures).items():
        result = spearmanr(values.flatten().numpy(), flat)
        rank[name] = (float(result.statistic), float(result.pvalue))
    return rank


def single_head_ranks(lm: LanguageModel, measures: dict[str, torch.Tensor], pairs: Sequence[tuple[str, str]],
                      reference_texts: Sequence[str], *, how: str = "mean", progress: bool = False) -> dict[str, tuple[float, float]]:
    """:func:`effect_ranks` for any model of the chapter (the random twin is the control of
    ``sharper-heads-matter``): each head of ``lm`` ablated alone on its own paraphrase margin, as
    :func:`causal_study` does, against ``measures`` (:func:`head_measures` of ``lm``'s maps)."""
    effects = head_effects(lm.model, margin_lost(lm, pairs), how=how, reference=_reference(lm, reference_texts, how), progress=progress)
    return effect_ranks(measures, effects)


def causal_study(lm: LanguageModel, measures: dict[str, torch.Tensor], pairs: Sequence[tuple[str, str]], reference_texts: Sequence[str],
                 *, draws: int = 50, seed: int = 0, how: str = "mean", progress: bool = False) -> CausalStudy:
    """Ablate MiniLM's heads on the paraphrase task: each head alone, then the previous/next-token heads
    and the sinks against ``draws`` random head sets of the same size; ``how='mean'`` replaces a head's
    output by its mean over ``reference_texts`` (each sentence run alone, so no padding enters the mean)."""
    model = lm.model
    reference = _reference(lm, reference_texts, how)
    metric = margin_lost(lm, pairs)
    effects = head_effects(model, metric, how=how, reference=reference, progress=progress)
    groups = attention_groups(measures)
    comparisons = {}
    for k, (name, heads) in enumerate(tqdm(list(groups.items()), desc="attention groups vs random sets", disable=not progress, leave=False)):
        if heads:
            comparisons[name] = against_random(model, metric, heads, draws=draws, seed=seed + k, how=how, reference=reference)
    return CausalStudy(-effects.clean, effects, groups, comparisons, effect_ranks(measures, effects))


#: the registry's finding for each attention group's ablation (``reading-attention/…``)
CAUSAL_KEYS = {"previous/next-token heads": "positional-heads-used", "[CLS]/[SEP] sink heads": "sink-heads-used"}
#: the statistic ``sharper-heads-matter`` ranks with the single-head effects
SHARPNESS = RANKED_STATISTICS[2]


def causal_findings(study: CausalStudy, control_ranks: dict[str, tuple[float, float]]) -> list[Finding]:
    """The chapter's causal findings: each attention group's ablation against random sets of its size
    (:meth:`~attnbook.intervene.RandomComparison.finding`; inconclusive when no head passes the group's
    50 % rule), and ``sharper-heads-matter``: Spearman's (ρ, p) of sharpness with the single-head effect
    (``study.rank``) against the same on the random twin (``control_ranks``, :func:`single_head_ranks`)."""
    out = []
    for name, key in CAUSAL_KEYS.items():
        finding_spec = spec(f"{CHAPTER}/{key}")
        if name in study.comparisons:
            out.append(study.comparisons[name].finding(finding_spec))
        else:
            out.append(finding_spec.result(math.nan, math.nan, inconclusive=f"no head passes the 50 % rule of the {name}"))
    (rho, p), (rho_c, p_c) = study.rank[SHARPNESS], control_ranks[SHARPNESS]
    n = study.effects.effects.numel()
    out.append(spec(f"{CHAPTER}/sharper-heads-matter").result({"Spearman ρ": rho, "p": p}, {"Spearman ρ": rho_c, "p": p_c}, detail=f"{n} heads"))
    return out


def finding_texts(found: Sequence[Finding]) -> dict[str, dict[str, str]]:
    """For the prose's glue, per finding (its key without the chapter, ``-`` read as ``_``): ``verdict``
    (bold), ``reason``, ``measured`` and ``control`` (the rule's values) and ``detail``, as Markdown text."""
    def values(v: dict[str, float]) -> str:
        return "; ".join(f"{k} {fmt(x)}" for k, x in v.items()) if len(v) > 1 else fmt(next(iter(v.values())))

    return {f.spec.key.removeprefix(f"{CHAPTER}/").replace("-", "_"):
            {"verdict": f"**{f.verdict}**", "reason": f.reason, "measured": values(f.measured), "control": values(f.control),
             "detail": f.detail} for f in found}


def causal_records(study: CausalStudy) -> list[dict]:
    """The comparisons as ``summary.json`` ``causal`` records."""
    return [c.record(name, "paraphrase margin lost") for name, c in study.comparisons.items()]
