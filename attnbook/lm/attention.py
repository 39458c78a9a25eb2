"""Tokens in, ``AttentionMaps`` out, for a Hugging Face encoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..capture import capture, eager_attention
from ..errors import InvalidInputError, bad_argument
from ..maps import AttentionMaps
from .model import LanguageModel


def _check_texts(texts: str | Sequence[str]) -> list[str]:
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise bad_argument(InvalidInputError, "texts", "at least one text", texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise bad_argument(InvalidInputError, f"texts[{i}]", "a string", type(t).__name__, raw=True)
        if not t.strip():
            raise bad_argument(InvalidInputError, f"texts[{i}]", "a non-empty text", t)
    return texts


def encode(lm: LanguageModel, texts: str | Sequence[str]) -> tuple[dict[str, torch.Tensor], list[list[str]]]:
    """Tokenise a batch (padded, never truncated) → (model inputs, tokens per text without padding).

    Raises :class:`InvalidInputError` for an empty text or one longer than ``lm.max_tokens``.
    """
    texts = _check_texts(texts)
    batch = lm.tokenizer(texts, return_tensors="pt", padding=True, truncation=False)
    lengths = batch["attention_mask"].sum(1).tolist()
    for i, n in enumerate(lengths):
        if n > lm.max_tokens:
            raise bad_argument(InvalidInputError, f"texts[{i}]", f"at most {lm.max_tokens} tokens (the model's limit)", f"{n} tokens", raw=True)
    tokens = [lm.tokenizer.convert_ids_to_tokens(ids[:n]) for ids, n in zip(batch["input_ids"].tolist(), lengths)]
    return dict(batch), tokens


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Bool (batch, queries, keys): real tokens attend to real tokens; padding rows are invalid."""
    real = attention_mask.bool()
    return real[:, :, None] & real[:, None, :]


def lm_attention(lm: LanguageModel, texts: str | Sequence[str], layers=None) -> AttentionMaps:
    """Attention of ``lm`` on ``texts`` with token labels and a padding mask."""
    inputs, tokens = encode(lm, texts)
    width = inputs["input_ids"].shape[1]
    labels = [t + ["[PAD]"] * (width - len(t)) for t in tokens]
    with torch.no_grad(), capture(lm.model, layers) as cap:
        lm.model(**inputs)
    mask = padding_mask(inputs["attention_mask"])
    weights = cap.weights() * mask[None, :, None]  # padded keys carry 0 already; padded query rows → 0
    return AttentionMaps(weights, tuple(cap.layer_names), labels, labels, mask, {"model": lm.name})


def reference_attentions(lm: LanguageModel, texts: str | Sequence[str]) -> torch.Tensor:
    """Hugging Face's own ``output_attentions`` under eager attention, stacked (layers, batch, heads, q, k)."""
    inputs, _ = encode(lm, texts)
    with torch.no_grad(), eager_attention(lm.model) as model:
        out = model(**inputs, output_attentions=True)
    return torch.stack([a.float() for a in out.attentions])


def capture_output_change(lm: LanguageModel, texts: str | Sequence[str]) -> float:
    """Largest change capturing makes to the model's last hidden state (real tokens only)."""
    inputs, _ = encode(lm, texts)
    real = inputs["attention_mask"].bool()
    with torch.no_grad():
        plain = lm.model(**inputs).last_hidden_state
        with capture(lm.model):
            recorded = lm.model(**inputs).last_hidden_state
    return float((plain - recorded)[real].abs().max())
