"""Official ViTime checkpoints (``ViTime_Model.pth``): read safely, load strictly, write.

The official file is a pickled dict ``{"model": state_dict, "args": argparse.Namespace}``. It is
read here with ``torch.load(weights_only=True)`` and only ``argparse.Namespace`` (plus numpy
scalars and dtypes, which a Namespace may hold) allow-listed, so no pickled code runs::

    model = load_official("ViTime_Model.pth")          # ViTime, eval mode, model.args = the args
    save_official(model, model.config, "mini.pth")     # the same format, for our own models

Loading: a leading ``module.`` (DataParallel) is stripped; the config comes from ``args``
(``h``, ``size``, ``expandData``, ``patch_size``, ``modelSize`` or our explicit size fields,
``maxScal``, ``ROPE``, ``lossType``) and is checked against the tensor shapes; the weights are
then loaded strictly (unlike the official fallback, which can silently load nothing). A V1
checkpoint (``ViTimeTokenizer`` blocks, ``RefiningModel``), a multi-channel variant
(``channel_combiner``), a missing/extra key, a shape mismatch, non-finite weights or a file that is
not a ViTime checkpoint at all raise :class:`~attnbook.errors.CheckpointError` saying what was
found and what was expected; a missing file raises :class:`~attnbook.errors.MissingResourceError`.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, InvalidInputError, MissingResourceError, bad_argument
from ..store import atomic_write, torch_load_weights_only
from .model import ViTime, ViTimeConfig

__all__ = [
    "OfficialCheckpoint",
    "read_official",
    "load_official",
    "save_official",
    "config_from_args",
    "config_to_args",
    "strip_module_prefix",
]

EXPECTED = "an official ViTime checkpoint: a dict {'model': MAE state dict (keys 'model.blocks.N....'), 'args': Namespace}"


def _safe_globals() -> list:
    """What ``weights_only`` may rebuild besides tensors: ``argparse.Namespace``, numpy scalars/dtypes."""
    allowed: list = [argparse.Namespace]
    try:
        import numpy as np

        allowed.append(np.dtype)
        allowed.extend({type(np.dtype(t)) for t in (np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_)})
        try:
            from numpy._core.multiarray import scalar  # numpy 2
        except ImportError:  # pragma: no cover - numpy 1
            from numpy.core.multiarray import scalar  # type: ignore[no-redef]
        allowed.append(scalar)
        for name in ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"):  # pickles from numpy 1 and 2
            allowed.append((scalar, name))
    except ImportError:  # pragma: no cover
        pass
    return allowed


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if match:
        return f"it needs the non-allow-listed global {match.group(1)} (refused: unpickling it could run code)"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return f"an unreadable file ({type(exc).__name__}: {lines[0] if lines else 'no detail'})"


# -- args <-> config -----------------------------------------------------------------------------

def _args_dict(args: Any) -> dict:
    if isinstance(args, argparse.Namespace):
        return dict(vars(args))
    if isinstance(args, Mapping):
        return dict(args)
    raise bad_argument(CheckpointError, "args", "an argparse.Namespace or a dict", type(args).__name__, raw=True)


def _plain(value: Any) -> Any:
    """numpy scalars → Python numbers (for config fields)."""
    return value.item() if hasattr(value, "item") and getattr(value, "shape", None) == () else value


def config_from_args(args: Any, *, num_heads: int | None = None) -> ViTimeConfig:
    """A :class:`ViTimeConfig` from official checkpoint ``args`` (Namespace or dict).

    Explicit size fields written by :func:`save_official` (``embed_dim``, ``depth``,
    ``num_heads``, ``decoder_*``, ``mlp_ratio``, ``in_chans``, and ``futureFill``) win; otherwise the official rules
    from ``modelSize`` apply. ``num_heads`` overrides the heads (they are not stored in weights).
    """
    a = _args_dict(args)
    missing = [k for k in ("h", "size", "patch_size") if k not in a]
    if missing:
        raise bad_argument(CheckpointError, "args", "the ViTime fields h, size, patch_size (and modelSize or explicit sizes)", f"args without {missing}", raw=True)
    try:
        expand = int(_plain(a.get("expandData", 1)) or 1)
        size = [int(_plain(s)) for s in a["size"]]
        patch = tuple(int(_plain(p)) for p in a["patch_size"])
        if len(size) != 3 or len(patch) != 2:
            raise ValueError(f"size {size} (3 values expected), patch_size {list(patch)} (2 expected)")
        fields: dict[str, Any] = {
            "h": int(_plain(a["h"])),
            "history_len": size[0] * expand,
            "future_len": size[2] * expand,
            "patch": patch,
            "rope": bool(_plain(a.get("ROPE", False))),
            "output": "sigmoid" if a.get("lossType") == "MSE" else "softmax",
        }
        if a.get("futureFill") is not None:  # written by save_official; the release has no such field
            fields["future_fill"] = str(_plain(a["futureFill"]))
        if a.get("maxScal") is not None:
            fields["max_scal"] = float(_plain(a["maxScal"]))
        if "embed_dim" in a:
            for key in ("embed_dim", "depth", "num_heads", "decoder_embed_dim", "decoder_depth", "decoder_num_heads", "in_chans"):
                if key in a:
                    fields[key] = int(_plain(a[key]))
            if "mlp_ratio" in a:
                fields["mlp_ratio"] = float(_plain(a["mlp_ratio"]))
        elif "modelSize" in a:
            ms = float(_plain(a["modelSize"]))
            e, depth, heads = int(1024 * ms), int(12 * ms), int(16 * ms)
            fields.update(embed_dim=e, depth=depth, num_heads=heads, decoder_embed_dim=int(e / 2), decoder_depth=int(depth / 2), decoder_num_heads=heads)
        else:
            raise ValueError("neither modelSize nor explicit embed_dim/depth/num_heads")
    except (TypeError, ValueError, KeyError) as exc:
        raise bad_argument(CheckpointError, "args", "ViTime hyper-parameters (h, size, patch_size, modelSize)", f"unreadable args ({exc})", raw=True) from exc
    if num_heads is not None:
        fields["num_heads"] = fields["decoder_num_heads"] = num_heads
    try:
        return ViTimeConfig(**fields)
    except InvalidInputError as exc:
        raise CheckpointError(f"args: expected a valid ViTime configuration, got {exc}") from exc


def config_to_args(config: ViTimeConfig, **extra: Any) -> argparse.Namespace:
    """Official-style ``args`` for ``config`` (``size = [history_len, 0, future_len]``, ``expandData = 1``,
    ``modelSize = embed_dim / 1024``) plus our explicit size fields, which the official code ignores."""
    c = config
    args = dict(
        h=c.h,
        size=[c.history_len, 0, c.future_len],
        expandData=1,
        patch_size=[c.patch[0], c.patch[1]],
        modelSize=c.embed_dim / 1024,
        maxScal=float(c.max_scal),
        ROPE=c.rope,
        lossType="MSE" if c.output == "sigmoid" else "EMD",
        dropout=0.0,
        features="M",
        embed_dim=c.embed_dim,
        depth=c.depth,
        num_heads=c.num_heads,
        decoder_embed_dim=c.decoder_embed_dim,
        decoder_depth=c.decoder_depth,
        decoder_num_heads=c.decoder_num_heads,
        mlp_ratio=float(c.mlp_ratio),
        in_chans=c.in_chans,
        futureFill=c.future_fill,
        attnbook_config=c.to_dict(),
    )
    args.update(extra)
    return argparse.Namespace(**args)


# -- the state dict --------------------------------------------------------------------------------

def strip_module_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop one leading ``module.`` (DataParallel) from every key that has it."""
    return {k.removeprefix("module."): v for k, v in state.items()}


