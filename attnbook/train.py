"""Training shared by every chapter: seeding, device, precision and threads, one loop, train-or-load."""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import checks
from .errors import InvalidInputError, bad_argument


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a torch Generator seeded the same."""
    seed = checks.integer("seed", seed, minimum=0)
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
    n = checks.positive_int("n", n)
    torch.set_num_threads(n)
    return n


#: where training can run: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``
DEVICES = ("auto", "cpu", "cuda")


def select_device(prefer: str = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else CPU; ``"cpu"``/``"cuda"`` explicitly (see :data:`DEVICES`)."""
    if prefer not in DEVICES:
        raise bad_argument(InvalidInputError, "prefer", "'auto', 'cpu' or 'cuda'", prefer)
    if prefer == "cuda" and not torch.cuda.is_available():
        raise bad_argument(InvalidInputError, "prefer", "a machine with CUDA for 'cuda'", "no CUDA device", raw=True)
    if prefer == "cpu" or (prefer == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda")


PRECISIONS = ("auto", "fp32", "bf16")


def select_precision(device: torch.device, prefer: str = "auto") -> torch.dtype | None:
    """The autocast dtype for training steps on ``device``, or None for plain fp32.

    ``"auto"``: bfloat16 where the hardware computes in it — a CUDA device that supports it
    (tensor-core matmuls, half the activation memory, fp32's exponent range so no loss scaling)
    or a CPU with bf16 instructions (AVX512-BF16 or AMX, :func:`cpu_has_bf16`) — else fp32;
    ``"bf16"``: bfloat16 on any device; ``"fp32"``: never. Weights, optimiser state and
    evaluation stay fp32 either way. Whether bf16 pays depends on the model:
    ``benchmarks/precision.py`` times it for each chapter.
    """
    if prefer not in PRECISIONS:
        raise bad_argument(InvalidInputError, "precision", f"one of {list(PRECISIONS)}", prefer)
    if prefer == "bf16":
        return torch.bfloat16
    if prefer == "auto":
        native = torch.cuda.is_bf16_supported() if device.type == "cuda" else device.type == "cpu" and cpu_has_bf16()
        return torch.bfloat16 if native else None
    return None


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions that oneDNN uses (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - a build without oneDNN
        return False


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``'s type, or a no-op for ``None``."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


# -- the training loop shared by every chapter ----------------------------------------------------

Batch = tuple[torch.Tensor, ...]
Callback = Callable[[int, nn.Module], None]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings: AdamW, linear warm-up then cosine decay, gradient clipping.

    Learning rate at step ``s`` (of ``steps``)::

        lr(s) = lr · s / warmup                                            s < warmup
        lr(s) = lr · (r + (1 − r) · ½ (1 + cos(π (s − warmup) / (steps − warmup))))   otherwise

    with ``r = min_lr_ratio``. Validation every ``eval_every`` steps (and at step 0 and the end);
    with ``patience`` set, training stops after that many evaluations without a new best, and
    the best weights are restored either way.
    """

    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 50
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 50
    patience: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_every"):
            checks.positive_int(name, getattr(self, name))
        if not isinstance(self.warmup, int) or not 0 <= self.warmup < self.steps:
            raise bad_argument(InvalidInputError, "warmup", f"an integer in [0, steps={self.steps})", self.warmup)
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise bad_argument(InvalidInputError, "lr", "a positive learning rate", self.lr)
        if not 0 <= self.min_lr_ratio <= 1:
            raise bad_argument(InvalidInputError, "min_lr_ratio", "a ratio in [0, 1]", self.min_lr_ratio)
        if self.weight_decay < 0 or self.grad_clip <= 0:
            raise bad_argument(InvalidInputError, "weight_decay/grad_clip", "weight_decay >= 0 and grad_clip > 0", (self.weight_decay, self.grad_clip))
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise bad_argument(InvalidInputError, "patience", "None or a positive integer", self.patience)

    def lr_at(self, step: int) -> float:
        """The learning rate at ``step`` (formula in the class docstring)."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        progress = (step - self.warmup) / max(1, self.steps - self.warmup)
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@dataclass
class History:
    """What a training run measured: losses per evaluation, the best step, wall time."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)  # mean training loss since the previous evaluation (NaN at step 0)
    val_loss: list[float] = field(default_factory=list)
    best_step: int = 0
    best_val: float = math.inf
    stopped_early: bool = False
    seconds: float = 0.0
    device: str = "cpu"  # where the training steps ran
    precision: str = "fp32"  # autocast dtype of the training steps ("fp32": none)
    monitors: dict[str, list[float]] = field(default_factory=dict)  # name -> value at each of ``steps`` (not used for selection)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        return cls(**data)


def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor],
    get_batch: Callable[[torch.Generator], Batch],
    evaluate: Callable[[nn.Module], float],
    config: TrainConfig,
    *,
    callbacks: Sequence[tuple[int, Callback]] = (),
    monitors: Mapping[str, Callable[[nn.Module], float]] | None = None,
    device: torch.device | None = None,
    precision: str = "fp32",
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Train ``model`` in place and return its :class:`History`.

    ``get_batch(generator)`` draws a training batch (seeded by ``config.seed``), ``loss_fn``
    returns a scalar loss for it, ``evaluate(model)`` returns the validation loss (called in eval
    mode without gradients). Each ``(every, callback)`` pair is called as ``callback(step, model)``
    at step 0 and every ``every`` steps, in eval mode without gradients (attention snapshots).
    ``monitors`` ``{name: fn(model) -> float}`` are measured at every evaluation (eval mode, no
    gradients) into ``history.monitors[name]``, beside ``history.steps``; they never choose the
    best step (a learning curve on a test set stays a measurement).
    Batches are drawn on the CPU (so a seed gives the same data on any device) and moved to
    ``device`` (default: the model's); ``evaluate`` and callbacks get the model where it is and
    move their own inputs (:func:`model_device`). ``precision``: see :func:`select_precision`
    (training steps only; evaluation runs in fp32).
    """
    seed_everything(config.seed)
    device = device or model_device(model)
    dtype = select_precision(device, precision)
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history = History(device=device.type, precision="fp32" if dtype is None else "bf16")
    monitors = dict(monitors or {})
    for name, fn in monitors.items():
        if not isinstance(name, str) or not callable(fn):
            raise bad_argument(InvalidInputError, "monitors", "a mapping of names to callables fn(model) -> float", (name, fn), raw=True)
        history.monitors[name] = []
    best_state = None
    stale = 0
    running: list[float] = []
    start = time.perf_counter()

    def checkpoint(step: int) -> bool:
        nonlocal best_state, stale
        val = _quietly(model, evaluate)
        history.steps.append(step)
        history.val_loss.append(float(val))
        history.train_loss.append(float(np.mean(running)) if running else math.nan)
        running.clear()
        for name, fn in monitors.items():
            history.monitors[name].append(float(_quietly(model, fn)))
        if val < history.best_val:
            history.best_val, history.best_step, stale = float(val), step, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        return config.patience is not None and stale >= config.patience

    def snapshots(step: int) -> None:
        for every, callback in callbacks:
            if step % every == 0 or step == config.steps:
                _quietly(model, lambda m: callback(step, m))

    checkpoint(0)
    snapshots(0)
    bar = tqdm(range(1, config.steps + 1), desc=desc, disable=not progress, leave=False, mininterval=1.0)
    for step in bar:
        model.train()
        for group in optimiser.param_groups:
            group["lr"] = config.lr_at(step - 1)
        batch = tuple(t.to(device) for t in get_batch(generator))
        with autocast(device, dtype):
            loss = loss_fn(model, batch)
        if not torch.isfinite(loss):
            raise bad_argument(InvalidInputError, "loss", "a finite training loss", f"{float(loss.detach())} at step {step}", raw=True)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimiser.step()
        running.append(float(loss.detach()))
        snapshots(step)
        if step % config.eval_every == 0 or step == config.steps:
            if checkpoint(step):
                history.stopped_early = True
                break
            bar.set_postfix(train=f"{history.train_loss[-1]:.4f}", val=f"{history.val_loss[-1]:.4f}")
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    history.seconds = time.perf_counter() - start
    return history


def _quietly(model: nn.Module, fn: Callable[[nn.Module], Any]) -> Any:
    """Run ``fn(model)`` in eval mode without gradients, restoring the previous mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return fn(model)
    finally:
        model.train(was_training)


class _Recording:
    """What :class:`RunCache` saves while a run executes as a task (:func:`recording`): file bytes per
    entry (``"<name>/<hash>"``), in the order they were written (the weights last), never on disk."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, bytes]] = {}


_RECORDING: list[_Recording] = []  # the active recording, if any (one per process: a task runs alone in its worker)


@contextlib.contextmanager
def recording():
    """Inside the block, :meth:`RunCache.save` keeps every file in memory instead of writing it, and an
    entry counts as complete only if it was saved inside the block; the recording's ``files`` are what
    :mod:`attnbook.runs` returns from a task for the driver to write. So a run never reads or writes the
    disk of the machine it runs on."""
    rec = _Recording()
    _RECORDING.append(rec)
    try:
        yield rec
    finally:
        _RECORDING.remove(rec)


@dataclass(frozen=True)
class RunCache:
    """One run's entry in the run cache: ``<cache>/<name>/<config_hash>/``.

    It holds ``model.safetensors`` (the weights, written last: its presence marks a complete
    entry), ``history.json`` (the config, the training :class:`History` and any extra fields a
    caller records) and any extra tensor files the caller names. :func:`cached_fit` uses it for
    every chapter's train-or-load; chapter 5 adds its snapshot record and maps as extras. Inside
    :func:`recording` (a run executing as a task) saves go to memory and reads come from there.
    """

    folder: Any  # pathlib.Path

    @classmethod
    def of(cls, name: str, config: dict) -> RunCache:
        """The entry of ``config`` (everything that determines the result) under ``name``."""
        from .store import cache_dir, config_hash

        if _RECORDING:  # a task: the key only, never the worker's cache folder
            from pathlib import Path

            return cls(Path(name) / config_hash(config))
        return cls(cache_dir() / name / config_hash(config))

    @property
    def key(self) -> str:
        """``"<name>/<config hash>"``: the entry's place in any cache."""
        return f"{self.folder.parent.name}/{self.folder.name}"

    def _recorded(self) -> dict[str, bytes] | None:
        return _RECORDING[-1].files.get(self.key) if _RECORDING else None

    def _bytes_or_path(self, filename: str):
        if _RECORDING:
            from .errors import MissingResourceError

            files = self._recorded() or {}
            if filename not in files:
                raise MissingResourceError(f"{self.key}/{filename}: not saved by this run")
            return files[filename]
        return self.folder / filename

    def complete(self, *files: str) -> bool:
        """Whether the weights, the history and every extra file in ``files`` are there."""
        names = ("model.safetensors", "history.json", *files)
        if _RECORDING:
            return all(f in (self._recorded() or {}) for f in names)
        return all((self.folder / f).is_file() for f in names)

    def load_weights(self, model: nn.Module, *, tied: Sequence[str] = ()) -> nn.Module:
        """``model`` with the stored weights (``tied``: parameters shared with another, not stored);
        a mismatch raises :class:`~attnbook.errors.CheckpointError`."""
        from .errors import CheckpointError

        missing, unexpected = model.load_state_dict(self.read_tensors("model.safetensors"), strict=False)
        if sorted(missing) != sorted(tied) or unexpected:
            raise CheckpointError(f"{self.folder.name}: stored weights do not match the model (missing {missing}, unexpected {unexpected})")
        return model

    def read(self) -> tuple[History, dict]:
        """The stored :class:`History` and the record's other fields (``config`` and the extras)."""
        import json

        from .store import read_json

        source = self._bytes_or_path("history.json")
        record = json.loads(source) if isinstance(source, bytes) else read_json(source)
        return History.from_dict(record.pop("history")), record

    def read_tensors(self, filename: str) -> dict[str, torch.Tensor]:
        """An extra tensor file of the entry."""
        from .store import load_tensors

        source = self._bytes_or_path(filename)
        if isinstance(source, bytes):
            from safetensors.torch import load

            return load(source)
        return load_tensors(source)[0]

    def save(self, model: nn.Module, history: History, config: dict, *, record: dict | None = None,
             tensors: dict[str, dict[str, torch.Tensor]] | None = None, tied: Sequence[str] = ()) -> None:
        """Write the extras (``tensors``: file name -> tensors), the history with ``record``'s
        fields, then the weights without the ``tied`` parameters (inside :func:`recording`: into memory)."""
        import json

        from safetensors.torch import save as to_bytes

        from .store import _jsonable

        files: dict[str, bytes] = {}
        for filename, content in (tensors or {}).items():
            files[filename] = to_bytes({k: v.detach().cpu().contiguous() for k, v in content.items()})
        record = {"config": config, "history": history.to_dict(), **(record or {})}
        files["history.json"] = (json.dumps(record, indent=2, default=_jsonable) + "\n").encode()
        files["model.safetensors"] = to_bytes({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k not in tied})
        if _RECORDING:
            _RECORDING[-1].files[self.key] = files
        else:
            write_entry(self.folder, files)


def write_entry(folder, files: Mapping[str, bytes]) -> None:
    """Write one cache entry's ``files`` (name -> bytes) atomically, each file by itself and the
    weights (``model.safetensors``, whose presence marks a complete entry) last."""
    from pathlib import Path

    from .store import atomic_write

    folder = Path(folder)
    for name in sorted(files, key=lambda n: n == "model.safetensors"):
        atomic_write(folder / name, lambda p, data=files[name]: p.write_bytes(data))


def cached_fit(
    name: str,
    config: dict,
    build: Callable[[], nn.Module],
    train_fn: Callable[[nn.Module], History],
    *,
    device: str = "cpu",
) -> tuple[nn.Module, History, bool]:
    """Train-or-load: weights and history cached in the :class:`RunCache` entry of ``config`` under ``name``.

    ``config`` must hold everything that determines the result (model, data, optimisation,
    seed). Training runs on ``device`` (see :func:`select_device`; not part of the key: a model
    trained on a GPU is loaded on a CPU and the other way round); the model is returned on the
    CPU, where the chapters analyse it. Returns ``(model, history, loaded)``; a corrupt or
    mismatched cache entry is retrained.
    """
    from .errors import CheckpointError, MissingResourceError

    dev = select_device(device)
    entry = RunCache.of(name, config)
    if entry.complete():
        try:
            model = entry.load_weights(build())
            return model.eval(), entry.read()[0], True
        except (CheckpointError, MissingResourceError, RuntimeError, KeyError, TypeError):
            pass  # stale or corrupt entry: train again
    model = build()
    history = train_fn(model.to(dev))
    model.cpu()
    entry.save(model, history, config)
    return model.eval(), history, False
