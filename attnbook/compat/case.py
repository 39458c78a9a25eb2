"""One entry of the compatibility matrix: a tiny model built offline, its inputs, and the library's
own reference for its attention weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

#: what a reference returns: per kind ("self", "cross"), the weights of every attention call of one
#: forward pass, in the order the calls happen, each (batch, heads, queries, keys)
Reference = dict[str, list[torch.Tensor]]


@dataclass(frozen=True)
class Case:
    """A model family tried against ``capture``.

    ``build()`` returns the model (random tiny config, seeded, ``eval()``) and the keyword arguments
    of one forward pass (``model(**inputs)``; a positional input goes under the key ``"args"`` as a
    tuple). ``reference(model, inputs)`` computes the weights with the library's own mechanism
    (``output_attentions=True`` under eager attention, timm's ``AttentionExtract``,
    ``need_weights=True``) — or is None where ``expect == "refused"``. ``expect`` is ``"recorded"``
    or ``"refused"`` (capture must raise ``refusal``); ``recorded`` says what is recorded ("self",
    "self + cross", "per call", "windows"); ``note`` says why a case is refused or what differs
    (padded positions), in words for the book's table.
    """

    library: str                       # "transformers", "timm" or "torch"
    name: str                          # the family, e.g. "bert", "t5", "swin"
    build: Callable[[], tuple[nn.Module, dict[str, Any]]]
    reference: Callable[[nn.Module, dict[str, Any]], Reference] | None
    expect: str = "recorded"
    recorded: str = "self"
    refusal: type[Exception] | None = None
    note: str = ""
    #: for inputs with padding: a (batch, positions) bool mask of the real tokens of the model's output;
    #: the eager path that capture switches to may change outputs at padded positions only
    real_tokens: Callable[[dict[str, Any]], torch.Tensor] | None = None
    #: the outputs a recording forward must reproduce, where the library's own weights path differs from
    #: its default path (measured without capture; None: the default forward's outputs)
    outputs_as: Callable[[nn.Module, dict[str, Any]], Any] | None = None