def _summary(keys: list[str], limit: int = 6) -> str:
    shown = keys[:limit]
    more = f" + {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{shown}{more}"


def _check_state(state: Any, name: str) -> dict[str, torch.Tensor]:
    if not isinstance(state, Mapping):
        raise bad_argument(CheckpointError, f"{name}['model']", "a state dict (mapping of names to tensors)", type(state).__name__, raw=True)
    state = strip_module_prefix(state)
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise bad_argument(CheckpointError, f"{name}['model']", "tensors under string keys", f"non-tensor entries {_summary([str(k) for k in bad])}", raw=True)
    keys = list(state)
    v1 = [k for k in keys if "ViTimeTokenizer" in k or k.startswith("RefiningModel.")]
    if v1:
        raise CheckpointError(
            f"{name}: expected a current ViTime (MAE) checkpoint with encoder keys 'model.blocks.N.*', got a ViTime V1 checkpoint "
            f"(ViTimeAutoencoder with 'model.ViTimeTokenizer.N.*' blocks and a RefiningModel CNN, e.g. {_summary(v1, 3)}); "
            "V1 (ViTime_V1.pth / ViTime_V2.pth / ViTime_1072.pth) is not supported — use ViTime_Model.pth"
        )
    combiner = [k for k in keys if k.startswith("channel_combiner.")]
    if combiner:
        raise CheckpointError(
            f"{name}: expected the univariate MAE checkpoint, got a multi-channel variant with a ChannelFusionBlock ({_summary(combiner, 3)}), which is not supported"
        )
    if not any(k.startswith("model.") for k in keys) or "model.patch_embed.proj.weight" not in state or "model.pos_embed" not in state:
        raise bad_argument(CheckpointError, name, EXPECTED, f"a state dict with keys {_summary(sorted(keys))}", raw=True)
    nonfinite = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if nonfinite:
        raise bad_argument(CheckpointError, name, "finite weights", f"non-finite values in {_summary(nonfinite)}", raw=True)
    return state


