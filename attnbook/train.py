"""Training support shared by every chapter: seeding, device and thread selection.

(The training loop itself arrives with the first chapter that trains a model.)
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from .errors import InvalidInputError, bad_argument


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a torch Generator seeded the same."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise bad_argument(InvalidInputError, "seed", "a non-negative integer", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def set_threads(n: int | None = None) -> int:
    """Use ``n`` intra-op threads (default: every available core); return the number set."""
    n = available_cores() if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise bad_argument(InvalidInputError, "n", "a positive number of threads", n)
    torch.set_num_threads(n)
    return n


def select_device(prefer: str = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else CPU; ``"cpu"``/``"cuda"`` explicitly."""
    if prefer not in ("auto", "cpu", "cuda"):
        raise bad_argument(InvalidInputError, "prefer", "'auto', 'cpu' or 'cuda'", prefer)
    if prefer == "cuda" and not torch.cuda.is_available():
        raise bad_argument(InvalidInputError, "prefer", "a machine with CUDA for 'cuda'", "no CUDA device", raw=True)
    if prefer == "cpu" or (prefer == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda")
