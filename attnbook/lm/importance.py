"""Token importance for a sentence-embedding model: what the similarity of two sentences rests on.

The embedding is the mean of the last hidden states over real tokens (sentence-transformers'
pooling for all-MiniLM-L6-v2), ``e = Σ_i m_i h_i / Σ_i m_i``, and the scalar explained is the
cosine similarity ``s = cos(e_a, e_b)``. Relevance is gradient-weighted rollout (Chefer et al.,
ICCV 2021) of ``s`` through each sentence's attention, read as the mean over real query rows
(mean pooling gives every position the same say in the output).
"""

from __future__ import annotations

import torch

from ..capture import capture
from ..maps import AttentionMaps
from ..metrics import gradient_rollout, rollout, token_importance
from .attention import encode
from .model import LanguageModel


def attention_importance(maps: AttentionMaps, sample: int = 0, exclude=("[CLS]", "[SEP]")) -> dict[str, list[float]]:
    """Two attention-only importances of the real tokens of one sentence, each summing to 1.

    ``received``: attention received (column mean over queries, heads and layers) with
    ``exclude`` tokens zeroed; ``rollout``: the mean over real query rows of attention rollout.
    """
    one = maps.select(samples=sample)
    n = one.n_valid_keys(0)
    received = token_importance(one, exclude=set(exclude) if exclude else None)[0, :n]
    rolled = rollout(one)[0, :n, :n].mean(0)
    return {"received": received.tolist(), "rollout": (rolled / rolled.sum()).tolist()}


def _pooled(lm: LanguageModel, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    hidden = lm.model(**inputs).last_hidden_state
    m = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1)


def embed(lm: LanguageModel, texts) -> torch.Tensor:
    """Mean-pooled sentence embeddings (batch, hidden)."""
    inputs, _ = encode(lm, texts)
    with torch.no_grad():
        return _pooled(lm, inputs)


def similarity_relevance(lm: LanguageModel, text_a: str, text_b: str) -> dict:
    """Cosine similarity of two sentences and each token's relevance to it.

    Returns ``{"similarity", "tokens_a", "relevance_a", "tokens_b", "relevance_b"}``; each
    relevance vector is non-negative and sums to 1 over the sentence's tokens.
    """
    out: dict = {}
    inputs = {}
    for side, text in (("a", text_a), ("b", text_b)):
        inputs[side], tokens = encode(lm, text)
        out[f"tokens_{side}"] = tokens[0]
    with torch.enable_grad():
        caps = {}
        pooled = {}
        for side in ("a", "b"):
            with capture(lm.model, keep_grad=True) as cap:
                pooled[side] = _pooled(lm, inputs[side])
            caps[side] = cap
        sim = torch.nn.functional.cosine_similarity(pooled["a"], pooled["b"]).sum()
        lm.model.zero_grad(set_to_none=True)
        sim.backward()
    out["similarity"] = float(sim.detach())
    for side in ("a", "b"):
        cap = caps[side]
        maps = cap.to_maps()
        rel = gradient_rollout(maps, cap.gradients())[0].mean(0)  # mean over query rows
        rel = rel.clamp_min(0)
        out[f"relevance_{side}"] = (rel / rel.sum()).tolist()
    return out


__all__ = ["attention_importance", "embed", "similarity_relevance"]
