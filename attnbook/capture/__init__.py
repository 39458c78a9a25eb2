"""Record attention weights from any supported model: :func:`capture` (see :mod:`attnbook.capture.core`)
and where a model's attention layers are (:mod:`attnbook.capture.sites`)."""

from .core import DEFAULT_MAX_BYTES, KINDS, OUTPUTS_TOLERANCE, Capture, capture, eager_attention
from .sites import REFUSED, SUPPORTED_FAMILIES, Site, find_attention, unrecordable

__all__ = ["capture", "Capture", "eager_attention", "find_attention", "unrecordable", "Site", "SUPPORTED_FAMILIES", "REFUSED", "DEFAULT_MAX_BYTES", "KINDS", "OUTPUTS_TOLERANCE"]
