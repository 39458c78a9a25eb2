"""Moved to :mod:`attnbook.timeseries.model` (this path is deprecated and kept for old imports)."""

from ..deprecation import moved_module

__getattr__ = moved_module(__name__, "attnbook.timeseries.model")
