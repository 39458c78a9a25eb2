"""The errors attnbook raises on bad input.

Every message names the argument, what was expected and what was given::

    layer: expected an integer in [0, 6), got 9

Each subclass also derives from the matching built-in exception, so ``except ValueError``
still works for code that does not know attnbook.
"""

from __future__ import annotations

from typing import Any


class AttnbookError(Exception):
    """Base class of every error attnbook raises on purpose."""


class InvalidInputError(AttnbookError, ValueError):
    """A value has the wrong shape, dtype, range or content (non-finite, rows not summing to 1 ...)."""


class OutOfRangeError(AttnbookError, IndexError):
    """A layer, head, sample or token index outside the maps it selects from."""


class UnsupportedModelError(AttnbookError, TypeError):
    """A model in which capture finds no attention it knows how to record."""


class NothingCapturedError(AttnbookError, RuntimeError):
    """A forward pass ran inside ``capture`` but no attention weights were recorded."""


class CaptureBudgetError(AttnbookError, MemoryError):
    """Recording would keep more attention weights than ``capture``'s ``max_bytes`` allows (raised before they exist)."""


class UnsupportedGenerationError(UnsupportedModelError):
    """A ``generate`` option under ``capture`` whose passes cannot be assembled into exact maps (raised before
    generation starts; the message names the option and what to use instead)."""


class CaptureChangesOutputsWarning(UserWarning):
    """The path ``capture`` switches a model to (the one that materialises the weights) computes outputs that
    differ from the model's normal path beyond a stated tolerance: the maps describe that path, not the usual one."""


class MissingResourceError(AttnbookError, FileNotFoundError):
    """A model, data set or file that is not where it was looked for (the message says how to get it)."""


class CorruptDataError(AttnbookError, ValueError):
    """A data file whose size or checksum is not the published one (truncated, corrupt, or another file)."""


class UnknownProfileError(AttnbookError, KeyError):
    """A profile name or chapter that ``profiles`` does not define."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(AttnbookError, ValueError):
    """A stored checkpoint that is corrupt, unsafe to unpickle, or does not match its model."""


def describe(value: Any, limit: int = 80) -> str:
    """A short human description of ``value`` for error messages (shape for tensors/arrays)."""
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, (int, float)):
        dtype = getattr(value, "dtype", None)
        return f"{type(value).__name__} of shape {tuple(shape)}" + (f" ({dtype})" if dtype is not None else "")
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bad_argument(
    cls: type[AttnbookError], argument: str, expected: str, got: Any, *, raw: bool = False
) -> AttnbookError:
    """Build ``cls("<argument>: expected <expected>, got <got>")``; ``raw`` keeps ``got`` as given."""
    shown = got if raw else describe(got)
    return cls(f"{argument}: expected {expected}, got {shown}")
