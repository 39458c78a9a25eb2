"""The shared argument validators: each returns the value as the type the caller works with, or raises
:class:`~attnbook.errors.InvalidInputError` whose message says ``argument: expected …, got …``.

Used by every config and public function, so a wrong argument reads the same everywhere and fails
before any work starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from .errors import InvalidInputError, bad_argument

__all__ = ["integer", "positive_int", "odd_positive_int", "real", "positive", "non_negative", "probability", "interval", "array", "choice"]


def integer(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (not a bool) in ``[minimum, maximum]`` (either bound optional)."""
    if minimum is not None and maximum is not None:
        expected = f"an integer in [{minimum}, {maximum}]"
    elif minimum is not None:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    elif maximum is not None:
        expected = f"an integer <= {maximum}"
    else:
        expected = "an integer"
    if isinstance(value, bool) or not isinstance(value, (Integral, np.integer)):
        raise bad_argument(InvalidInputError, name, expected, value)
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise bad_argument(InvalidInputError, name, expected, value)
    return value


def positive_int(name: str, value: Any) -> int:
    """An integer >= 1."""
    return integer(name, value, minimum=1)


def odd_positive_int(name: str, value: Any) -> int:
    """An odd integer >= 1 (a kernel size with a centre)."""
    if isinstance(value, bool) or not isinstance(value, (Integral, np.integer)) or value < 1 or value % 2 == 0:
        raise bad_argument(InvalidInputError, name, "an odd positive integer", value)
    return int(value)


def real(name: str, value: Any) -> float:
    """A finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)) or not math.isfinite(value):
        raise bad_argument(InvalidInputError, name, "a finite number", value)
    return float(value)


def positive(name: str, value: Any) -> float:
    """A finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)) or not (math.isfinite(value) and value > 0):
        raise bad_argument(InvalidInputError, name, "a finite number > 0", value)
    return float(value)


def non_negative(name: str, value: Any) -> float:
    """A finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)) or not (math.isfinite(value) and value >= 0):
        raise bad_argument(InvalidInputError, name, "a finite number >= 0", value)
    return float(value)


def probability(name: str, value: Any) -> float:
    """A number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)) or not 0.0 <= float(value) <= 1.0:
        raise bad_argument(InvalidInputError, name, "a probability in [0, 1]", value)
    return float(value)


def interval(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite number in ``[lo, hi]``; ``lo_open`` / ``hi_open`` leave that end out (``(lo, hi]``, ``[lo, hi)``)."""
    expected = f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)):
        raise bad_argument(InvalidInputError, name, expected, value)
    value = float(value)
    if not (math.isfinite(value) and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)):
        raise bad_argument(InvalidInputError, name, expected, value)
    return value


def array(name: str, value: Any, ndims: int | Sequence[int] | None = None, *, allow_nan: bool = False, finite: bool = True) -> np.ndarray:
    """``value`` (tensor, array, nested list) as a float64 array of one of the ranks ``ndims`` (any rank
    when None), with finite values (NaN allowed with ``allow_nan``; no check with ``finite=False``);
    the message counts the NaN and inf entries."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().to("cpu").double().numpy()
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise bad_argument(InvalidInputError, name, "an array of numbers", value) from None
    if ndims is not None:
        ranks = (ndims,) if isinstance(ndims, int) else tuple(ndims)
        if out.ndim not in ranks:
            raise bad_argument(InvalidInputError, name, f"a {' or '.join(f'{d}-D' for d in ranks)} array", f"shape {out.shape}", raw=True)
    if finite:
        bad = np.isinf(out) if allow_nan else ~np.isfinite(out)
        if bad.any():
            nan, inf = (0 if allow_nan else int(np.isnan(out).sum())), int(np.isinf(out).sum())
            got = " and ".join(f"{count} {kind}" for count, kind in ((nan, "NaN"), (inf, "inf")) if count)
            raise bad_argument(InvalidInputError, name, "finite values", got, raw=True)
    return out


def choice(name: str, value: Any, options: Iterable[Any]) -> Any:
    """One of ``options``."""
    options = list(options)
    if value not in options:
        raise bad_argument(InvalidInputError, name, f"one of {options}", value)
    return value
