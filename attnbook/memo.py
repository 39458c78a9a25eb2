"""Analyses kept between executions: a deterministic computation's result, stored in the cache under
a key made of its name, its config and the package's own source::

    key = sha256(canonical_json({"name": name, "config": config, "source": sha256(attnbook/**/*.py)}))[:16]

The build executes every chapter and ``pytest`` executes them again (nbval); a chapter that wraps its
slow, model-only analyses (the causal sections' permutation tests) in :func:`cached` reads in the second
execution what the first computed. A change to any source file of the package changes the key, so a
stored result is never older than the code that computed it; the config carries everything else the
result depends on (settings, seed, the trained run's cache key). ``ATTNBOOK_MEMO=0`` turns it off.

Results are pickled into ``<cache>/memo/<name>/<key>.pkl`` (written atomically; the cache is the
project's own folder, never a downloaded file). A result that cannot be pickled is returned and not
stored; a stored file that cannot be read is computed again and replaced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from .errors import InvalidInputError, bad_argument
from .store import atomic_write, cache_dir

__all__ = ["cached", "cached_map", "enabled", "fingerprint", "memo_path", "source_digest"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$")


def enabled() -> bool:
    """Whether results are stored and read (``ATTNBOOK_MEMO`` is not ``0``)."""
    return os.environ.get("ATTNBOOK_MEMO", "1").strip().lower() not in ("0", "false", "no", "off")


@lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 over the package's Python sources (each file's path relative to the package, then its
    bytes), in sorted order: what every key depends on."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def fingerprint(value) -> str:
    """SHA-256 of what a result depends on when it is not a config: a module's ``state_dict`` (names,
    dtypes, shapes and bytes), tensors and arrays (dtype, shape, bytes), dataclasses (their fields),
    mappings (sorted by key),
    sequences (in order), anything else by its ``repr`` — for configs that name a model or data by
    their content."""
    import numpy as np
    import torch

    digest = hashlib.sha256()

    def feed(x) -> None:
        if isinstance(x, torch.nn.Module):
            feed(x.state_dict())
        elif isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            digest.update(f"tensor {t.dtype} {tuple(t.shape)}".encode())
            digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, np.ndarray):
            a = np.ascontiguousarray(x)
            digest.update(f"array {a.dtype} {a.shape}".encode() + a.tobytes())
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            digest.update(type(x).__qualname__.encode())
            feed({f.name: getattr(x, f.name) for f in dataclasses.fields(x)})
        elif isinstance(x, dict):
            digest.update(b"{")
            for k in sorted(x, key=repr):
                feed(k)
                feed(x[k])
            digest.update(b"}")
        elif isinstance(x, (list, tuple)):
            digest.update(b"[")
            for v in x:
                feed(v)
            digest.update(b"]")
        else:
            digest.update(repr(x).encode() + b"\0")

    feed(value)
    return digest.hexdigest()


def memo_path(name: str, config: dict) -> Path:
    """Where :func:`cached` keeps ``name``'s result for ``config`` (a JSON-serialisable dict)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise bad_argument(InvalidInputError, "name", "lower-case words joined by '/', '-', '_' or '.' (e.g. 'charlm/causal')", name)
    if not isinstance(config, dict):
        raise bad_argument(InvalidInputError, "config", "a dict of everything the result depends on", config)
    try:  # strict JSON: a config value written as its str() (a long tensor's repr is cut short) could collide
        text = json.dumps({"name": name, "config": config, "source": source_digest()}, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise bad_argument(InvalidInputError, "config", "a dict of JSON values (numbers, strings, lists, dicts)", config) from exc
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    return cache_dir() / "memo" / name / f"{key}.pkl"


_MISSING = object()


def _load(name: str, path: Path):
    if not enabled() or not path.is_file():
        return _MISSING
    try:
        with path.open("rb") as f:
            return pickle.load(f)
    except Exception as exc:  # a truncated or foreign file: compute again and replace it
        log.warning("memo %s: stored result unreadable (%s); computing it again", name, type(exc).__name__)
        return _MISSING


def _store(name: str, path: Path, result) -> None:
    if not enabled():
        return
    try:
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # e.g. a closure inside the result: still correct, just not kept
        log.warning("memo %s: result not stored (%s: %s)", name, type(exc).__name__, exc)
        return
    atomic_write(path, lambda p: p.write_bytes(data))


def cached(name: str, config: dict, compute: Callable[[], T]) -> T:
    """``compute()``, or the result stored by an earlier call with the same ``name``, ``config`` and
    package source (module docstring)."""
    if not callable(compute):
        raise bad_argument(InvalidInputError, "compute", "a function of no arguments", compute)
    path = memo_path(name, config)  # validates name and config even when switched off
    result = _load(name, path)
    if result is _MISSING:
        result = compute()
        _store(name, path, result)
    return result


def cached_map(name: str, configs: Sequence[dict], compute: Callable[[list[int]], Sequence[T]]) -> list[T]:
    """One result per config, in order: those stored read back, the others from ``compute(missing)``
    (the indices of the configs without a stored result, in order; it returns their results in that
    order, e.g. as parallel tasks) and stored. ``compute`` is not called when nothing is missing."""
    if not callable(compute):
        raise bad_argument(InvalidInputError, "compute", "a function of the missing indices", compute)
    paths = [memo_path(name, c) for c in configs]
    results = [_load(name, p) for p in paths]
    missing = [i for i, r in enumerate(results) if r is _MISSING]
    if missing:
        fresh = list(compute(missing))
        if len(fresh) != len(missing):
            raise bad_argument(InvalidInputError, "compute", f"a function returning one result per missing index ({len(missing)})",
                               f"{len(fresh)} results", raw=True)
        for i, r in zip(missing, fresh):
            results[i] = r
            _store(name, paths[i], r)
    return results
