"""Compact embedding of attention weights in a page: quantise, deflate, base64.

Two encodings of weights ``p ∈ [0, 1]``:

- ``"u8sqrt"`` (default): one byte per weight, ``q = round(255 · √p)``, decoded ``p̂ = (q / 255)²``.
  Square-root companding spends the 256 levels where attention lives (small weights):
  ``|p − p̂| ≤ √p / 255 + 1 / 255²``, so a weight of 0.01 is kept to ±0.0004 and a weight of 1 to ±0.004.
- ``"f16"``: IEEE half precision, little-endian, two bytes per weight (relative error ≤ 2⁻¹¹).

The bytes are zlib-deflated (the browser inflates them with ``DecompressionStream("deflate")``)
and base64-encoded. :func:`decode` is the reference the page's JavaScript is tested against.
"""

from __future__ import annotations

import base64
import zlib

import numpy as np

from ..errors import CorruptDataError, InvalidInputError, bad_argument

__all__ = ["ENCODINGS", "encode", "decode", "max_error", "pack", "unpack", "pack_mask", "unpack_mask"]

ENCODINGS = ("u8sqrt", "f16")
_BYTES = {"u8sqrt": 1, "f16": 2}


def _check(encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise bad_argument(InvalidInputError, "encoding", f"one of {list(ENCODINGS)}", encoding)
    return encoding


def encode(weights: np.ndarray, encoding: str = "u8sqrt") -> bytes:
    """The raw (not yet deflated) bytes of ``weights`` (values in [0, 1]) in ``encoding``, C order."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, 1.0)
    if _check(encoding) == "u8sqrt":
        return np.rint(np.sqrt(w) * 255.0).astype(np.uint8).tobytes()
    return w.astype("<f2").tobytes()


def decode(raw: bytes, encoding: str = "u8sqrt") -> np.ndarray:
    """The float32 weights of :func:`encode`'s bytes (flat)."""
    if _check(encoding) == "u8sqrt":
        q = np.frombuffer(raw, dtype=np.uint8).astype(np.float32) / 255.0
        return q * q
    if len(raw) % 2:
        raise CorruptDataError(f"f16 data: expected an even number of bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype="<f2").astype(np.float32)


def max_error(weights: np.ndarray, encoding: str = "u8sqrt") -> np.ndarray:
    """The documented bound on ``|p − decode(encode(p))|`` for each weight."""
    p = np.clip(np.asarray(weights, dtype=np.float64), 0.0, 1.0)
    if _check(encoding) == "u8sqrt":
        return np.sqrt(p) / 255.0 + 1.0 / 255.0**2
    return np.maximum(p * 2.0**-11, 2.0**-25)


def pack(raw: bytes) -> str:
    """``base64(zlib.compress(raw))``: what the page embeds."""
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def unpack(text: str) -> bytes:
    """Inverse of :func:`pack`; a damaged blob raises :class:`~attnbook.errors.CorruptDataError`."""
    try:
        return zlib.decompress(base64.b64decode(text, validate=True))
    except (ValueError, zlib.error) as exc:
        raise CorruptDataError(f"embedded view data: expected base64 of zlib data, got an unreadable blob ({exc})") from None


def pack_mask(allowed: np.ndarray) -> str:
    """A boolean mask as base64 of its bits (row-major, most significant bit first)."""
    return base64.b64encode(np.packbits(np.asarray(allowed, dtype=bool).ravel())).decode("ascii")


def unpack_mask(text: str, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`pack_mask` for a mask of ``shape``."""
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))
    n = int(np.prod(shape))
    if bits.size < n:
        raise CorruptDataError(f"embedded mask: expected {n} bits, got {bits.size}")
    return bits[:n].astype(bool).reshape(shape)
