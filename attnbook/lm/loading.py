"""Moved to :mod:`attnbook.lm.model` (this path is deprecated and kept for old imports)."""

from ..deprecation import moved_module

__getattr__ = moved_module(__name__, "attnbook.lm.model")
