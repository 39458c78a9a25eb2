"""Chapter 1's controls that could make its findings false (issue 31).

* :func:`permute_keys` — the same attention with each row's allowed keys permuted (seeded): every
  row keeps its weights, so its sharpness (entropy, largest weight) is unchanged, but where the
  weight lands — the previous token, ``[SEP]``, the token itself — is destroyed. The control of the
  attention findings that are about *where* a head looks (positional heads, sinks, self-attention,
  layer-label peaks, heads of a layer alike).
* :func:`permute_tokens` — gradients permuted across the tokens of each sentence (one seeded
  permutation of its real positions, applied to the query and the key axis alike): the control of
  ``rollout-agrees-with-gradient``. Gradient rollout then reads the same attention, the same
  gradient values, with their token alignment destroyed — what the two importances' shared input
  (the attention maps) and the gradients' value distribution alone give.
* :func:`importance_agreement` and :func:`rollout_agreement` — per sentence, Spearman's ρ between
  attention rollout and gradient-weighted rollout over the words (special tokens left out), with the
  real gradients, the permuted ones and a constant gradient (the attention alone, shown beside).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import stats
from ..capture import capture
from ..claims import Finding, fmt
from ..errors import InvalidInputError, bad_argument
from ..maps import AttentionMaps
from ..metrics import gradient_rollout, rollout
from ..registry import spec
from .attention import encode, padding_mask
from .data import RoleItem
from .importance import _pooled
from .model import LanguageModel

__all__ = ["permute_keys", "permute_tokens", "token_permutations", "relevance_batch", "importance_agreement", "rollout_agreement",
           "AGREEMENT", "agreement_finding"]

SPECIAL = ("[CLS]", "[SEP]")
#: the finding of this module's agreement (``reading-attention/…``)
AGREEMENT = "reading-attention/rollout-agrees-with-gradient"


def permute_keys(maps: AttentionMaps, seed: int = 0) -> AttentionMaps:
    """``maps`` with the weights of every row (layer, sentence, head, query) moved to a seeded random
    permutation of the keys that row may see (its mask; every key when there is none). Each row keeps
    its multiset of weights — its entropy and its largest weight — and loses where they were."""
    if not isinstance(maps, AttentionMaps):
        raise bad_argument(InvalidInputError, "maps", "AttentionMaps", type(maps).__name__, raw=True)
    w = maps.weights
    L, B, H, Q, K = w.shape
    valid = (maps.mask if maps.mask is not None else torch.ones(B, Q, K, dtype=torch.bool)).to(w.device)
    valid = valid[None, :, None].expand(L, B, H, Q, K)
    g = torch.Generator().manual_seed(int(seed))
    r = torch.rand(L, B, H, Q, K, generator=g).to(w.device).masked_fill(~valid, float("inf"))
    src = r.argsort(-1)  # the allowed keys first, in random order
    position = torch.arange(K, device=w.device, dtype=torch.float32).expand(L, B, H, Q, K)
    dst = position.masked_fill(~valid, float("inf")).argsort(-1)  # the allowed keys first, in order
    out = torch.zeros_like(w).scatter_(-1, dst, w.gather(-1, src))
    return AttentionMaps(out, maps.layer_names, maps.query_labels, maps.key_labels, maps.mask, {**maps.meta, "control": "keys permuted"})


def token_permutations(lengths: Sequence[int], width: int, seed: int = 0) -> torch.Tensor:
    """(sentences, width) long: per sentence, a seeded random permutation of its ``lengths[b]`` real
    positions, the padding positions after them left in place."""
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.arange(width).repeat(len(lengths), 1)
    for b, n in enumerate(lengths):
        if not 1 <= int(n) <= width:
            raise bad_argument(InvalidInputError, f"lengths[{b}]", f"a length in 1..{width}", n, raw=True)
        perm[b, :n] = torch.randperm(int(n), generator=g)
    return perm


def permute_tokens(grads: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """``grads`` (layers, sentences, heads, queries, keys) with each sentence's tokens permuted by
    ``perm`` (:func:`token_permutations`) on both token axes: ``out[l, b, h, i, j] = grads[l, b, h, π_b(i), π_b(j)]``."""
    if grads.dim() != 5 or grads.shape[-1] != grads.shape[-2]:
        raise bad_argument(InvalidInputError, "grads", "a (layers, batch, heads, n, n) tensor", tuple(grads.shape), raw=True)
    L, B, H, Q, K = grads.shape
    if tuple(perm.shape) != (B, K):
        raise bad_argument(InvalidInputError, "perm", f"shape {(B, K)}", tuple(perm.shape), raw=True)
    rows = perm[None, :, None, :, None].expand(L, B, H, Q, K)
    cols = perm[None, :, None, None, :].expand(L, B, H, Q, K)
    return grads.gather(3, rows).gather(4, cols)


def relevance_batch(lm: LanguageModel, items: Sequence[RoleItem]) -> tuple[AttentionMaps, torch.Tensor]:
    """MiniLM's attention on the items' source sentences (one padded batch) and the gradient of
    ``Σ_items cos(e_source, e_correct)`` (mean-pooled embeddings; the candidate's embedding held fixed)
    with respect to those attention weights, zero on padding."""
    items = list(items)
    if not items:
        raise bad_argument(InvalidInputError, "items", "one or more role items", items)
    src, tokens = encode(lm, [i.source for i in items])
    cand, _ = encode(lm, [i.correct for i in items])
    with torch.no_grad():
        target = _pooled(lm, cand)
    with torch.enable_grad():
        with capture(lm.model, keep_grad=True) as cap:
            pooled = _pooled(lm, src)
        lm.model.zero_grad(set_to_none=True)
        F.cosine_similarity(pooled, target).sum().backward()
    lm.model.zero_grad(set_to_none=True)
    mask = padding_mask(src["attention_mask"])
    width = src["input_ids"].shape[1]
    labels = [t + ["[PAD]"] * (width - len(t)) for t in tokens]
    weights = cap.weights().detach() * mask[None, :, None]
    maps = AttentionMaps(weights, tuple(cap.layer_names), labels, labels, mask, {"model": lm.name})
    return maps, cap.gradients().detach().float() * mask[None, :, None]


def importance_agreement(maps: AttentionMaps, grads: torch.Tensor) -> np.ndarray:
    """Per sentence, Spearman's ρ over its words (special tokens left out) between attention rollout
    (:func:`attnbook.metrics.rollout`, mean over the real query rows) and gradient-weighted rollout of
    ``grads`` (:func:`attnbook.metrics.gradient_rollout`, mean over the real query rows, clamped at 0);
    NaN where either ranking is constant."""
    from scipy.stats import spearmanr

    rolled, weighted = rollout(maps), gradient_rollout(maps, grads)
    out = []
    for b in range(maps.batch_size):
        n = maps.n_valid_keys(b)
        words = [i for i, t in enumerate(maps.key_labels[b][:n]) if t not in SPECIAL]
        r = rolled[b, :n, :n].mean(0)[words].numpy()
        g = weighted[b, :n, :n].mean(0).clamp_min(0)[words].numpy()
        out.append(np.nan if len(words) < 2 or np.ptp(r) == 0 or np.ptp(g) == 0 else float(spearmanr(r, g).statistic))
    return np.asarray(out, dtype=float)


def rollout_agreement(maps: AttentionMaps, grads: torch.Tensor, seed: int = 0) -> dict[str, np.ndarray]:
    """:func:`importance_agreement` of ``maps`` with ``grads`` (:func:`relevance_batch`: ``"gradient"``),
    with the same gradients permuted across each sentence's tokens (``"permuted"``,
    :func:`permute_tokens`, seeded) and with a constant gradient on the real tokens (``"constant"``:
    gradient rollout of the attention alone)."""
    if maps.mask is None:
        raise bad_argument(InvalidInputError, "maps", "maps with a padding mask (relevance_batch)", maps, raw=False)
    lengths = maps.mask.any(-1).sum(-1).tolist()
    perm = token_permutations(lengths, grads.shape[-1], seed)
    constant = torch.ones_like(grads) * maps.mask[None, :, None]
    return {"gradient": importance_agreement(maps, grads), "permuted": importance_agreement(maps, permute_tokens(grads, perm)),
            "constant": importance_agreement(maps, constant)}


def _summary(rho: np.ndarray, seed: int) -> dict[str, float]:
    rho = rho[~np.isnan(rho)]
    if not len(rho):
        raise bad_argument(InvalidInputError, "agreement", "at least one sentence with two words ranked", rho, raw=False)
    low, high = (float(rho[0]), float(rho[0])) if np.ptp(rho) < 1e-9 else stats.bootstrap_interval(rho, seed=seed)
    return {"mean Spearman ρ": float(rho.mean()), "lower end of its 95 % interval": float(low), "high": float(high), "n": len(rho)}


def agreement_finding(agreement: dict[str, np.ndarray], seed: int = 0) -> tuple[Finding, dict[str, dict[str, float]]]:
    """``rollout-agrees-with-gradient``: the mean per-sentence ρ and its 95 % bootstrap interval over
    sentences (:func:`rollout_agreement`) with the real gradients against the permuted ones, by the
    same rule; and the summary of each variant (``mean Spearman ρ``, the interval's ends, ``n``)."""
    values = {name: _summary(rho, seed) for name, rho in agreement.items()}
    g, p, c = values["gradient"], values["permuted"], values["constant"]
    detail = (f"{g['n']} sentences; gradient ρ {fmt(g['mean Spearman ρ'])} [{fmt(g['lower end of its 95 % interval'])}, {fmt(g['high'])}], "
              f"permuted {fmt(p['mean Spearman ρ'])} [{fmt(p['lower end of its 95 % interval'])}, {fmt(p['high'])}]; "
              f"constant gradient (attention alone) {fmt(c['mean Spearman ρ'])}")
    return spec(AGREEMENT).result(g, p, detail=detail), values
