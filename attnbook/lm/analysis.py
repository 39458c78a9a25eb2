"""Clark et al. (2019, "What Does BERT Look At?") findings, re-measured as hypotheses.

Each finding becomes a rule on batch-mean head metrics of the pretrained model, and the same
rule is evaluated on the randomly initialised control so a reader can see whether the pattern is
learned. Thresholds are the paper's (50% of a head's attention) or stated in the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .. import metrics
from ..claims import Claim, Hypothesis, fmt
from ..intervene import HeadEffects, RandomComparison, against_random, head_effects, head_means
from ..maps import AttentionMaps
from .attention import encode
from .importance import embed
from .model import LanguageModel

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
    """Batch-mean (layers, heads) tensors the hypotheses are read from."""
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


def clark_hypotheses(maps: AttentionMaps, control: AttentionMaps) -> tuple[list[Hypothesis], dict[str, float]]:
    """The four findings as hypotheses with verdicts, and the measured values (for glue)."""
    L, H = maps.n_layers, maps.n_heads
    m, c = head_measures(maps), head_measures(control)
    values: dict[str, float] = {}
    out: list[Hypothesis] = []

    # 1. little attention to the current token; some heads > 50% on previous/next, mostly early
    low_self, low_self_c = float((m["self"] < 0.1).float().mean()), float((c["self"] < 0.1).float().mean())
    pos, pos_c = _positional_heads(m), _positional_heads(c)
    n_pos, n_pos_c = int(pos.sum()), int(pos_c.sum())
    early = range(0, L // 2)
    n_pos_early = int(pos[list(early)].sum())
    values |= {"low_self_fraction": low_self, "low_self_fraction_random": low_self_c, "positional_heads": n_pos,
               "positional_heads_random": n_pos_c, "positional_heads_early": n_pos_early}
    out.append(Hypothesis("most heads put < 10% on the current token", f"{fmt(low_self)} of heads", f"{fmt(low_self_c)} of heads",
                          "fraction > 0.5", low_self > 0.5))
    out.append(Hypothesis("some heads put > 50% on the previous/next token, mostly in early layers",
                          f"{n_pos} heads, {n_pos_early} in layers 0-{L // 2 - 1}", f"{n_pos_c} heads",
                          "count >= 1 and > half early", n_pos >= 1 and n_pos_early > n_pos / 2))

    # 2. [CLS] early, [SEP] middle, punctuation deep
    prof = layer_label_profile(maps)
    peaks = {k: int(v.argmax()) for k, v in prof.items()}
    first, middle, last = _thirds(L)
    prof_c = layer_label_profile(control)
    peaks_c = {k: int(v.argmax()) for k, v in prof_c.items()}
    values |= {f"peak_layer_{k}": v for k, v in peaks.items()} | {f"peak_mass_{k}": float(prof[k].max()) for k in prof}
    ok = peaks["[CLS]"] in first and peaks["[SEP]"] in middle and peaks["punctuation"] in last
    out.append(Hypothesis("layers peak on [CLS] early, [SEP] in the middle, punctuation deep",
                          ", ".join(f"{k}: L{v}" for k, v in peaks.items()), ", ".join(f"{k}: L{v}" for k, v in peaks_c.items()),
                          f"peaks in layers {list(first)}, {list(middle)}, {list(last)}", ok))

    # 3. some early heads attend broadly
    broad = m["norm_entropy"][list(early)]
    broad_c = c["norm_entropy"][list(early)]
    values |= {"broadest_early_head": float(broad.max()), "broadest_early_head_random": float(broad_c.max()),
               "broad_early_heads": int((broad > 0.9).sum())}
    out.append(Hypothesis("some early heads attend broadly", f"{int((broad > 0.9).sum())} heads > 0.9 (max {fmt(float(broad.max()))})",
                          f"{int((broad_c > 0.9).sum())} heads > 0.9", f"normalised entropy > 0.9 in layers 0-{L // 2 - 1}",
                          bool((broad > 0.9).any())))

    # 4. heads of a layer behave alike
    rate = nearest_same_layer_rate(metrics.head_distances(maps), H)
    rate_c = nearest_same_layer_rate(metrics.head_distances(control), H)
    chance = chance_same_layer_rate(L, H)
    values |= {"same_layer_rate": rate, "same_layer_rate_random": rate_c, "same_layer_chance": chance}
    out.append(Hypothesis("a head's nearest head (JS) is in its own layer", f"{fmt(rate)} of heads", f"{fmt(rate_c)} of heads",
                          f"rate >= 2 x chance ({fmt(chance)})", rate >= 2 * chance))
    return out, values


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


def chapter_claims(values: dict[str, float], capture_error: float, output_change: float, paraphrase_margin: float) -> list[Claim]:
    """Chapter 1's claims: capture equals ``output_attentions`` and changes nothing, MiniLM's heads
    are sharper than its random twin's and hold previous/next-token heads and sinks the twin lacks
    (``values`` from :func:`head_values`), and the embeddings separate a paraphrase from an unrelated
    sentence (``paraphrase_margin`` = cos(a, paraphrase) − cos(a, unrelated))."""
    return [
        Claim("captured maps = output_attentions (max abs diff)", capture_error, "<", 1e-5),
        Claim("capturing leaves the output unchanged (max abs diff)", output_change, "<", 1e-5),
        Claim("mean normalised entropy, MiniLM / random twin", values["entropy_ratio"], "<", 0.9),
        Claim("strongest previous/next-token head, MiniLM", values["max_positional"], ">", 0.5),
        Claim("strongest previous/next-token head, random twin", values["random_max_positional"], "<", 0.5),
        Claim("strongest [CLS]+[SEP] sink, MiniLM", values["max_sink"], ">", 0.5),
        Claim("strongest [CLS]+[SEP] sink, random twin", values["random_max_sink"], "<", 0.5),
        Claim("similarity: paraphrase pair minus unrelated pair", paraphrase_margin, ">", 0.2),
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


def causal_study(lm: LanguageModel, measures: dict[str, torch.Tensor], pairs: Sequence[tuple[str, str]], reference_texts: Sequence[str],
                 *, draws: int = 50, seed: int = 0, how: str = "mean", progress: bool = False) -> CausalStudy:
    """Ablate MiniLM's heads on the paraphrase task: each head alone, then the previous/next-token heads
    and the sinks against ``draws`` random head sets of the same size; ``how='mean'`` replaces a head's
    output by its mean over ``reference_texts`` (each sentence run alone, so no padding enters the mean)."""
    from scipy.stats import spearmanr

    model = lm.model
    reference = head_means(model, lambda m: [m(**encode(lm, text)[0]) for text in reference_texts]) if how == "mean" else None
    metric = margin_lost(lm, pairs)
    effects = head_effects(model, metric, how=how, reference=reference, progress=progress)
    groups = attention_groups(measures)
    comparisons = {}
    for k, (name, heads) in enumerate(tqdm(list(groups.items()), desc="attention groups vs random sets", disable=not progress, leave=False)):
        if heads:
            comparisons[name] = against_random(model, metric, heads, draws=draws, seed=seed + k, how=how, reference=reference)
    flat = effects.effects.flatten().numpy()
    rank = {}
    for name, values in _statistics(measures).items():
        result = spearmanr(values.flatten().numpy(), flat)
        rank[name] = (float(result.statistic), float(result.pvalue))
    return CausalStudy(-effects.clean, effects, groups, comparisons, rank)


def causal_hypotheses(study: CausalStudy) -> list[Hypothesis]:
    """Each attention group's ablation against random sets (rule: above their 95th percentile), and
    whether a head's attention sharpness ranks with its single-head effect (rule: ρ > 0 with p < 0.05)."""
    out = [c.hypothesis(f"ablating the {len(study.groups[name])} {name} costs more paraphrase margin than random heads")
           for name, c in study.comparisons.items()]
    rho, p = study.rank["sharpness (1 - normalised entropy)"]
    out.append(Hypothesis("sharper heads matter more: sharpness ranks with the single-head ablation effect",
                          f"Spearman rho {fmt(rho)} (p = {p:.3g}, 72 heads)", "rho = 0 if unrelated", "rho > 0 and p < 0.05",
                          rho > 0 and p < 0.05))
    return out


def causal_records(study: CausalStudy) -> list[dict]:
    """The comparisons as ``summary.json`` ``causal`` records."""
    return [c.record(name, "paraphrase margin lost") for name, c in study.comparisons.items()]
