"""The registry of model families whose weights path computes other outputs than their default path.

``capture`` records attention by putting a model on the path that materialises the weights (for
Hugging Face models: eager attention, ``output_attentions=True``). For almost every family that path
computes the same function as the fused kernel to float rounding. The entries of :data:`DIVERGENCES`
are the known exceptions: configurations whose weights path gives different outputs, which path is
the wrong one, and the upstream defect. :func:`divergences` finds them inside any module.

Where the entries come from. Each one is a measurement of the compatibility matrix, redone by
``attnbook.compat.falcon``: a forward pass computed by hand from the weights (pure torch) decides
which path is right, and ``paths_table()`` runs every combination of the features that could matter
(``multi_query``, ``num_kv_heads``, ``new_decoder_architecture``, ``parallel_attn``,
``num_ln_in_parallel_attn``, ``alibi``, the attention implementation, left padding). Measured with
transformers 5.24.0 and torch 2.14.1 on CPU in float32; the tests recompute all of it.

* Falcon built with sdpa (``from_pretrained``'s default), rotary positions: the eager branch adds the
  *boolean* mask that ``create_causal_mask`` builds for sdpa to the scores (``modeling_falcon.py``,
  ``F.softmax(attention_scores + attention_mask, ...)``): allowed keys get +1, masked ones +0, so
  future tokens and padding are not masked. ``measured`` is the max abs(Δ) of the last hidden state on
  the ``falcon`` compat case (``attnbook.compat.hf_cases``: seed 0, 2 × 7 tokens, multi-query).
* Falcon built with sdpa, ALiBi: ``FalconModel`` folds ``alibi / sqrt(head_dim)`` into the float
  mask, and the eager branch adds ``alibi`` to the scores again before scaling, so the bias counts
  twice (slopes doubled). ``measured``: the same compat case with ``alibi=True``.

Which features do *not* matter: multi-query, grouped or full key/value heads, the old or new decoder
architecture, parallel or sequential attention and MLP, one or two layer norms, padding — the paths
differ in every combination. A Falcon built with ``attn_implementation="eager"`` has one path only
(no divergence; with ALiBi that single path has the doubled bias too, which no choice of path avoids).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..errors import InvalidInputError, bad_argument

__all__ = ["Divergence", "DIVERGENCES", "TOLERANCE", "divergences"]

#: largest abs(Δ) of outputs between the two paths that counts as float rounding
TOLERANCE = 1e-5

_MISSING = object()


@dataclass(frozen=True)
class Divergence:
    """One configuration of a model family whose weights path changes the model's outputs.

    ``features`` are config attributes and the values that produce the divergence (every one must
    hold); ``_attn_implementation`` is the implementation the model was built with, which
    ``transformers`` sets on the model's config. ``measured`` is the max abs(Δ) of outputs between the
    two paths on the compatibility case, judged against ``tolerance``. ``wrong_path`` names the path
    that computes something else; ``why`` is the upstream defect in one sentence.
    """

    model_type: str
    features: dict[str, Any] = field(hash=False)
    measured: float
    tolerance: float
    wrong_path: str
    why: str
    #: whether the wrong path still attends only to earlier positions (then a generation's rows still
    #: depend only on their prefix, and capture can follow ``generate``; otherwise it refuses to)
    causal: bool = True

    def matches(self, config: Any) -> bool:
        """Whether ``config`` (a ``transformers`` config, or any object with the attributes) is of
        this family and has every one of :attr:`features`."""
        if getattr(config, "model_type", None) != self.model_type:
            return False
        return all(getattr(config, name, _MISSING) == value for name, value in self.features.items())

    def message(self) -> str:
        """One line for a warning: the family, the features, the size of the change and the cause."""
        features = ", ".join(f"{k}={v!r}" for k, v in self.features.items())
        return (f"{self.model_type} ({features}): its {self.wrong_path} path changes the outputs by up to "
                f"{self.measured:.3g} (tolerance {self.tolerance:g}); {self.why}")


DIVERGENCES: tuple[Divergence, ...] = (
    Divergence(
        model_type="falcon",
        features={"_attn_implementation": "sdpa", "alibi": False},
        measured=1.397310733795166,
        tolerance=TOLERANCE,
        wrong_path="eager (output_attentions=True)",
        why=("FalconAttention's eager branch adds the boolean causal mask built for sdpa to the scores "
             "(True=+1, False=+0), so it attends to future tokens and to padding."),
        causal=False,
    ),
    Divergence(
        model_type="falcon",
        features={"_attn_implementation": "sdpa", "alibi": True},
        measured=0.05375421047210693,
        tolerance=TOLERANCE,
        wrong_path="eager (output_attentions=True)",
        why=("FalconAttention's eager branch adds alibi to the scores although FalconModel already folded "
             "alibi / sqrt(head_dim) into the mask, so the ALiBi bias counts twice."),
    ),
)


def divergences(model: nn.Module) -> list[tuple[str, Divergence]]:
    """(qualified module name, divergence) for every outermost transformers PreTrainedModel inside
    ``model`` whose config matches a registered divergence.

    Names are those of ``model.named_modules()`` (``""`` for ``model`` itself). A PreTrainedModel
    inside another one (``FalconForCausalLM.transformer``) shares its config and is not listed again.
    ``transformers`` is not imported here: a module holds a PreTrainedModel only if it already is.
    """
    if not isinstance(model, nn.Module):
        raise bad_argument(InvalidInputError, "model", "a torch.nn.Module", model)
    modeling = sys.modules.get("transformers.modeling_utils")
    if modeling is None:
        return []
    pretrained = modeling.PreTrainedModel
    found: list[tuple[str, Divergence]] = []
    outer: list[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, pretrained) or any(name.startswith(prefix) for prefix in outer):
            continue
        outer.append(f"{name}." if name else "")
        config = getattr(module, "config", None)
        found.extend((name, d) for d in DIVERGENCES if d.matches(config))
    return found