def _shape_facts(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """What the tensors say about the config (heads are not stored)."""
    facts: dict[str, Any] = {}
    w = state["model.patch_embed.proj.weight"]
    if w.dim() == 4:
        facts.update(embed_dim=int(w.shape[0]), in_chans=int(w.shape[1]), patch=(int(w.shape[2]), int(w.shape[3])))
    pos = state["model.pos_embed"]
    if pos.dim() == 3:
        facts["n_tokens"] = int(pos.shape[1])
    for name, prefix in (("depth", "model.blocks."), ("decoder_depth", "model.decoder_blocks.")):
        idx = {int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
        facts[name] = max(idx) + 1 if idx else 0
    d = state.get("model.decoder_embed.weight")
    if d is not None and d.dim() == 2:
        facts["decoder_embed_dim"] = int(d.shape[0])
    return facts


def _compare(config: ViTimeConfig, facts: dict[str, Any], name: str) -> None:
    wanted = {
        "embed_dim": config.embed_dim,
        "in_chans": config.in_chans,
        "patch": config.patch,
        "n_tokens": config.n_tokens,
        "depth": config.depth,
        "decoder_depth": config.decoder_depth,
        "decoder_embed_dim": config.decoder_embed_dim,
    }
    diffs = [f"{k}: args/config give {wanted[k]}, tensors give {facts[k]}" for k in wanted if k in facts and facts[k] != wanted[k]]
    if diffs:
        detail = "; ".join(diffs)
        if "n_tokens" in facts and facts.get("n_tokens") != config.n_tokens:
            detail += f" (n_tokens = 1 + (h/ph)·(W/pw) = 1 + {config.grid_h}·{config.grid_w} from the args)"
        raise CheckpointError(f"{name}: expected tensors matching the checkpoint's configuration, got a mismatch — {detail}")


def _check_against_model(state: dict[str, torch.Tensor], model: ViTime, name: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {_summary(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_summary(unexpected)}")
        raise bad_argument(CheckpointError, name, "exactly the keys of the ViTime model (strict load)", "; ".join(parts), raw=True)
    shapes = [f"{k}: file {tuple(state[k].shape)}, model {tuple(v.shape)}" for k, v in own.items() if tuple(state[k].shape) != tuple(v.shape)]
    if shapes:
        raise bad_argument(CheckpointError, name, "tensor shapes matching the configuration", f"shape mismatches {_summary(shapes, 4)}", raw=True)


# -- reading and loading ---------------------------------------------------------------------------

@dataclass
class OfficialCheckpoint:
    """A checkpoint read and checked: stripped state dict, its args as a dict, the config."""

    state_dict: dict[str, torch.Tensor]
    args: dict | None
    config: ViTimeConfig


def read_official(
    path: str | os.PathLike, *, config: ViTimeConfig | None = None, num_heads: int | None = None, map_location: Any = "cpu"
) -> OfficialCheckpoint:
    """Read and check an official-format checkpoint without building the model.

    ``config`` replaces the one derived from ``args`` (needed when a file has no ``args``);
    ``num_heads`` overrides the heads from ``args``.
    """
    path = Path(path)
    if not path.is_file():
        raise bad_argument(MissingResourceError, "path", "an existing ViTime checkpoint file (e.g. ViTime_Model.pth from the ViTime README)", str(path), raw=True)
    name = path.name
    try:
        ckpt = torch_load_weights_only(path, _safe_globals(), map_location)
    except Exception as exc:  # any failure to unpickle means: not a checkpoint we can read safely
        raise bad_argument(CheckpointError, name, f"{EXPECTED}, readable with weights_only=True", _first_line(exc), raw=True) from exc
    if not isinstance(ckpt, Mapping):
        raise bad_argument(CheckpointError, name, EXPECTED, f"a {type(ckpt).__name__}", raw=True)
    if "model" not in ckpt:
        keys = sorted(str(k) for k in ckpt)
        hint = " (a bare state dict? the official file wraps it as {'model': ..., 'args': ...})" if any(k.startswith(("model.", "module.")) for k in keys) else ""
        raise bad_argument(CheckpointError, name, EXPECTED, f"a dict without 'model', keys {_summary(keys)}{hint}", raw=True)
    state = _check_state(ckpt["model"], name)
    args = _args_dict(ckpt["args"]) if ckpt.get("args") is not None else None
    if config is None:
        if args is None:
            raise bad_argument(CheckpointError, name, "'args' with the ViTime hyper-parameters (or pass config=)", "a checkpoint without 'args'", raw=True)
        config = config_from_args(args, num_heads=num_heads)
    elif not isinstance(config, ViTimeConfig):
        raise bad_argument(InvalidInputError, "config", "a ViTimeConfig or None", type(config).__name__, raw=True)
    elif num_heads is not None:
        config = config.replace(num_heads=num_heads, decoder_num_heads=num_heads)
    _compare(config, _shape_facts(state), name)
    return OfficialCheckpoint(state, args, config)


def load_official(
    path: str | os.PathLike,
    *,
    config: ViTimeConfig | None = None,
    num_heads: int | None = None,
    token_order: str = "raster",
    seed: int | None = None,
    map_location: Any = "cpu",
) -> ViTime:
    """Build a :class:`ViTime` from an official-format checkpoint and load it strictly (eval mode).

    The returned model has ``.config`` and ``.args`` (the checkpoint's args as a dict, or None).
    Token order is raster unless ``token_order="shuffle"`` (official behaviour, seeded by ``seed``).
    """
    ck = read_official(path, config=config, num_heads=num_heads, map_location=map_location)
    name = Path(path).name
    model = ViTime(ck.config, token_order=token_order, seed=seed)
    _check_against_model(ck.state_dict, model, name)
    try:
        model.load_state_dict(ck.state_dict, strict=True)
    except RuntimeError as exc:  # pragma: no cover - the checks above catch what strict loading would
        raise bad_argument(CheckpointError, name, "a state dict that loads strictly", _first_line(exc), raw=True) from exc
    model.args = ck.args
    return model.eval()


def save_official(model: ViTime, config: ViTimeConfig | None, path: str | os.PathLike, **extra_args: Any) -> Path:
    """Write ``{'model': state_dict, 'args': Namespace}`` as the official code does (atomically).

    ``config`` must be the model's config (None: ``model.config``); ``extra_args`` go into the
    Namespace too (plain Python values, so the file stays loadable with ``weights_only=True``).
    """
    if not isinstance(model, ViTime):
        raise bad_argument(InvalidInputError, "model", "a ViTime model", type(model).__name__, raw=True)
    config = model.config if config is None else config
    if not isinstance(config, ViTimeConfig):
        raise bad_argument(InvalidInputError, "config", "a ViTimeConfig or None", type(config).__name__, raw=True)
    if config != model.config:
        raise bad_argument(InvalidInputError, "config", f"the model's config {model.config}", config, raw=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {"model": state, "args": config_to_args(config, **extra_args)}
    return atomic_write(Path(path), lambda p: torch.save(payload, p))
