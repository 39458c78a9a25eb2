"""The locked environment: requirements.txt applies constraints.txt, the lock pins every package exactly,
torch and torchvision are a matched PyPI pair, and the environment running the tests is the locked set."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"constraints.txt: every line pins one package exactly (name==version), got {line!r}"
        pins[_canonical(match[1])] = match[2]
    return pins


def _requirements() -> list[str]:
    names = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.append(_canonical(re.split(r"[<>=!~\[; ]", line)[0]))
    return names


def test_requirements_apply_the_lock():
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert "-c constraints.txt" in lines
    lock = _lock()
    unlocked = [name for name in _requirements() if name not in lock]
    assert not unlocked, f"in requirements.txt but not locked in constraints.txt: {unlocked}"
    assert "attnbook" not in lock  # the package itself comes from `-e .`, never from the lock


def test_torch_and_torchvision_are_a_matched_pair_from_pypi():
    lock = _lock()
    torch_v, vision_v = lock["torch"], lock["torchvision"]
    assert "+" not in torch_v and "+" not in vision_v, "a local build (such as 2.13.0+cpu) is not a PyPI release"
    major, minor = (int(x) for x in torch_v.split(".")[:2])
    v_major, v_minor = (int(x) for x in vision_v.split(".")[:2])
    assert (major, v_major) == (2, 0) and v_minor == minor + 15, f"torchvision {vision_v} is not built for torch {torch_v}"


def test_the_running_environment_is_the_locked_set():
    """Every locked package that is installed has the locked version: the tests ran on the tested set."""
    wrong = {}
    for name, version in _lock().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # platform-specific wheels (CUDA libraries) are absent elsewhere
        if installed != version:
            wrong[name] = f"locked {version}, installed {installed}"
    assert not wrong, f"this environment is not the locked one (pip install -r requirements.txt): {wrong}"
    for name in _requirements():
        metadata.version(name)  # every requirement is installed (PackageNotFoundError otherwise)
