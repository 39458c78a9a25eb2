"""Try ``capture`` on one :class:`~attnbook.compat.case.Case` the way a researcher would, and say
what held: the weights against the library's own reference, the model's outputs unchanged, every
hook and flag restored after a normal exit and after an exception, or the refusal it expects.

``check(case)`` returns one :class:`Result`; :func:`matrix` runs every case and gives the table the
book shows (one row per family), so nothing in that table is typed by hand.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..capture import capture, find_attention
from ..capture.windows import gather
from .case import Case

__all__ = ["Result", "check", "matrix", "model_state", "ATOL"]

#: largest difference allowed between captured weights (or outputs) and the reference
ATOL = 1e-5


@dataclass
class Result:
    """What one case measured. ``ok`` is True when everything the case expects held."""

    library: str
    family: str
    recorded: str
    expect: str
    ok: bool
    layers: int = 0                 # recorded layers, all kinds
    weights_diff: float = math.nan  # largest |captured − reference|
    outputs_diff: float = math.nan  # largest |output with capture − without| (real tokens)
    restored: bool = False          # hooks and flags as before, after a normal exit and after an exception
    refusal: str = ""               # the error capture raised, for a refused case
    problem: str = ""               # why ``ok`` is False
    note: str = ""
    seconds: float = 0.0


def model_state(model: nn.Module) -> dict:
    """Every hook and every flag capture may touch, per submodule, plus torch's MHA fast-path switch."""
    state: dict[str, Any] = {"mha_fastpath": torch.backends.mha.get_fastpath_enabled()}
    for name, m in model.named_modules():
        config = getattr(m, "config", None)
        state[name] = (tuple(m._forward_hooks), tuple(m._forward_pre_hooks), getattr(m, "fused_attn", None),
                       getattr(m, "record_attention", None), getattr(config, "_attn_implementation", None) if config is not None else None)
    return state


def _call(model: nn.Module, inputs: dict) -> Any:
    kwargs = {k: v for k, v in inputs.items() if k != "args"}
    with torch.no_grad():
        return model(*inputs.get("args", ()), **kwargs)


def _leaves(out: Any, path: str = "") -> list[tuple[str, Any]]:
    """The tensors (and Nones) of a nested output, with their paths: what the caller receives."""
    if isinstance(out, torch.Tensor) or out is None:
        return [(path, out)]
    if hasattr(out, "to_tuple") and hasattr(out, "keys"):  # transformers ModelOutput
        return [leaf for k in out.keys() for leaf in _leaves(out[k], f"{path}.{k}")]
    if isinstance(out, (tuple, list)):
        return [leaf for i, o in enumerate(out) for leaf in _leaves(o, f"{path}[{i}]")]
    if isinstance(out, dict):
        return [leaf for k, o in out.items() for leaf in _leaves(o, f"{path}.{k}")]
    return [(path, type(out).__name__)]


def _outputs_diff(plain: Any, recorded: Any, real: torch.Tensor | None) -> tuple[float, str]:
    """Largest difference between two outputs of the same structure (only real tokens where ``real``
    (batch, positions) is given), or NaN and what differs in structure."""
    a, b = _leaves(plain), _leaves(recorded)
    if [p for p, _ in a] != [p for p, _ in b]:
        return math.nan, f"output structure changed: {[p for p, _ in a]} -> {[p for p, _ in b]}"
    worst = 0.0
    for (path, x), (_, y) in zip(a, b):
        if (x is None) != (y is None) or (isinstance(x, str) and x != y):
            return math.nan, f"{path or 'output'}: {type(x).__name__} -> {type(y).__name__}"
        if not isinstance(x, torch.Tensor):
            continue
        if x.shape != y.shape or x.dtype != y.dtype:
            return math.nan, f"{path or 'output'}: {tuple(x.shape)} {x.dtype} -> {tuple(y.shape)} {y.dtype}"
        if not x.is_floating_point():
            worst = max(worst, float((x != y).any()))
            continue
        if real is not None and x.dim() >= 2 and tuple(x.shape[:2]) == tuple(real.shape):
            x, y = x[real], y[real]
        if x.numel():
            worst = max(worst, float((x.double() - y.double()).abs().max()))
    return worst, ""


