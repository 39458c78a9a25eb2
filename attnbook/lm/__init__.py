"""Chapter 1 (reading-attention): pretrained Hugging Face language models — loading, tokens and attention, token importance.

Every room is a submodule (``lm.model``, ``lm.experiment``, ``lm.analysis`` …); the names
below are re-exported for short calls and old imports.
"""

from . import analysis, attention, controls, data, experiment, explorer, figures, importance, model  # noqa: F401 - the rooms, as submodules

from .attention import capture_output_change, encode, lm_attention, padding_mask, reference_attentions
from .data import sentences
from .importance import attention_importance, embed, similarity_relevance
from .model import LanguageModel, load, minilm_path

__all__ = [
    "analysis", "attention", "controls", "data", "experiment", "explorer", "figures", "importance", "model",
    "LanguageModel", "load", "minilm_path", "encode", "padding_mask", "lm_attention", "reference_attentions",
    "capture_output_change", "sentences", "attention_importance", "embed", "similarity_relevance"
]
