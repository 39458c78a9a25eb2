"""Pretrained Hugging Face language models: loading, tokens and attention, token importance."""

from .attention import capture_output_change, encode, lm_attention, padding_mask, reference_attentions
from .corpus import sentences
from .importance import attention_importance, embed, similarity_relevance
from .loading import LanguageModel, load, minilm_path

__all__ = [
    "LanguageModel",
    "load",
    "minilm_path",
    "encode",
    "padding_mask",
    "lm_attention",
    "reference_attentions",
    "capture_output_change",
    "sentences",
    "attention_importance",
    "embed",
    "similarity_relevance",
]
