"""attnbook.memo: a stored result comes back only for the same name, config and package source."""

from __future__ import annotations

import numpy as np
import pytest

from attnbook import memo
from attnbook.errors import InvalidInputError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    monkeypatch.delenv("ATTNBOOK_MEMO", raising=False)
    return tmp_path


class Counter:
    def __init__(self, value):
        self.calls, self.value = 0, value

    def __call__(self):
        self.calls += 1
        return self.value


def test_second_call_reads_the_first_result(cache):
    compute = Counter({"effect": np.arange(3.0), "p": 0.01})
    first = memo.cached("chapter/causal", {"seed": 0}, compute)
    second = memo.cached("chapter/causal", {"seed": 0}, compute)
    assert compute.calls == 1
    assert second["p"] == 0.01 and np.array_equal(second["effect"], first["effect"])
    assert memo.memo_path("chapter/causal", {"seed": 0}).is_file()
    assert memo.memo_path("chapter/causal", {"seed": 0}).parent == cache / "memo" / "chapter" / "causal"


def test_config_and_name_and_source_each_change_the_key(cache, monkeypatch):
    compute = Counter(1)
    memo.cached("a", {"seed": 0}, compute)
    memo.cached("a", {"seed": 1}, compute)
    memo.cached("b", {"seed": 0}, compute)
    assert compute.calls == 3
    before = memo.memo_path("a", {"seed": 0})
    monkeypatch.setattr(memo, "source_digest", lambda: "edited")
    assert memo.memo_path("a", {"seed": 0}) != before  # any change to the package's code is a new key
    memo.cached("a", {"seed": 0}, compute)
    assert compute.calls == 4


def test_source_digest_covers_the_package():
    assert len(memo.source_digest()) == 64 and memo.source_digest() == memo.source_digest()


def test_unreadable_file_is_computed_again_and_replaced(cache):
    path = memo.memo_path("x", {})
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a pickle")
    compute = Counter([1, 2])
    assert memo.cached("x", {}, compute) == [1, 2] and compute.calls == 1
    assert memo.cached("x", {}, compute) == [1, 2] and compute.calls == 1  # the replaced file is read


def test_unpicklable_result_is_returned_and_not_stored(cache):
    result = {"metric": lambda model: model}
    assert memo.cached("y", {}, lambda: result) is result
    assert not memo.memo_path("y", {}).exists()


def test_switched_off(cache, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_MEMO", "0")
    compute = Counter(5)
    memo.cached("z", {}, compute)
    memo.cached("z", {}, compute)
    assert compute.calls == 2 and not memo.memo_path("z", {}).exists()


@pytest.mark.parametrize("name", ["", "Upper", "a//b", "/a", "a b", 3])
def test_bad_name(cache, name):
    with pytest.raises(InvalidInputError, match="name"):
        memo.cached(name, {}, lambda: 1)


def test_bad_config_and_compute(cache):
    with pytest.raises(InvalidInputError, match="config"):
        memo.cached("a", [1], lambda: 1)
    with pytest.raises(InvalidInputError, match="compute"):
        memo.cached("a", {}, 3)
    with pytest.raises(InvalidInputError, match="config"):
        memo.cached("a", {"f": object()}, lambda: 1)


def test_cached_map_computes_only_the_missing(cache):
    asked = []

    def run(configs):
        def compute(missing):
            asked.append(list(missing))
            return [10 * configs[i]["i"] for i in missing]
        return memo.cached_map("m", configs, compute)

    assert run([{"i": 0}, {"i": 1}]) == [0, 10]
    assert run([{"i": 0}, {"i": 2}, {"i": 1}]) == [0, 20, 10]
    assert run([{"i": 2}]) == [20]
    assert asked == [[0, 1], [1]]  # the second call missed only {"i": 2}, at index 1; the third nothing


def test_cached_map_wrong_count(cache):
    with pytest.raises(InvalidInputError, match="one result per missing index"):
        memo.cached_map("m", [{"i": 0}, {"i": 1}], lambda missing: [1])
    with pytest.raises(InvalidInputError, match="compute"):
        memo.cached_map("m", [{}], None)


def test_fingerprint_follows_content():
    import torch

    a = torch.nn.Linear(3, 2)
    b = torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert memo.fingerprint(a) == memo.fingerprint(b)  # same weights, another object
    with torch.no_grad():
        b.weight[0, 0] += 1e-6
    assert memo.fingerprint(a) != memo.fingerprint(b)
    assert memo.fingerprint(torch.zeros(2, 3)) != memo.fingerprint(torch.zeros(3, 2))  # the shape counts
    assert memo.fingerprint(torch.zeros(2)) != memo.fingerprint(torch.zeros(2, dtype=torch.float64))
    assert memo.fingerprint(np.arange(3)) == memo.fingerprint(np.arange(3))
    assert memo.fingerprint({"b": 1, "a": [1, 2]}) == memo.fingerprint({"a": [1, 2], "b": 1})
    assert memo.fingerprint([1, 2]) != memo.fingerprint([2, 1])
    assert memo.fingerprint(torch.zeros(0)) != memo.fingerprint(torch.zeros(1))


def test_fingerprint_reads_dataclass_fields_not_their_repr():
    import dataclasses

    import torch

    @dataclasses.dataclass
    class Data:
        x: torch.Tensor

    a, b = torch.zeros(2000), torch.zeros(2000)
    b[1000] = 1.0  # the middle of a long tensor: its repr elides it
    assert repr(Data(a)) == repr(Data(b))
    assert memo.fingerprint(Data(a)) != memo.fingerprint(Data(b))
