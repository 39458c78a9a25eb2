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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, InvalidInputError, MissingResourceError, bad_argument
from .maps import AttentionMaps


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


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
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
    return _atomic(Path(path), lambda p: p.write_text(text))


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
    return _atomic(Path(path), lambda p: fig.savefig(p, format="png", dpi=dpi, bbox_inches="tight"))


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
    return _atomic(Path(path), lambda p: save_file(clean, str(p), metadata=metadata))


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


def load_pth(path: str | os.PathLike) -> Any:
    """Read a ``.pth`` from elsewhere with ``weights_only=True``; a pickle that needs code is refused."""
    path = Path(path)
    if not path.is_file():
        raise bad_argument(MissingResourceError, "path", "an existing .pth file", path.name)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise bad_argument(
            CheckpointError, "path", "a checkpoint of plain tensors (loadable with weights_only=True)", f"{path.name}: {str(exc).splitlines()[0]}", raw=True
        ) from exc


def save_maps(path: str | os.PathLike, maps: AttentionMaps) -> Path:
    """Save ``AttentionMaps`` (weights, mask; names and labels in the metadata)."""
    tensors = {"weights": maps.weights}
    if maps.mask is not None:
        tensors["mask"] = maps.mask
    meta = {
        "layer_names": json.dumps(list(maps.layer_names)),
        "query_labels": json.dumps(maps.query_labels),
        "key_labels": json.dumps(maps.key_labels),
        "meta": json.dumps(maps.meta, default=str),
    }
    return save_tensors(path, tensors, meta)


def load_maps(path: str | os.PathLike) -> AttentionMaps:
    """Inverse of :func:`save_maps`."""
    tensors, meta = load_tensors(path)
    if "weights" not in tensors:
        raise bad_argument(CheckpointError, "path", "saved AttentionMaps (a 'weights' tensor)", f"keys {sorted(tensors)}", raw=True)
    return AttentionMaps(
        tensors["weights"],
        tuple(json.loads(meta.get("layer_names", "[]"))),
        json.loads(meta.get("query_labels", "null")),
        json.loads(meta.get("key_labels", "null")),
        tensors.get("mask"),
        json.loads(meta.get("meta", "{}")),
    )


def cached_tensors(name: str, config: dict, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Tensors from ``<cache>/<name>/<config_hash>.safetensors``, computed and stored on a miss."""
    path = cache_dir() / name / f"{config_hash(config)}.safetensors"
    if path.is_file():
        try:
            return load_tensors(path)[0]
        except CheckpointError:
            path.unlink(missing_ok=True)  # corrupt entry: recompute
    tensors = compute()
    save_tensors(path, tensors, {"config": json.dumps(config, sort_keys=True, default=str)})
    return tensors
