"""Moved to :mod:`attnbook.rl.model` (this path is deprecated and kept for old imports)."""

from ..deprecation import moved_module

__getattr__ = moved_module(__name__, "attnbook.rl.model")
