"""Where a chapter's numbers came from: the machine, the library versions and the wall time.

Every ``summary.json`` carries a ``run`` record (:func:`run_record`, added by
:func:`attnbook.claims.write_summary`), so the findings page and the README can say which profile
produced which number, on what hardware, in how long — read off the run, never typed in.

``seconds`` is the wall time from the kernel's first import of :mod:`attnbook` (a chapter's second
cell) to the summary: the chapter's execution, training included when a model was trained rather
than loaded from the cache. Re-running cells in one kernel keeps counting.
"""

from __future__ import annotations

import platform
import time
from functools import lru_cache
from pathlib import Path

__all__ = ["STARTED", "cpu_name", "gpu_name", "hardware", "run_record"]

#: ``time.perf_counter()`` when this module was first imported (``attnbook/__init__.py`` imports it)
STARTED = time.perf_counter()


@lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`), or ``"unknown CPU"``."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def gpu_name() -> str | None:
    """The first CUDA device's name, or None where there is none."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def hardware() -> str:
    """One line for a table: ``"<GPU> + <n>-core CPU"`` or ``"<n>-core CPU (<model>)"``."""
    from .train import available_cores

    cores = available_cores()
    gpu = gpu_name()
    return f"{gpu} + {cores}-core CPU" if gpu else f"{cores}-core CPU ({cpu_name()})"


def run_record(now: float | None = None) -> dict:
    """``{"hardware", "cpu", "cores", "gpu", "python", "torch", "seconds"}`` for this process;
    ``seconds`` from :data:`STARTED` to ``now`` (default: the current ``perf_counter``)."""
    import torch

    from .train import available_cores

    now = time.perf_counter() if now is None else now
    return {"hardware": hardware(), "cpu": cpu_name(), "cores": available_cores(), "gpu": gpu_name(),
            "python": platform.python_version(), "torch": torch.__version__, "seconds": round(now - STARTED, 1)}
