"""profiles, train helpers, errors and the command line."""

from __future__ import annotations

import pytest
import torch

from attnbook import __main__ as cli
from attnbook import profiles, train
from attnbook.errors import AttnbookError, InvalidInputError, UnknownProfileError, bad_argument


def test_profiles():
    quick = profiles.get("reading-attention", "quick")
    full = profiles.get("reading-attention", "full")
    assert quick["sentences"] < full["sentences"]
    quick["sentences"] = -1
    assert profiles.get("reading-attention", "quick")["sentences"] > 0  # a copy
    with pytest.raises(UnknownProfileError, match="profile: expected one of"):
        profiles.get("reading-attention", "medium")
    with pytest.raises(UnknownProfileError, match="chapter"):
        profiles.get("nope", "quick")
    assert "profile: expected" in str(UnknownProfileError("profile: expected x, got y"))


@pytest.mark.parametrize("chapter", ["distribution-effects", "vitime-harmonics", "ad-compression", "charlm-evolution"])
def test_training_chapters_name_their_device_and_precision(chapter):
    quick, full = profiles.get(chapter, "quick"), profiles.get(chapter, "full")
    assert (quick["device"], quick["precision"]) == ("cpu", "fp32")  # quick tables are the same on every machine
    assert full["device"] == "auto" and full["precision"] in train.PRECISIONS
    for settings in (quick, full):
        assert train.select_device(settings["device"]).type in ("cpu", "cuda")
    assert train.select_precision(torch.device("cpu"), quick["precision"]) is None  # quick never trains in bf16


def test_seed_everything_is_deterministic():
    train.seed_everything(3)
    a = torch.rand(3)
    train.seed_everything(3)
    assert torch.equal(a, torch.rand(3))
    for bad in (-1, 1.5, True):
        with pytest.raises(InvalidInputError, match="seed"):
            train.seed_everything(bad)


def test_threads_and_device():
    old = torch.get_num_threads()
    try:
        assert train.set_threads(1) == 1 and torch.get_num_threads() == 1
        with pytest.raises(InvalidInputError, match="threads"):
            train.set_threads(0)
    finally:
        torch.set_num_threads(old)
    assert train.select_device("cpu").type == "cpu"
    assert train.select_device().type in ("cpu", "cuda")
    with pytest.raises(InvalidInputError, match="prefer"):
        train.select_device("tpu")


def test_error_message_format():
    err = bad_argument(InvalidInputError, "k", "an integer >= 1", 0)
    assert str(err) == "k: expected an integer >= 1, got 0"
    assert isinstance(err, AttnbookError) and isinstance(err, ValueError)


def test_cli_chapter_resolution():
    names = [p.stem for p in cli.chapters()]
    assert names[0] == "01-reading-attention"
    for alias in ("1", "01", "reading-attention", "01-reading-attention", "book/01-reading-attention.ipynb"):
        assert cli.resolve_chapters([alias])[0].stem == "01-reading-attention"
    with pytest.raises(InvalidInputError, match="chapter"):
        cli.resolve_chapters(["99"])


def test_cli_parameter_typing():
    assert cli.typed("3") == 3 and cli.typed("0.5") == 0.5 and cli.typed("True") is True
    assert cli.typed("None") is None and cli.typed("full") == "full" and cli.typed("[1, 2]") == [1, 2]


def test_cli_rejects_unknown_chapter(capsys):
    assert cli.main(["run", "no-such-chapter"]) == 2
    assert "chapter: expected one of" in capsys.readouterr().err
