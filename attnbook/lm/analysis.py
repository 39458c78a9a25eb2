"""Chapter 1's checks and findings: Clark et al. (2019, "What Does BERT Look At?") re-measured on
MiniLM, and whether the heads attention singles out matter to the role task
(:func:`~attnbook.lm.data.role_items`: which of two candidates made of the same tokens keeps who did
what to whom in a source sentence).

Each finding is declared in :mod:`attnbook.registry` (``reading-attention/…``): its measure is read
from batch-mean head metrics of the pretrained model and, the same way, from a control that could
have made it false (issue 31; :mod:`attnbook.lm.controls`): the same attention with each row's keys
permuted for the findings about where heads look (sharpness kept, position and token destroyed), the
late half of the layers for the broad early heads, the layer alone for ``sharper-heads-matter``.
Thresholds are the paper's (50 % of a head's attention) or stated in the rule.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import metrics, stats
from ..claims import Check, Finding, fmt
from ..errors import InvalidInputError, bad_argument
from ..intervene import CausalFamily, HeadEffects, head_effects, head_means, head_set_test, per_layer_effects, strongest_heads
from ..intervene.family import POSITIVE_CONTROL
from ..maps import AttentionMaps
from ..registry import spec
from .attention import encode
from .data import RoleItem
from .importance import embed
from .model import LanguageModel

__all__ = ["SPECIAL", "PUNCTUATION", "GROUPS", "layer_label_profile", "nearest_same_layer_rate", "chance_same_layer_rate", "head_measures",
           "exemplar_heads", "CHAPTER", "MEASURES", "early_share", "label_peaks", "peaks_in_their_third", "finding_values",
           "attention_findings", "head_values", "chapter_checks", "rank_agreement", "role_margins", "accuracy", "overlap_margins",
           "task_values", "task_checks", "RANKED_STATISTICS", "POSITIONAL", "SINKS", "CAUSAL_KEYS", "HOW", "CONTROL_HOW", "SHARPNESS",
           "METRIC", "margin_lost", "attention_groups", "effect_ranks", "single_head_effects", "single_head_ranks", "CausalSection",
           "causal_section", "causal_findings", "layer_alone", "layer_alone_ranks", "PERMUTED_CONTROL", "causal_numbers", "finding_texts"]

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
    "broad-early-heads": ("broadest head (normalised entropy)",),
    "heads-of-a-layer-alike": ("same-layer rate ÷ chance",),
}


def _early(n_layers: int) -> list[int]:
    """The early half of the layers (0 … L//2 − 1)."""
    return list(range(n_layers // 2))


def _late(n_layers: int) -> list[int]:
    """The late half of the layers (L//2 … L − 1): where ``broad-early-heads``' control looks."""
    return list(range(n_layers // 2, n_layers))


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


def finding_values(maps: AttentionMaps, broad_layers: str = "early") -> dict[str, float]:
    """Every measure of :data:`MEASURES` on one set of ``maps`` (the model's, or a control's), by
    name, and the counts the findings' details report: heads above each 50 % rule
    (``positional_heads``, ``positional_heads_early``, ``sink_heads``), heads above 0.9 normalised
    entropy among the ``broad_layers`` (``broad_heads``), ``same_layer_rate`` and
    ``peak_layer_<label>``. ``broad_layers``: ``"early"`` (the finding's half) or ``"late"`` (its
    control's): which half of the layers the broadest head is taken from."""
    if broad_layers not in ("early", "late"):
        raise bad_argument(InvalidInputError, "broad_layers", "'early' or 'late'", broad_layers)
    L, H = maps.n_layers, maps.n_heads
    m = head_measures(maps)
    positional = torch.maximum(m["previous"], m["next"])
    rate = nearest_same_layer_rate(metrics.head_distances(maps), H)
    peaks = label_peaks(maps)
    half = (_early if broad_layers == "early" else _late)(L)
    names = [name for names in MEASURES.values() for name in names]
    values = [float(positional.max()), early_share(positional), float(m["special"].max()), float((m["self"] < 0.1).float().mean()),
              float(peaks_in_their_third(peaks, L)), float(m["norm_entropy"][half].max()), rate / chance_same_layer_rate(L, H)]
    counts = {"positional_heads": int((positional > 0.5).sum()), "positional_heads_early": int((positional[_early(L)] > 0.5).sum()),
              "sink_heads": int((m["special"] > 0.5).sum()), "broad_heads": int((m["norm_entropy"][half] > 0.9).sum()),
              "same_layer_rate": rate, **{f"peak_layer_{k}": v for k, v in peaks.items()}}
    return {**dict(zip(names, values)), **counts}


def _peaks_text(c: dict) -> str:
    return ", ".join(f"{k} L{c[f'peak_layer_{k}']}" for k in GROUPS)


#: the findings whose control is the keys-permuted attention (:func:`attnbook.lm.controls.permute_keys`)
PERMUTED_CONTROL = ("positional-heads", "sink-heads", "little-self-attention", "layer-label-peaks", "heads-of-a-layer-alike")


def attention_findings(maps: AttentionMaps, *, seed: int = 0) -> tuple[list[Finding], dict]:
    """The six attention findings (:data:`MEASURES`) measured on ``maps`` (MiniLM) and on their
    controls (issue 31): for :data:`PERMUTED_CONTROL`, the same attention with each row's keys
    permuted (:func:`attnbook.lm.controls.permute_keys`, ``seed``: sharpness kept, where the weight
    lands destroyed); for ``broad-early-heads``, the late half of the same layers. Returns the
    findings and the numbers behind them (:func:`finding_values` of ``"MiniLM"``, of ``"keys permuted"``
    and of the late half, ``"late half"``, and ``"same_layer_chance"``)."""
    from .controls import permute_keys

    L, H = maps.n_layers, maps.n_heads
    c, t, late = finding_values(maps), finding_values(permute_keys(maps, seed)), finding_values(maps, "late")
    early, late_text = f"layers 0-{L // 2 - 1}", f"layers {L // 2}-{L - 1}"
    thirds = ", ".join(f"{r.start}-{r.stop - 1}" for r in _thirds(L))
    details = {
        "positional-heads": f"{c['positional_heads']} heads > 0.5, {c['positional_heads_early']} in {early}; keys permuted {t['positional_heads']}",
        "sink-heads": f"{c['sink_heads']} heads > 0.5; keys permuted {t['sink_heads']}",
        "little-self-attention": "",
        "layer-label-peaks": f"{_peaks_text(c)} (thirds {thirds}); keys permuted {_peaks_text(t)}",
        "broad-early-heads": f"{c['broad_heads']} heads > 0.9 in {early}; {late['broad_heads']} in {late_text}",
        "heads-of-a-layer-alike": f"rate {fmt(c['same_layer_rate'])} against chance {fmt(chance_same_layer_rate(L, H))}; "
                                  f"keys permuted {fmt(t['same_layer_rate'])}",
    }
    found = [spec(f"{CHAPTER}/{key}").result(c, late if key == "broad-early-heads" else t, detail=detail) for key, detail in details.items()]
    return found, {"MiniLM": c, "keys permuted": t, "late half": late, "same_layer_chance": chance_same_layer_rate(L, H)}


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
    its random twin's, ``entropy_ratio`` from :func:`head_values`); and the embeddings separate a
    paraphrase from an unrelated sentence (``paraphrase_margin`` = cos(a, paraphrase) − cos(a, unrelated)).
    The role task's own checks are :func:`task_checks`."""
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


# -- the role task ------------------------------------------------------------------------------------

def role_margins(lm: LanguageModel, items: Sequence[RoleItem]) -> torch.Tensor:
    """Per item (:class:`~attnbook.lm.data.RoleItem`), ``cos(source, correct) − cos(source, distractor)``
    on mean-pooled embeddings (one padded batch of the 3n sentences): > 0 when the model puts the
    candidate that keeps who did what to whom nearer the source."""
    items = list(items)
    if not items:
        raise bad_argument(InvalidInputError, "items", "one or more role items", items)
    texts = [i.source for i in items] + [i.correct for i in items] + [i.distractor for i in items]
    a, c, d = F.normalize(embed(lm, texts), dim=-1).split(len(items))
    return (a * c).sum(-1) - (a * d).sum(-1)


def accuracy(margins: Any) -> float:
    """The share of items whose margin is positive, a tie (margin exactly 0) counted as half: a scorer
    that cannot tell the candidates apart scores 0.5."""
    m = np.asarray(margins, dtype=np.float64)
    if m.ndim != 1 or m.size == 0:
        raise bad_argument(InvalidInputError, "margins", "a 1-D array of one or more margins", m.shape, raw=True)
    return float(np.mean((m > 0) + 0.5 * (m == 0)))


def overlap_margins(items: Sequence[RoleItem], tokenize: Callable[[str], list[str]]) -> np.ndarray:
    """The bag-of-words baseline: per item, ``cos(n_source, n_correct) − cos(n_source, n_distractor)``
    where ``n_x`` counts the tokens of ``x`` (``tokenize``, e.g. the model's word-piece tokenizer).
    Counts are integers, so two candidates with the same multiset of tokens score exactly the same."""
    def cos(x: Counter, y: Counter) -> float:
        dot = sum(n * y[t] for t, n in x.items())
        return dot / math.sqrt(sum(n * n for n in x.values()) * sum(n * n for n in y.values()))

    out = []
    for item in items:
        src, cor, dis = (Counter(tokenize(t)) for t in (item.source, item.correct, item.distractor))
        out.append(cos(src, cor) - cos(src, dis))
    return np.asarray(out, dtype=np.float64)


def task_values(lm: LanguageModel, twin: LanguageModel, items: Sequence[RoleItem], *, seed: int = 0) -> dict[str, float]:
    """The role task on ``items``: accuracy (:func:`accuracy`) of MiniLM (``accuracy``, with a 95 %
    bootstrap interval over items ``accuracy_low``/``accuracy_high`` and its ``mean_margin``), of the
    random twin (``twin_accuracy`` and interval) and of the bag-of-words baseline
    (``overlap_accuracy``, and ``overlap_untied``: the share of items it does not tie)."""
    margins = role_margins(lm, items).double().numpy()
    twin_margins = role_margins(twin, items).double().numpy()
    overlap = overlap_margins(items, lm.tokenizer.tokenize)
    hit = lambda m: (m > 0) + 0.5 * (m == 0)  # noqa: E731
    low, high = stats.bootstrap_interval(hit(margins), seed=seed)
    t_low, t_high = stats.bootstrap_interval(hit(twin_margins), seed=seed)
    return {"items": len(margins), "accuracy": accuracy(margins), "accuracy_low": low, "accuracy_high": high,
            "mean_margin": float(margins.mean()), "twin_accuracy": accuracy(twin_margins), "twin_accuracy_low": t_low,
            "twin_accuracy_high": t_high, "overlap_accuracy": accuracy(overlap), "overlap_untied": float(np.mean(overlap != 0))}


def task_checks(values: dict[str, float]) -> list[Check]:
    """The role task is what the ablations read, so it is checked first (:func:`task_values`): MiniLM
    solves it far above chance, the random twin does not, and token overlap cannot (it ties every item)."""
    return [
        Check("role task: MiniLM's accuracy (chance 0.5)", values["accuracy"], ">", 0.8),
        Check("role task: the random twin's distance from chance, |accuracy - 0.5|", abs(values["twin_accuracy"] - 0.5), "<", 0.15),
        Check("role task: share of items a bag-of-words overlap does not tie", values["overlap_untied"], "<=", 0.0),
    ]


# -- does the model use it? ablations against layer-matched head sets --------------------------------------

#: the per-head attention statistics whose rank is compared with the single-head ablation effect
RANKED_STATISTICS = ("previous/next-token mass", "[CLS]+[SEP] mass", "sharpness (1 - normalised entropy)")
#: the two attention groups the chapter tests
POSITIONAL, SINKS = "previous/next-token heads", "[CLS]/[SEP] sink heads"
#: the registry's finding for each attention group's ablation (``reading-attention/…``)
CAUSAL_KEYS = {POSITIONAL: f"{CHAPTER}/positional-heads-used", SINKS: f"{CHAPTER}/sink-heads-used"}
#: how each group is ablated: positional heads by their mean output, sinks by replacing their pattern
#: with uniform attention over the keys the mask allows (the mean of a sink's output is nearly the
#: output itself, so mean ablation would barely touch it)
HOW = {POSITIONAL: "mean", SINKS: "uniform"}
#: how single heads (the positive control's choice and ``sharper-heads-matter``) and the positive control are ablated
CONTROL_HOW = "mean"
#: the statistic ``sharper-heads-matter`` ranks with the single-head effects
SHARPNESS = RANKED_STATISTICS[2]
#: the metric's name in records and tables
METRIC = "role margin lost (per item)"


def margin_lost(lm: LanguageModel, items: Sequence[RoleItem]) -> Callable[[nn.Module], torch.Tensor]:
    """The ablation metric: per item, the negated role margin (:func:`role_margins`) of ``lm`` as it
    is now — one damage value per source sentence; an ablation's effect is the margin it costs."""
    items = list(items)
    return lambda _model: -role_margins(lm, items)


def attention_groups(measures: dict[str, torch.Tensor]) -> dict[str, list[tuple[int, int]]]:
    """The heads attention points to, by the chapter's 50 % rule on :func:`head_measures`: previous/next-token
    heads (``max(previous, next) > 0.5``) and ``[CLS]``/``[SEP]`` sinks (``special > 0.5``), as (layer, head)."""
    def heads(mask: torch.Tensor) -> list[tuple[int, int]]:
        return [(int(l), int(h)) for l, h in mask.nonzero().tolist()]

    return {POSITIONAL: heads(_positional_heads(measures)), SINKS: heads(measures["special"] > 0.5)}


def _statistics(measures: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return dict(zip(RANKED_STATISTICS, (torch.maximum(measures["previous"], measures["next"]), measures["special"],
                                         1 - measures["norm_entropy"])))


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


def _mean_metric(metric: Callable[[nn.Module], torch.Tensor]) -> Callable[[nn.Module], float]:
    return lambda model: float(metric(model).mean())


def single_head_effects(lm: LanguageModel, items: Sequence[RoleItem], *, how: str = CONTROL_HOW, progress: bool = False) -> HeadEffects:
    """Every head of ``lm`` ablated alone (``how``; ``mean``: its mean output over the items' source
    sentences, each run alone) on the mean role margin lost over ``items``."""
    reference = _reference(lm, [i.source for i in items], how)
    return head_effects(lm.model, _mean_metric(margin_lost(lm, items)), how=how, reference=reference, progress=progress)


def single_head_ranks(lm: LanguageModel, measures: dict[str, torch.Tensor], items: Sequence[RoleItem], *, how: str = CONTROL_HOW,
                      progress: bool = False) -> dict[str, tuple[float, float]]:
    """:func:`effect_ranks` for any model of the chapter (the random twin is the control of
    ``sharper-heads-matter``): each head of ``lm`` ablated alone on its own role margin over ``items``
    (:func:`single_head_effects`), against ``measures`` (:func:`head_measures` of ``lm``'s maps of the items' sources)."""
    return effect_ranks(measures, single_head_effects(lm, items, how=how, progress=progress))


class _Counted:
    """A metric that counts its calls (the forwards of the causal section's cost)."""

    def __init__(self, metric: Callable[[nn.Module], torch.Tensor]) -> None:
        self.metric, self.calls = metric, 0

    def __call__(self, model: nn.Module) -> torch.Tensor:
        self.calls += 1
        return self.metric(model)


@dataclass(frozen=True)
class CausalSection:
    """Chapter 1's causal section on one seed (:func:`causal_section`): the ``family`` (the two attention
    groups' tests and the positive control), the single-head effects on the selection split
    (``effects``, mean ablation), the ``groups`` chosen there, Spearman's (ρ, p) of each attention
    statistic with those effects (``rank``), the mean single-head effect per layer (``per_layer``) and
    the ``cost`` (``seconds``, ``forwards``: metric calls, ``draws``: null draws used after stopping)."""

    family: CausalFamily
    effects: HeadEffects
    groups: dict[str, list[tuple[int, int]]]
    rank: dict[str, tuple[float, float]]
    per_layer: dict[str, float]
    cost: dict[str, float]
    selection_items: int
    test_items: int

    def texts(self) -> dict[str, str]:
        """What each test's heads are, for tables and records (by finding key)."""
        out = {CAUSAL_KEYS[name]: f"{name} ({len(heads)}, {HOW[name]}-ablated)" for name, heads in self.groups.items()}
        out[POSITIVE_CONTROL] = f"positive control: top {len(self.family.control.heads)} single heads ({CONTROL_HOW}-ablated)"
        return out

    def frame(self):
        return self.family.frame(self.texts())

    def records(self, seed: int) -> list[dict]:
        return self.family.records(METRIC, seed, self.texts())


def causal_section(lm: LanguageModel, selection: Sequence[RoleItem], test: Sequence[RoleItem], *, measures: dict[str, torch.Tensor] | None = None,
                   seed: int = 0, max_draws: int | None = None, exact_up_to: int = 256, progress: bool = False) -> CausalSection:
    """Chapter 1's causal section for one seed on MiniLM (``lm``), timed.

    On the **selection split** (``selection``): the attention groups (:func:`attention_groups` of
    ``measures``, :func:`head_measures` of the selection sources' maps; computed here when not given)
    and every head ablated alone (mean ablation, :func:`single_head_effects`); the positive control is
    the ``k`` heads whose single ablation cost most, ``k`` the size of the smaller group (a small set
    that matters is the harder one to detect). On the **test
    split** (``test``): one :func:`~attnbook.intervene.head_set_test` per group (``how`` from :data:`HOW`)
    and for the positive control, each against the layer-matched null, sized for the family of
    :func:`attnbook.registry.causal_family` (``max_draws``: ``None`` for :func:`attnbook.stats.draws_for`;
    ``exact_up_to``: the largest null space enumerated, as in :func:`~attnbook.intervene.head_set_test`).
    A section this code already computed for the same weights, items, measures and settings is read back
    (:mod:`attnbook.memo`: the build's execution, read again by the tests')."""
    from .. import memo

    selection, test = list(selection), list(test)
    shared = {i.source for i in selection} & {i.source for i in test}
    if shared:
        raise bad_argument(InvalidInputError, "test", "items whose source sentences the selection split does not hold", sorted(shared)[:3], raw=True)
    config = {"model": lm.name, "weights": memo.fingerprint(lm.model), "selection": memo.fingerprint(selection), "test": memo.fingerprint(test),
              "measures": memo.fingerprint(measures) if measures is not None else None, "seed": seed, "max_draws": max_draws,
              "exact_up_to": exact_up_to}
    return memo.cached("lm/causal-section", config, lambda: _causal_section(lm, selection, test, measures, seed, max_draws, exact_up_to, progress))


def _causal_section(lm: LanguageModel, selection: list[RoleItem], test: list[RoleItem], measures: dict[str, torch.Tensor] | None,
                    seed: int, max_draws: int | None, exact_up_to: int, progress: bool) -> CausalSection:
    from .. import registry
    from .attention import lm_attention

    start = time.perf_counter()
    if measures is None:
        measures = head_measures(lm_attention(lm, [i.source for i in selection]))
    groups = attention_groups(measures)
    empty = [name for name, heads in groups.items() if not heads]
    if empty:
        raise bad_argument(InvalidInputError, "measures", "at least one head in each attention group (the 50 % rule)", empty, raw=True)
    keys = registry.causal_family(CHAPTER)
    if sorted(keys) != sorted(CAUSAL_KEYS.values()):
        raise bad_argument(InvalidInputError, "registry", f"the causal family {sorted(CAUSAL_KEYS.values())}", keys, raw=True)
    m = len(keys)
    chosen_metric = _Counted(margin_lost(lm, selection))
    reference = _reference(lm, [i.source for i in selection], CONTROL_HOW)
    effects = head_effects(lm.model, _mean_metric(chosen_metric), how=CONTROL_HOW, reference=reference, progress=progress)
    k = min(len(heads) for heads in groups.values())
    strongest = strongest_heads(effects, k)
    metric = _Counted(margin_lost(lm, test))
    tests = {}
    for offset, (name, heads) in enumerate(groups.items()):
        how = HOW[name]
        tests[CAUSAL_KEYS[name]] = head_set_test(lm.model, metric, heads, family=m, max_draws=max_draws, exact_up_to=exact_up_to, seed=seed + offset, how=how,
                                                 reference=reference if how == "mean" else None, progress=progress)
    control = head_set_test(lm.model, metric, strongest, family=m, max_draws=max_draws, exact_up_to=exact_up_to, seed=seed + len(groups),
                            how=CONTROL_HOW,
                            reference=reference, progress=progress)
    n_sel, n_test = len(selection), len(test)
    family = CausalFamily(tests, control, selection=f"selection split: {n_sel} role items (their own source sentences)",
                          test_split=f"test split: the other {n_test} role items (no source sentence shared)")
    cost = {"seconds": time.perf_counter() - start, "forwards": chosen_metric.calls + metric.calls,
            "draws": sum(t.result.draws for t in (*tests.values(), control))}
    return CausalSection(family, effects, groups, effect_ranks(measures, effects), per_layer_effects(effects), cost, n_sel, n_test)


def layer_alone(statistic: torch.Tensor) -> torch.Tensor:
    """``statistic`` (layers, heads) with every head's value replaced by the mean of its layer: what a
    head's layer alone tells about it (the control of ``sharper-heads-matter``)."""
    if statistic.dim() != 2:
        raise bad_argument(InvalidInputError, "statistic", "a (layers, heads) tensor", tuple(statistic.shape), raw=True)
    return statistic.mean(1, keepdim=True).expand_as(statistic).clone()


def layer_alone_ranks(measures: dict[str, torch.Tensor], effects: HeadEffects) -> dict[str, tuple[float, float]]:
    """:func:`effect_ranks` with each statistic replaced by its layer mean (:func:`layer_alone`): the
    rank correlation the heads' layers alone give with the same single-head effects."""
    from scipy.stats import spearmanr

    flat = effects.effects.flatten().numpy()
    out = {}
    for name, values in _statistics(measures).items():
        result = spearmanr(layer_alone(values).flatten().numpy(), flat)
        out[name] = (float(result.statistic), float(result.pvalue))
    return out


def causal_findings(section: CausalSection, control_ranks: dict[str, tuple[float, float]]) -> list[Finding]:
    """The chapter's causal findings (the family's, :meth:`~attnbook.intervene.CausalFamily.findings`)
    and ``sharper-heads-matter``: Spearman's (ρ, p) of sharpness with the single-head effect on the
    selection split (``section.rank``) against the same with each head's sharpness replaced by its
    layer's mean (``control_ranks``, :func:`layer_alone_ranks` on the same effects). A correlation, not
    part of the causal family."""
    by_key = {f.spec.key: f for f in section.family.findings()}
    out = [by_key[key] for key in CAUSAL_KEYS.values()]
    (rho, p), (rho_c, p_c) = section.rank[SHARPNESS], control_ranks[SHARPNESS]
    n = int((~torch.isnan(section.effects.effects)).sum())
    out.append(spec(f"{CHAPTER}/sharper-heads-matter").result({"Spearman ρ": rho, "p": p}, {"Spearman ρ": rho_c, "p": p_c},
                                                             detail=f"{n} heads, {section.selection_items} selection items"))
    return out


def causal_numbers(section: CausalSection) -> dict[str, str]:
    """The causal section's numbers as text for the prose's glue, per test (``positional``, ``sinks``,
    ``control``): ``_n`` heads, ``_how``, ``_effect``, ``_low``/``_high`` (95 % interval over items),
    ``_null`` (null mean), ``_p``, ``_holm`` (the control: "—"), ``_smallest``, ``_draws``, ``_verdict``;
    and ``causal_m``, ``causal_seconds``, ``causal_forwards``, ``causal_draws``, ``causal_null_note``."""
    family = section.family
    adjusted = family.adjusted
    out: dict[str, str] = {}
    named = {"positional": (CAUSAL_KEYS[POSITIONAL], family.tests[CAUSAL_KEYS[POSITIONAL]]),
             "sinks": (CAUSAL_KEYS[SINKS], family.tests[CAUSAL_KEYS[SINKS]]), "control": (None, family.control)}
    for short, (key, t) in named.items():
        low, high = t.interval
        out.update({f"causal_{short}_n": str(len(t.heads)), f"causal_{short}_how": t.how, f"causal_{short}_effect": fmt(t.effect),
                    f"causal_{short}_low": fmt(low), f"causal_{short}_high": fmt(high), f"causal_{short}_null": fmt(t.null_mean),
                    f"causal_{short}_p": f"{t.p:.3g}", f"causal_{short}_holm": f"{adjusted[key]:.3g}" if key else "—",
                    f"causal_{short}_smallest": f"{t.smallest_p:.3g}", f"causal_{short}_draws": str(t.result.draws),
                    f"causal_{short}_nulltype": t.null,
                    f"causal_{short}_verdict": f"**{family.verdict(key)}**" if key else
                    ("**detected**" if family.control_detected else "**not detected**")})
    notes = [f"{name}: {t.null_note}" for name, t in ((n, family.tests[CAUSAL_KEYS[n]]) for n in (POSITIONAL, SINKS)) if t.null_note]
    if family.control.null_note:
        notes.append(f"positive control: {family.control.null_note}")
    out.update({"causal_m": str(family.m), "causal_seconds": f"{section.cost['seconds']:.0f}", "causal_forwards": str(section.cost["forwards"]),
                "causal_draws": str(section.cost["draws"]),
                "causal_null_note": "; ".join(notes) or "none: every test drew from its layer-matched null"})
    return out


def finding_texts(found: Sequence[Finding]) -> dict[str, dict[str, str]]:
    """For the prose's glue, per finding (its key without the chapter, ``-`` read as ``_``): ``verdict``
    (bold), ``reason``, ``measured`` and ``control`` (the rule's values) and ``detail``, as Markdown text."""
    def values(v: dict[str, float]) -> str:
        return "; ".join(f"{k} {fmt(x)}" for k, x in v.items()) if len(v) > 1 else fmt(next(iter(v.values())))

    return {f.spec.key.removeprefix(f"{CHAPTER}/").replace("-", "_"):
            {"verdict": f"**{f.verdict}**", "reason": f.reason, "measured": values(f.measured), "control": values(f.control),
             "detail": f.detail} for f in found}
