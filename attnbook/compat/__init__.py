"""The compatibility matrix: ``capture`` tried on tiny random models of many families (Hugging Face
transformers, timm, torch), each against its own library's reference. ``matrix()`` runs them all; the
tests assert every case, and the book's compatibility page shows the same table."""

from .case import Case, Reference
from .hf_cases import CASES as HF_CASES
from .runner import ATOL, Result, check, matrix, model_state
from .timm_cases import CASES as TIMM_CASES
from .torch_cases import CASES as TORCH_CASES

CASES: list[Case] = [*HF_CASES, *TIMM_CASES, *TORCH_CASES]

__all__ = ["Case", "Reference", "CASES", "HF_CASES", "TIMM_CASES", "TORCH_CASES", "Result", "check", "matrix", "model_state", "ATOL"]
