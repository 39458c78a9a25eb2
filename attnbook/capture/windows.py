"""Windowed attention (Swin) as token × token maps of the whole image.

A Swin block shifts its ``H × W`` token grid by ``-shift`` (cyclically), cuts it into windows of
``wh × ww`` tokens (row-major over windows, then within a window) and attends within each window;
the library folds the windows into the batch axis: ``(batch · windows, heads, N, N)`` with
``N = wh·ww``. :func:`scatter` puts every window's weights back at the image positions of its tokens,
``(batch, heads, H·W, H·W)`` with zeros between tokens of different windows, so the batch axis is the
inputs again and a map reads like any other (queries and keys are image tokens in row-major order).
:meth:`WindowGrid.mask` says which cells a query could attend; :func:`gather` is the inverse of
:func:`scatter`, for comparing with the library's own windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UnsupportedModelError

__all__ = ["WindowGrid", "scatter", "gather", "pair"]


def pair(value) -> tuple[int, int]:
    """``(a, a)`` for an int (or a 0-d tensor), the pair itself for a pair."""
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


@dataclass(frozen=True)
class WindowGrid:
    """An ``height × width`` token grid cut into ``window`` windows after a cyclic shift by ``-shift``."""

    height: int
    width: int
    window: tuple[int, int]
    shift: tuple[int, int]

    def __post_init__(self) -> None:
        if self.height % self.window[0] or self.width % self.window[1]:
            raise UnsupportedModelError(
                f"windowed attention: expected a {self.height} × {self.width} token grid divisible by the window "
                f"{self.window[0]} × {self.window[1]}, got one the model pads (padded windows are not recorded)")

    @property
    def tokens(self) -> int:
        return self.height * self.width

    def token_index(self) -> torch.Tensor:
        """(windows, window tokens): the row-major image index of every window position."""
        grid = torch.arange(self.tokens).view(self.height, self.width)
        if any(self.shift):
            grid = torch.roll(grid, shifts=(-self.shift[0], -self.shift[1]), dims=(0, 1))
        wh, ww = self.window
        return grid.view(self.height // wh, wh, self.width // ww, ww).permute(0, 2, 1, 3).reshape(-1, wh * ww)

    def mask(self) -> torch.Tensor:
        """(tokens, tokens) bool: True where query and key fall in the same window."""
        window_of = torch.empty(self.tokens, dtype=torch.long)
        index = self.token_index()
        window_of[index.reshape(-1)] = torch.arange(index.shape[0]).repeat_interleave(index.shape[1])
        return window_of[:, None] == window_of[None, :]


def scatter(weights: torch.Tensor, grid: WindowGrid, batch: int) -> torch.Tensor:
    """``(batch · windows, heads, N, N)`` window weights as ``(batch, heads, tokens, tokens)``."""
    index = grid.token_index().to(weights.device)
    n_windows, n = index.shape
    if weights.shape[0] != batch * n_windows or weights.shape[-1] != n:
        raise UnsupportedModelError(f"windowed attention: expected {batch} × {n_windows} windows of {n} tokens, "
                                    f"got weights of shape {tuple(weights.shape)}")
    heads = weights.shape[1]
    out = weights.new_zeros(batch, heads, grid.tokens, grid.tokens)
    rows = index[:, :, None].expand(n_windows, n, n)
    cols = index[:, None, :].expand(n_windows, n, n)
    out[:, :, rows, cols] = weights.view(batch, n_windows, heads, n, n).transpose(1, 2)
    return out


def gather(maps: torch.Tensor, grid: WindowGrid) -> torch.Tensor:
    """Inverse of :func:`scatter`: ``(batch, heads, tokens, tokens)`` to the library's window layout."""
    index = grid.token_index().to(maps.device)
    n_windows, n = index.shape
    rows = index[:, :, None].expand(n_windows, n, n)
    cols = index[:, None, :].expand(n_windows, n, n)
    picked = maps[:, :, rows, cols]  # (batch, heads, windows, n, n)
    return picked.transpose(1, 2).reshape(-1, maps.shape[1], n, n)
