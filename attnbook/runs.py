"""A chapter's trainings as runs, executed as Ray tasks; the driver writes the run cache.

A :class:`Run` is one training — (chapter, label, seed), a module-level ``train`` function and its
arguments, and the cache entries it fills. ``train(*args)`` is the chapter's ordinary train-or-load
(:func:`attnbook.train.cached_fit` or its own :class:`~attnbook.train.RunCache` use). :func:`execute`
runs those whose entries are not complete:

- on **Ray** by default: a local instance on this machine's cores (dashboard and usage reporting off,
  bound to 127.0.0.1, Ray's token authentication as Ray sets it), or the cluster in ``RAY_ADDRESS``;
  one CPU per run (and one GPU where the cluster has GPUs), ``run.threads`` torch threads in it;
- **in process** with ``ATTNBOOK_RAY=0`` (for debugging), through the same code path.

Inside a task every save is recorded in memory (:func:`attnbook.train.recording`); the bytes come back
through Ray's object store and the driver writes them, atomically and the weights last. A worker's disk
is never read or written, so a multi-node cluster works; what a run reads (a corpus) travels in its
arguments. A run that raises is reported with its chapter, label, seed and the worker's traceback
(:class:`RunFailedError`, not retried); a worker that dies is retried (``max_retries``); neither leaves
anything in the cache. A run's result depends only on its arguments and seed: the same bytes in
process, on one worker or on two.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from . import checks
from .errors import AttnbookError, InvalidInputError, bad_argument
from .train import RunCache, recording, seed_everything, write_entry

__all__ = ["Run", "RunFailedError", "RunTiming", "execute", "use_ray", "connect", "shutdown", "shared_instance", "MAX_RETRIES", "map_tasks"]

log = logging.getLogger(__name__)

#: how many times Ray runs a task again after its worker died (a run that raises is never retried)
MAX_RETRIES = 3
#: how many times a local instance is started before giving up (a loaded machine can miss Ray's start-up deadline)
START_ATTEMPTS = 3


class RunFailedError(AttnbookError, RuntimeError):
    """A run raised: the message names its chapter, label and seed and carries the worker's traceback."""


@dataclass(frozen=True)
class Run:
    """One training of a chapter: ``train(*args)`` fills ``entries`` (each complete with its
    ``required`` extra files) and depends only on ``args`` and ``seed``; ``threads`` torch threads."""

    chapter: str
    label: str
    seed: int
    train: Callable[..., Any]
    args: tuple = ()
    entries: tuple[RunCache, ...] = ()
    required: tuple[str, ...] = ()
    threads: int = 1

    def __post_init__(self) -> None:
        checks.integer("seed", self.seed, minimum=0)
        checks.positive_int("threads", self.threads)
        if not callable(self.train) or "<locals>" in getattr(self.train, "__qualname__", ""):
            raise bad_argument(InvalidInputError, "train", "a module-level function (Ray sends it to the worker by name)", self.train)
        if not self.entries or not all(isinstance(e, RunCache) for e in self.entries):
            raise bad_argument(InvalidInputError, "entries", "one or more RunCache entries the run fills", self.entries, raw=True)

    @property
    def name(self) -> str:
        """``"<chapter>: <label>"`` (the label names the seed)."""
        return f"{self.chapter}: {self.label}"

    @property
    def cached(self) -> bool:
        """Whether every entry is complete in the driver's cache."""
        return all(e.complete(*self.required) for e in self.entries)


@dataclass(frozen=True)
class RunTiming:
    """How one run of :func:`execute` went: ``seconds`` of training in its task (0 when ``cached``)
    and where it ran (``"in process"``, a Ray node's address or ``"cache"``)."""

    name: str
    seed: int
    seconds: float
    where: str
    cached: bool


@dataclass
class _Outcome:
    files: dict[str, dict[str, bytes]]
    seconds: float
    where: str
    error: str = ""
    kind: str = field(default="")


def use_ray() -> bool:
    """Whether runs execute on Ray (``ATTNBOOK_RAY`` is not ``0``)."""
    return os.environ.get("ATTNBOOK_RAY", "1").strip() not in ("0", "false", "no", "off")


def _perform(run: Run, where: str) -> _Outcome:
    """Run ``run`` with its own thread count and seed, its saves recorded; errors come back as text."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(run.threads)
    start = time.perf_counter()
    try:
        seed_everything(run.seed)
        with recording() as rec:
            run.train(*run.args)
        return _Outcome(rec.files, time.perf_counter() - start, where)
    except Exception as exc:  # reported to the driver with the traceback; never retried
        return _Outcome({}, time.perf_counter() - start, where, traceback.format_exc(), type(exc).__name__)
    finally:
        torch.set_num_threads(previous)


def _task(run: Run) -> _Outcome:
    """The Ray task: :func:`_perform` on a worker, which names its node (address and id)."""
    import ray

    return _perform(run, f"{ray.util.get_node_ip_address()} node {ray.get_runtime_context().get_node_id()[:8]}")


def connect(num_cpus: int | None = None) -> None:
    """Start (or join) Ray once per process: ``RAY_ADDRESS`` when set, else a local instance on
    ``num_cpus`` (default: this machine's cores) with the dashboard and usage reporting off, bound to
    127.0.0.1. Ray's token authentication stays as Ray sets it (on for local instances since 2.59)."""
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if not address:  # Ray reads this when it is imported: it keeps a local instance on the loopback address
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    if address:
        ray.init(address=address, **quiet)
        return
    from .train import available_cores

    from ray._private import ray_constants

    # loopback only, also when something imported Ray before the variable above was set
    ray_constants.ENABLE_RAY_CLUSTER = os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] not in ("0", "false", "False")
    # no metrics agent: it is what most often keeps a raylet from registering in time on a loaded machine
    os.environ.setdefault("RAY_enable_metrics_collection", "0")
    for attempt in range(1, START_ATTEMPTS + 1):
        try:  # address="local": a new instance even when a cluster started with `ray start` runs on this machine
            ray.init(address="local", num_cpus=num_cpus or available_cores(), include_dashboard=False, **quiet)
            return
        except Exception as error:  # Ray raises plain Exception when the raylet misses its start-up deadline
            if attempt == START_ATTEMPTS or "timed out" not in str(error).lower():
                raise
            log.warning("Ray's local instance did not start in time (attempt %d of %d): %s", attempt, START_ATTEMPTS, error)
            ray.shutdown()


