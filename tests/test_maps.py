"""AttentionMaps validation and selection."""

from __future__ import annotations

import pytest
import torch

from attnbook.errors import AttnbookError, InvalidInputError, OutOfRangeError
from attnbook.maps import AttentionMaps
from conftest import random_maps


def test_valid_maps_and_selection():
    maps = random_maps(L=3, B=2, H=4, Q=5, K=5)
    assert maps.shape == (3, 2, 4, 5, 5)
    sub = maps.select(layers=[2, 0], samples=1, heads=[1, 3])
    assert sub.shape == (2, 1, 2, 5, 5)
    assert sub.layer_names == ("layer2", "layer0")
    assert torch.equal(sub.weights[0, 0, 1], maps.head(2, 3, 1))
    assert sub.tokens(0) == list(maps.key_labels[1])
    assert maps.select(layers="layer1").n_layers == 1


def test_flat_labels_broadcast_to_every_sample():
    w = torch.full((1, 2, 1, 3, 3), 1 / 3)
    maps = AttentionMaps(w, query_labels=["a", "b", "c"], key_labels=["a", "b", "c"])
    assert maps.key_labels == (("a", "b", "c"), ("a", "b", "c"))
    assert maps.layer_names == ("layer0",)


def test_padding_rows_are_not_checked():
    mask = torch.ones(1, 3, 3, dtype=torch.bool)
    mask[0, 2, :] = False  # padded query
    mask[0, :, 2] = False  # padded key
    w = torch.zeros(1, 1, 1, 3, 3)
    w[..., :2, :2] = 0.5
    maps = AttentionMaps(w, mask=mask)
    assert maps.valid_queries().tolist() == [[True, True, False]]
    assert maps.n_valid_keys(0) == 2


@pytest.mark.parametrize(
    "weights, kwargs, error, match",
    [
        (torch.full((2, 3, 3), 1 / 3), {}, InvalidInputError, "rank 5"),
        (torch.ones(1, 1, 1, 2, 2, dtype=torch.long), {}, InvalidInputError, "floating-point"),
        (torch.full((1, 1, 1, 2, 2), float("nan")), {}, InvalidInputError, "finite"),
        (torch.full((1, 1, 1, 2, 2), 0.7), {}, InvalidInputError, "summing to 1"),
        (torch.tensor([1.5, -0.5]).expand(1, 1, 1, 2, 2), {}, InvalidInputError, "non-negative"),
        (torch.full((2, 1, 1, 2, 2), 0.5), {"layer_names": ("a",)}, InvalidInputError, "layer_names"),
        (torch.full((1, 1, 1, 2, 2), 0.5), {"mask": torch.ones(1, 2, 3, dtype=torch.bool)}, InvalidInputError, "mask"),
        (torch.full((1, 1, 1, 2, 2), 0.5), {"mask": torch.ones(1, 2, 2)}, InvalidInputError, "mask"),
        (torch.full((1, 1, 1, 2, 2), 0.5), {"key_labels": [["a"]]}, InvalidInputError, "key_labels"),
        ([[0.5, 0.5]], {}, InvalidInputError, "weights"),
    ],
)
def test_bad_maps(weights, kwargs, error, match):
    with pytest.raises(error, match=match):
        AttentionMaps(weights, **kwargs)


def test_weight_on_masked_key_rejected():
    mask = torch.tensor([[[True, False], [True, False]]])
    with pytest.raises(InvalidInputError, match="masked"):
        AttentionMaps(torch.full((1, 1, 1, 2, 2), 0.5), mask=mask)


@pytest.mark.parametrize("call, match", [
    (lambda m: m.head(5, 0), "layer"),
    (lambda m: m.head(0, 9), "head"),
    (lambda m: m.head(0, 0, sample=4), "sample"),
    (lambda m: m.select(heads=[7]), "heads"),
    (lambda m: m.layer_index("missing"), "layer"),
    (lambda m: m.head(0, "1"), "head"),
])
def test_out_of_range(call, match):
    maps = random_maps(L=2, B=2, H=3)
    with pytest.raises(OutOfRangeError, match=match) as info:
        call(maps)
    assert isinstance(info.value, AttnbookError) and isinstance(info.value, IndexError)
    assert "expected" in str(info.value) and "got" in str(info.value)
