"""Results, cache and checkpoint files: atomic writes, round trips, typed errors."""

from __future__ import annotations

import os

import pytest
import torch

from attnbook import store
from attnbook.errors import CheckpointError, InvalidInputError, MissingResourceError


def test_config_hash_is_order_independent():
    assert store.config_hash({"a": 1, "b": [1, 2]}) == store.config_hash({"b": [1, 2], "a": 1})
    assert store.config_hash({"a": 1}) != store.config_hash({"a": 2})
    assert len(store.config_hash({})) == 16


def test_json_round_trip_and_atomic(tmp_path):
    path = store.write_json(tmp_path / "x" / "summary.json", {"t": torch.tensor([1.0, 2.0]), "n": 3})
    assert store.read_json(path) == {"t": [1.0, 2.0], "n": 3}
    with pytest.raises(TypeError):
        store.write_json(tmp_path / "bad.json", {"f": object()})
    assert sorted(os.listdir(tmp_path)) == ["x"]  # nothing half-written left behind


def test_read_json_errors(tmp_path):
    with pytest.raises(MissingResourceError, match="path"):
        store.read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="valid JSON"):
        store.read_json(tmp_path / "bad.json")


def test_corrupt_safetensors(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="safetensors"):
        store.load_tensors(path)
    with pytest.raises(MissingResourceError):
        store.load_tensors(tmp_path / "none.safetensors")


# What a checkpoint's pickle made this process do on loading; anything here means code from the file ran.
CODE_RAN: list[str] = []


def _record_code_ran(tag: str) -> str:
    """The code a malicious checkpoint would run: here it only leaves a trace in ``CODE_RAN``."""
    CODE_RAN.append(tag)
    return tag


class NeedsCode:
    """Pickles as the call ``_record_code_ran("loaded")``: unpickling it has to run that function."""

    def __reduce__(self):
        return (_record_code_ran, ("loaded",))


def test_pth_weights_only(tmp_path):
    """``load_pth`` reads plain tensors, and refuses a pickle that needs code before any of it runs.

    The refused file holds an object whose ``__reduce__`` is a call of a function of this test
    module. No allow-list can cover that function — not torch's own, which grows between
    releases (torch 2.14 admits builtin exceptions, so ``Exception(...)`` no longer needs code) —
    so only ``weights_only=True`` stands between reading the file and running it. The last step
    loads the same file with ``weights_only=False`` and sees the function run: proof that the
    file really needs code, so the refusal checked before it cannot silently stop meaning anything.
    """
    import pickle

    ok = tmp_path / "ok.pth"
    torch.save({"w": torch.ones(2)}, ok)
    assert torch.equal(store.load_pth(ok)["w"], torch.ones(2))

    CODE_RAN.clear()
    evil = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(2), "obj": NeedsCode()}, evil)
    assert CODE_RAN == []  # saving records the call; it does not make it
    with pytest.raises(CheckpointError, match="weights_only") as info:
        store.load_pth(evil)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError), "refused by the weights-only unpickler, not by something else"
    assert CODE_RAN == [], "load_pth ran code from the checkpoint"

    # Sanity check of the test itself, last: the same file, loaded the unsafe way, does run the code.
    try:
        unsafe = torch.load(evil, map_location="cpu", weights_only=False)
        assert CODE_RAN == ["loaded"] and unsafe["obj"] == "loaded", "the refused file must really need code"
    finally:
        CODE_RAN.clear()


def test_unserialisable_config():
    with pytest.raises(InvalidInputError, match="config"):
        store.config_hash({(1, 2): "tuple keys are not JSON"})


def test_results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_RESULTS", str(tmp_path))
    assert store.results_dir("ch", "run").is_dir()


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "deep" / "file.bin"
    store.atomic_write(target, lambda tmp: tmp.write_bytes(b"old"))

    def half_then_fail(tmp):
        tmp.write_bytes(b"half")
        raise ValueError("checksum does not match")

    with pytest.raises(ValueError, match="checksum"):
        store.atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old" and sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


class Settings:
    """A class of this test module: no default allow-list of torch's can know it."""

    def __init__(self, size: int = 0) -> None:
        self.size = size


def test_load_pth_rebuilds_only_what_it_is_allowed(tmp_path):
    path = tmp_path / "settings.pth"
    torch.save({"w": torch.ones(1), "args": Settings(size=3)}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        store.load_pth(path)
    loaded = store.load_pth(path, allowed=[Settings])
    assert loaded["args"].size == 3 and torch.equal(loaded["w"], torch.ones(1))
