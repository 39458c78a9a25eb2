"""Old import paths that keep working: a module that moved leaves a file whose ``__getattr__``
forwards every name to the new module with a :class:`DeprecationWarning` (TransformerLens's shim
for ``HookedRootModule`` is the model)."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["moved_module"]


def moved_module(old: str, new: str) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for the module ``old`` that moved to ``new``."""

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):  # import machinery probing (__path__, __file__ …): not a moved name
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        target = importlib.import_module(new)
        if not hasattr(target, name):
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(f"{old} moved to {new}; import {name} from {new}", DeprecationWarning, stacklevel=2)
        return getattr(target, name)

    return __getattr__
