"""The shared validators: each accepts what it names, returns it in the working type, and refuses the
rest with ``argument: expected …, got …``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnbook import checks
from attnbook.errors import InvalidInputError


def test_integers():
    assert checks.integer("n", np.int64(3)) == 3 and isinstance(checks.integer("n", np.int64(3)), int)
    assert checks.positive_int("n", 1) == 1 and checks.integer("k", 5, 1, 5) == 5 and checks.integer("o", -2) == -2
    for value, kwargs, expected in ((True, {}, "an integer"), (1.0, {}, "an integer"), (0, {"minimum": 1}, "a positive integer"),
                                    (1, {"minimum": 2}, "an integer >= 2"), (6, {"minimum": 1, "maximum": 5}, r"an integer in \[1, 5\]"),
                                    (9, {"maximum": 8}, "an integer <= 8")):
        with pytest.raises(InvalidInputError, match=rf"^n: expected {expected}, got"):
            checks.integer("n", value, **kwargs)


@pytest.mark.parametrize("fn, good, bad, expected", [
    (checks.real, [0.0, -3, np.float32(2.5)], [math.nan, math.inf, True, "1"], "a finite number"),
    (checks.positive, [1e-9, 3], [0.0, -1, math.inf, False], "a finite number > 0"),
    (checks.non_negative, [0.0, 2], [-1e-9, math.nan], "a finite number >= 0"),
    (checks.probability, [0.0, 1.0, 0.5], [1.01, -0.1, True], r"a probability in \[0, 1\]"),
])
def test_reals(fn, good, bad, expected):
    assert all(isinstance(fn("x", v), float) and fn("x", v) == float(v) for v in good)
    for v in bad:
        with pytest.raises(InvalidInputError, match=rf"^x: expected {expected}, got"):
            fn("x", v)


def test_arrays():
    assert checks.array("a", torch.ones(2, 3), 2).dtype == np.float64
    assert checks.array("a", [[1, 2]], (1, 2)).shape == (1, 2)
    assert np.isnan(checks.array("a", [1.0, np.nan], 1, allow_nan=True)[1])
    assert np.isinf(checks.array("a", [np.inf], finite=False)[0])
    with pytest.raises(InvalidInputError, match=r"^a: expected a 1-D or 2-D array, got shape \(1, 1, 1\)"):
        checks.array("a", np.ones((1, 1, 1)), (1, 2))
    with pytest.raises(InvalidInputError, match=r"^a: expected finite values, got 1 NaN and 2 inf"):
        checks.array("a", [np.nan, np.inf, -np.inf, 0.0])
    with pytest.raises(InvalidInputError, match=r"^a: expected finite values, got 1 inf"):
        checks.array("a", [np.nan, np.inf], allow_nan=True)
    with pytest.raises(InvalidInputError, match="an array of numbers"):
        checks.array("a", ["x"])


def test_choice():
    assert checks.choice("kind", "self", ("self", "cross")) == "self"
    with pytest.raises(InvalidInputError, match=r"^kind: expected one of \['self', 'cross'\], got"):
        checks.choice("kind", "both", ("self", "cross"))


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.integers(-10, 10), st.floats(allow_nan=True, allow_infinity=True), st.booleans()))
def test_positive_int_accepts_exactly_the_positive_integers(value):
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if ok:
        assert checks.positive_int("n", value) == value
    else:
        with pytest.raises(InvalidInputError):
            checks.positive_int("n", value)


def test_odd_positive_int():
    assert checks.odd_positive_int("k", np.int64(5)) == 5 and isinstance(checks.odd_positive_int("k", np.int64(5)), int)
    assert checks.odd_positive_int("k", 1) == 1
    for value in (0, 4, -3, 3.0, True):
        with pytest.raises(InvalidInputError, match=r"^k: expected an odd positive integer, got"):
            checks.odd_positive_int("k", value)


def test_interval():
    assert checks.interval("q", 1, 0.0, 1.0, lo_open=True) == 1.0 and isinstance(checks.interval("q", np.float32(0.5), 0, 1), float)
    assert checks.interval("q", 0, 0, 1) == 0.0
    for value, kwargs, expected in ((0.0, {"lo_open": True}, r"a number in \(0, 1\]"), (1, {"hi_open": True}, r"a number in \[0, 1\)"),
                                    (1.5, {}, r"a number in \[0, 1\]"), (math.nan, {}, r"a number in \[0, 1\]"),
                                    (True, {}, r"a number in \[0, 1\]"), ("0.5", {"lo_open": True, "hi_open": True}, r"a number in \(0, 1\)")):
        with pytest.raises(InvalidInputError, match=rf"^q: expected {expected}, got"):
            checks.interval("q", value, 0, 1, **kwargs)
