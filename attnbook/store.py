"""Results folders and the run cache: JSON + safetensors, written atomically.

Every file is written to a temporary name in its folder and renamed into place, so a crash
never leaves half a file behind. Cached runs are keyed by a hash of their config::

    key = sha256(canonical_json(config))[:16]
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, InvalidInputError, MissingResourceError, bad_argument


def cache_dir() -> Path:
    """``$ATTNBOOK_CACHE`` or ``~/.cache/attnbook`` (created)."""
    path = Path(os.environ.get("ATTNBOOK_CACHE") or Path.home() / ".cache" / "attnbook").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def project_root() -> Path:
    """The checkout holding the package (its ``pyproject.toml``), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def results_dir(chapter: str, run: str = "") -> Path:
    """``results/<chapter>/<run>/`` under ``$ATTNBOOK_RESULTS`` or the project root (created)."""
    base = Path(os.environ.get("ATTNBOOK_RESULTS") or project_root() / "results")
    path = base / chapter / run if run else base / chapter
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_hash(config: dict) -> str:
    """First 16 hex digits of the SHA-256 of the config as canonical JSON."""
    try:
        text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError) as exc:
        raise bad_argument(InvalidInputError, "config", "a JSON-serialisable dict", config) from exc
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Write ``path`` through ``write(temporary)`` and rename the temporary over it only when ``write``
    returned: a failed or interrupted write (an exception inside ``write``, such as a checksum that does
    not match) leaves neither a half-written file nor the temporary behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n"
    return atomic_write(Path(path), lambda p: p.write_text(text))


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return value.name
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_figure(path: str | os.PathLike, fig: Any, dpi: int = 100) -> Path:
    """Save a matplotlib figure as PNG, atomically."""
    return atomic_write(Path(path), lambda p: fig.savefig(p, format="png", dpi=dpi, bbox_inches="tight"))


def read_json(path: str | os.PathLike) -> Any:
    """Read JSON; a missing file raises ``MissingResourceError``, a corrupt one ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise bad_argument(MissingResourceError, "path", "an existing JSON file", path.name)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise bad_argument(CheckpointError, "path", "valid JSON", f"{path.name} ({exc.msg})", raw=True) from exc


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    """Save tensors as safetensors, atomically (tensors are made contiguous and moved to CPU)."""
    from safetensors.torch import save_file

    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return atomic_write(Path(path), lambda p: save_file(clean, str(p), metadata=metadata))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load a safetensors file → (tensors, metadata); errors are typed."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise bad_argument(MissingResourceError, "path", "an existing safetensors file", path.name)
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise bad_argument(CheckpointError, "path", "a valid safetensors file", f"{path.name} ({exc})", raw=True) from exc


def torch_load_weights_only(path: str | os.PathLike, allowed: Sequence[Any] = (), map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with ``allowed`` added to what it may rebuild (classes, or
    ``(class, "module.name")`` pairs for pickles that name a class by another path); raises torch's own
    errors (a pickle that needs code: ``pickle.UnpicklingError``)."""
    allowed = list(allowed)
    if not allowed:
        return torch.load(path, map_location=map_location, weights_only=True)
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location=map_location, weights_only=True)
    except TypeError:  # a torch without (class, name) pairs
        with torch.serialization.safe_globals([g for g in allowed if not isinstance(g, tuple)]):
            return torch.load(path, map_location=map_location, weights_only=True)


def load_pth(path: str | os.PathLike, allowed: Sequence[Any] = ()) -> Any:
    """Read a ``.pth`` from elsewhere with ``weights_only=True`` (plus ``allowed``, see
    :func:`torch_load_weights_only`); a pickle that needs code is refused with ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise bad_argument(MissingResourceError, "path", "an existing .pth file", path.name)
    try:
        return torch_load_weights_only(path, allowed)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise bad_argument(
            CheckpointError, "path", "a checkpoint of plain tensors (loadable with weights_only=True)", f"{path.name}: {str(exc).splitlines()[0]}", raw=True
        ) from exc
