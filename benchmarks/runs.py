"""Runs on Ray against runs in process: speedup, Ray's start-up, and how a full chapter scales over workers.

1. The same quick runs — chapter 2's forecaster on each of its nine generators (the chapter's own runs,
   :func:`attnbook.timeseries.experiment.chapter_runs`, quick settings, seed 0, one torch thread each) — sequential in process (``ATTNBOOK_RAY=0``) and on a local Ray instance with
   2 workers; each into an empty cache. Prints both wall times, the speedup, and Ray's start-up (the
   time :func:`attnbook.runs.connect` takes), and checks the two caches hold the same weights.
2. Chapter 2's ``full`` profile (9 generators × 5 seeds = 45 forecasters, 2000 steps each): the
   seconds per training step of one full-size run on one thread (a shortened run of ``--steps`` steps,
   in process), the measured wall time of 2 and 4 such shortened runs on 1 and 2 workers, and the
   projected wall time of the whole full profile on W workers, ``ceil(45 / W) × one run``
   (start-up and the driver's writes excluded).

``python benchmarks/runs.py [--steps 40]``; prints ratios, asserts nothing about time.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

from attnbook import profiles, runs
from attnbook.timeseries.data import GENERATORS
from attnbook.timeseries.experiment import RunConfig, chapter_runs, train_run
from attnbook.train import RunCache, TrainConfig, available_cores


def _shortened(settings, seeds, steps: int) -> list[runs.Run]:
    """Chapter 2's runs of ``settings`` cut to ``steps`` training steps (the per-step time of a full run)."""
    out = []
    for seed in seeds:
        for generator in GENERATORS:
            train = settings.train.config(seed)
            train = TrainConfig(**{**train.__dict__, "steps": steps, "warmup": min(train.warmup, steps - 1), "eval_every": steps})
            config = RunConfig(generator, series_len=settings.series_len, train=train)
            out.append(runs.Run("distribution-effects", f"{generator} seed {seed}", seed, train_run, (config,),
                                entries=(RunCache.of("distribution", config.to_dict()),)))
    return out


def _timed(declare, *, ray: bool, cache: Path) -> float:
    """Seconds to execute the runs ``declare()`` returns into the empty ``cache`` (declared after the
    cache is set: a run's entries name their folder when they are made)."""
    os.environ["ATTNBOOK_RAY"] = "1" if ray else "0"
    os.environ["ATTNBOOK_CACHE"] = str(cache)
    run_list = declare()
    if any(r.cached for r in run_list):
        raise RuntimeError(f"{cache} should be empty")
    start = time.perf_counter()
    runs.execute(run_list, progress=False)
    return time.perf_counter() - start


def _weights(cache: Path) -> dict[str, bytes]:
    return {str(p.relative_to(cache)): p.read_bytes() for p in sorted(cache.rglob("model.safetensors"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="steps of the shortened full-size runs")
    args = parser.parse_args()
    cores = available_cores()
    quick, full = profiles.get("distribution-effects", "quick"), profiles.get("distribution-effects", "full")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # 1. quick runs: in process against Ray with 2 workers
        sequential = _timed(lambda: chapter_runs(quick, (0,)), ray=False, cache=tmp / "inline")
        start = time.perf_counter()
        runs.connect(num_cpus=2)
        startup = time.perf_counter() - start
        on_ray = _timed(lambda: chapter_runs(quick, (0,)), ray=True, cache=tmp / "ray")
        same = _weights(tmp / "inline") == _weights(tmp / "ray")
        print(f"machine: {cores} cores")
        print(f"quick runs: {len(GENERATORS)} forecasters (chapter 2, seed 0, 1 thread each)")
        print(f"  in process, sequential: {sequential:.1f} s")
        print(f"  Ray, 2 workers:         {on_ray:.1f} s (+ {startup:.1f} s to start the instance)")
        print(f"  speedup: {sequential / on_ray:.2f}x without start-up, {sequential / (on_ray + startup):.2f}x with it; same weights: {same}")

        # 2. full profile: per-step time, measured scaling, projection
        per_run_short = _timed(lambda: _shortened(full, (0,), args.steps)[:1], ray=False, cache=tmp / "full-1")
        per_step = per_run_short / args.steps
        per_run = per_step * full.train.steps
        n_runs = len(GENERATORS) * profiles.SEEDS["full"]
        print(f"full profile: {n_runs} forecasters x {full.train.steps} steps (batch {full.train.batch_size}, series {full.series_len})")
        print(f"  one run on 1 thread: {per_step * 1e3:.0f} ms/step -> {per_run / 60:.1f} min per run (from {args.steps} steps)")
        measured = {}
        for workers in (1, 2):
            if workers > cores:
                continue
            runs.shutdown()
            runs.connect(num_cpus=workers)
            measured[workers] = _timed(lambda: _shortened(full, range(2 * workers), args.steps)[: 2 * workers], ray=True, cache=tmp / f"full-w{workers}")
            print(f"  measured: {2 * workers} shortened runs on {workers} worker(s): {measured[workers]:.1f} s "
                  f"({measured[workers] / (2 * per_run_short):.2f} x the in-process time of 2 runs)")
        runs.shutdown()
        for workers in (1, 2, 4, 8, 16, n_runs):
            projected = math.ceil(n_runs / workers) * per_run
            print(f"  projected on {workers:>2} workers: {projected / 3600:5.2f} h (speedup {n_runs * per_run / projected:4.1f}x)")


if __name__ == "__main__":
    main()