def shutdown() -> None:
    """Leave Ray (a local instance this process started stops)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


@contextlib.contextmanager
def shared_instance():
    """For a process that starts others (``python -m attnbook build``: one kernel per chapter): yields a
    function that, on its first call, starts one local instance and exports its address in
    ``RAY_ADDRESS``, so every kernel started after joins it instead of starting its own; on exit the
    instance stops and ``RAY_ADDRESS`` is restored. Nothing starts with ``ATTNBOOK_RAY=0``, with
    ``RAY_ADDRESS`` already set (a cluster), or when the function is never called."""
    started: list[bool] = []

    def ensure() -> None:
        if started or not use_ray() or os.environ.get("RAY_ADDRESS", "").strip():
            return
        connect()
        import ray

        os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
        started.append(True)

    try:
        yield ensure
    finally:
        if started:
            os.environ.pop("RAY_ADDRESS", None)
            shutdown()


def _write(outcome: _Outcome) -> None:
    from .store import cache_dir

    root = cache_dir()
    for key, files in outcome.files.items():
        write_entry(root / key, files)


def _failure(run: Run, outcome: _Outcome) -> RunFailedError:
    return RunFailedError(f"{run.name} failed (chapter {run.chapter}, seed {run.seed}, {outcome.kind} on {outcome.where}); "
                          f"the worker's traceback:\n{outcome.error}")


def execute(runs: Sequence[Run], *, desc: str | None = None, progress: bool = True,
            max_retries: int = MAX_RETRIES) -> list[RunTiming]:
    """Run every run of ``runs`` that is not cached (module docstring) and write its entries; return
    one :class:`RunTiming` per run, in order. One progress bar over finished runs; each run is logged
    as it ends. The first run that raises stops the rest and raises :class:`RunFailedError` (what
    finished before is in the cache)."""
    runs = list(runs)
    if not all(isinstance(r, Run) for r in runs):
        raise bad_argument(InvalidInputError, "runs", "a sequence of Run", runs, raw=True)
    timings: dict[int, RunTiming] = {i: RunTiming(r.name, r.seed, 0.0, "cache", True) for i, r in enumerate(runs) if r.cached}
    todo = [i for i in range(len(runs)) if i not in timings]
    bar = tqdm(total=len(todo), desc=desc or (runs[0].chapter if runs else "runs"), unit="run", disable=not progress or not todo)

    def finish(i: int, outcome: _Outcome) -> None:
        run = runs[i]
        if outcome.error:
            raise _failure(run, outcome)
        _write(outcome)
        timings[i] = RunTiming(run.name, run.seed, outcome.seconds, outcome.where, False)
        log.info("%s finished in %.1f s (%s)", run.name, outcome.seconds, outcome.where)
        bar.set_postfix_str(run.label, refresh=False)
        bar.update(1)

    try:
        if todo and not use_ray():
            for i in todo:
                finish(i, _perform(runs[i], "in process"))
        elif todo:
            _execute_on_ray(runs, todo, finish, max_retries)
    finally:
        bar.close()
    return [timings[i] for i in range(len(runs))]


def _execute_on_ray(runs: list[Run], todo: list[int], finish: Callable[[int, _Outcome], None], max_retries: int) -> None:
    import ray

    connect()
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    task = ray.remote(_task).options(num_cpus=1, num_gpus=gpus, max_retries=max_retries, retry_exceptions=False)
    pending = {task.remote(runs[i]): i for i in todo}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker died more than max_retries times, or Ray failed
                    outcome = _Outcome({}, 0.0, "ray", f"{exc}", type(exc).__name__)
                finish(i, outcome)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def _call(fn, args: tuple, kwargs: dict, threads: int):
    """One call of :func:`map_tasks`: ``fn(*args, **kwargs)`` with ``threads`` torch threads."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(previous)


def map_tasks(fn, calls: Sequence[tuple[tuple, dict]], threads: int = 1) -> list:
    """``[fn(*args, **kwargs) for args, kwargs in calls]``, as Ray tasks of one CPU and ``threads`` torch threads each
    on the instance the runs use (two at once on 2 cores), in process with ``ATTNBOOK_RAY=0``. What a
    task reads travels in its arguments (no worker reads the disk); results come back in order."""
    if not use_ray() or len(calls) < 2:
        return [_call(fn, a, k, threads) for a, k in calls]
    import ray

    connect()
    remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_call)
    return ray.get([remote.remote(fn, a, k, threads) for a, k in calls])
