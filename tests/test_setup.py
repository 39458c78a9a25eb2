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
    assert quick.sentences < full.sentences
    charlm = profiles.get("charlm-evolution", "quick")
    charlm.datasets.clear()
    assert profiles.get("charlm-evolution", "quick").datasets  # a copy
    with pytest.raises(UnknownProfileError, match="profile: expected one of"):
        profiles.get("reading-attention", "medium")
    with pytest.raises(UnknownProfileError, match="chapter"):
        profiles.get("nope", "quick")
    assert "profile: expected" in str(UnknownProfileError("profile: expected x, got y"))


@pytest.mark.parametrize("chapter", ["distribution-effects", "vitime-harmonics", "ad-compression", "charlm-evolution"])
def test_training_chapters_name_their_device_and_precision(chapter):
    quick, full = profiles.get(chapter, "quick").hardware, profiles.get(chapter, "full").hardware
    assert (quick.device, quick.precision) == ("cpu", "fp32")  # quick tables are the same on every machine
    assert full.device == "auto" and full.precision in train.PRECISIONS
    for hardware in (quick, full):
        assert train.select_device(hardware.device).type in ("cpu", "cuda")
    assert train.select_precision(torch.device("cpu"), quick.precision) is None  # quick never trains in bf16


def test_a_wrong_profile_field_fails_when_the_profile_is_built():
    from attnbook.timeseries.experiment import Settings

    with pytest.raises(TypeError, match="step"):
        profiles.Training(step=10, batch_size=4, lr=1e-3, warmup=0, eval_every=5)  # misspelt: steps
    with pytest.raises(InvalidInputError, match="warmup: expected an integer in \\[0, steps=10\\)"):
        profiles.Training(steps=10, batch_size=4, lr=1e-3, warmup=10, eval_every=5)
    with pytest.raises(InvalidInputError, match="device: expected one of"):
        profiles.Hardware("gpu", "fp32")
    good = profiles.get("distribution-effects", "quick")
    with pytest.raises(InvalidInputError, match="n_windows: expected a positive integer, got 0"):
        Settings(**{**vars(good), "n_windows": 0})
    with pytest.raises(InvalidInputError, match="heatmap_samples: expected a positive integer, got 0"):
        Settings(**{**vars(good), "heatmap_samples": 0})
    with pytest.raises(TypeError, match="seeds"):  # training seeds come from profiles.training_seeds, not the settings
        Settings(**{**vars(good), "seeds": 3})


def test_a_training_block_becomes_one_train_config():
    block = profiles.get("vitime-harmonics", "quick").train
    config = block.config(seed=7)
    assert (config.steps, config.batch_size, config.lr, config.weight_decay, config.warmup, config.eval_every, config.seed) == (
        block.steps, block.batch_size, block.lr, block.weight_decay, block.warmup, block.eval_every, 7)
    ed = profiles.get("ad-compression", "quick").ed_training()
    assert ed.steps == 900 and ed.warmup == 50 and ed.lr == profiles.get("ad-compression", "quick").train.lr  # AD's steps (issue 31)
    charlm = profiles.get("charlm-evolution", "quick")  # every corpus trains under every training seed of the chapter
    assert set(charlm.datasets) == {"tinyshakespeare", "text8"} and charlm.threads == 1
    assert {d.train.steps for d in charlm.datasets.values()} == {1200}
    assert all(d.snapshot_every == d.train.eval_every for d in charlm.datasets.values())  # every evaluation has a snapshot
    assert profiles.as_dict(profiles.get("reading-attention", "quick")) == {"sentences": 128, "max_draws": None, "exact_up_to": 0, "clark_items": 512}


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
        with pytest.raises(InvalidInputError, match=r"^n: expected a positive integer, got 0$"):
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