def _compare(captured: list[torch.Tensor], reference: list[torch.Tensor], kind: str, grids: list) -> tuple[float, str]:
    """Largest difference per layer; a windowed layer is compared in the library's window layout
    (:func:`~attnbook.capture.windows.gather`), and must be zero between windows."""
    if len(captured) != len(reference):
        return math.nan, f"{kind}: {len(captured)} layers recorded, the reference has {len(reference)}"
    worst = 0.0
    for i, (c, r, grid) in enumerate(zip(captured, reference, grids)):
        if grid is not None:
            outside = float(c.masked_select(~grid.mask()).abs().max()) if not bool(grid.mask().all()) else 0.0
            if outside > 0:
                return math.nan, f"{kind} layer {i}: weight {outside:.2e} between tokens of different windows"
            c = gather(c, grid)
        if tuple(c.shape) != tuple(r.shape):
            return math.nan, f"{kind} layer {i}: shape {tuple(c.shape)}, reference {tuple(r.shape)}"
        worst = max(worst, float((c.double() - r.double()).abs().max()))
    return worst, ""


def _restored(model: nn.Module, inputs: dict, before: dict) -> bool:
    """After an exception inside the block, too."""
    try:
        with capture(model):
            raise KeyError("raised inside the capture block")
    except Exception:  # noqa: BLE001 - ours (KeyError), or a refused model's error on entry, before anything is installed
        pass
    return model_state(model) == before


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The libraries' own warnings about tiny configs and prototype paths, kept off the page while a case runs."""
    logger = logging.getLogger("transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def check(case: Case) -> Result:
    """Run ``case`` (see the module docstring), with the libraries' warnings silenced."""
    with _quiet():
        return _check(case)


def _check(case: Case) -> Result:
    start = time.perf_counter()
    result = Result(case.library, case.name, case.recorded, case.expect, False, note=case.note)
    model, inputs = case.build()
    reference = case.reference(model, inputs) if case.reference is not None else {}  # first: transformers may add recorders of its own
    plain = _call(model, inputs)
    before = model_state(model)
    if case.expect == "refused":
        try:
            with capture(model):
                _call(model, inputs)
            result.problem = "recorded, expected a refusal"
        except Exception as exc:  # noqa: BLE001 - the refusal is what is measured
            result.refusal = f"{type(exc).__name__}: {exc}"
            if case.refusal is not None and not isinstance(exc, case.refusal):
                result.problem = f"refused with {type(exc).__name__}, expected {case.refusal.__name__}"
        result.restored = model_state(model) == before and _restored(model, inputs, before)
        result.ok = not result.problem and result.restored
        result.seconds = time.perf_counter() - start
        return result
    real = case.real_tokens(inputs) if case.real_tokens is not None else None
    if case.outputs_as is not None:
        plain = case.outputs_as(model, inputs)
    kinds = {s.kind for s in find_attention(model)}
    diffs, outs, problems = [], [], []
    try:
        for kind, ref in reference.items():
            with capture(model, kind=kind if len(kinds) > 1 else "all") as cap:
                recorded = _call(model, inputs)
            captured = cap.per_layer()
            result.layers += len(captured)
            diff, problem = _compare(captured, ref, kind, cap.window_grids())
            out_diff, out_problem = _outputs_diff(plain, recorded, real)
            diffs.append(diff)
            outs.append(out_diff)
            problems += [p for p in (problem, out_problem) if p]
    except Exception as exc:  # noqa: BLE001 - an unexpected refusal or crash is a failed case, reported
        problems.append(f"{type(exc).__name__}: {exc}")
    result.weights_diff = max(diffs) if diffs else math.nan
    result.outputs_diff = max(outs) if outs else math.nan
    result.restored = model_state(model) == before and _restored(model, inputs, before)
    if not problems and not result.weights_diff <= ATOL:
        problems.append(f"weights differ from the reference by {result.weights_diff:.2e} (> {ATOL})")
    if not problems and not result.outputs_diff <= ATOL:
        problems.append(f"outputs differ with capture by {result.outputs_diff:.2e} (> {ATOL})")
    if not result.restored:
        problems.append("a hook or flag was left behind")
    result.problem = "; ".join(problems)
    result.ok = not problems
    result.seconds = time.perf_counter() - start
    return result


def matrix(cases: list[Case] | None = None) -> pd.DataFrame:
    """Every case checked: one row per family (library, family, recorded, expected, ok, layers,
    weight and output differences, restored, refusal or problem, note, seconds)."""
    from . import CASES

    return pd.DataFrame([asdict(check(case)) for case in (CASES if cases is None else cases)])
