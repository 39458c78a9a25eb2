"""Time the full metric summary on maps of BERT-base size.

``python benchmarks/metrics.py`` builds random maps of shape (6, 8, 12, 128, 128) (softmax of seeded
random logits), warms up once, then times ``head_summary`` + ``head_diversity`` + ``cross_layer_js``
+ ``rollout`` (median of 3 runs) on 2 CPU threads. The last line it prints is
``metrics_seconds: <s> (goal < 1.0)``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attnbook.maps import AttentionMaps  # noqa: E402
from attnbook.metrics import cross_layer_js, head_diversity, head_summary, rollout  # noqa: E402

SHAPE = (6, 8, 12, 128, 128)
GOAL_S = 1.0
REPEATS = 3


def build_maps(shape=SHAPE, seed: int = 0) -> AttentionMaps:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=gen) * 2.0
    return AttentionMaps(weights=torch.softmax(logits, dim=-1))


def run_all(maps: AttentionMaps) -> dict[str, float]:
    """Run the timed metrics once; return the seconds each took."""
    parts = {}
    for name, fn in (
        ("head_summary", lambda: head_summary(maps)),
        ("head_diversity", lambda: head_diversity(maps)),
        ("cross_layer_js", lambda: cross_layer_js(maps)),
        ("rollout", lambda: rollout(maps)),
    ):
        t0 = time.perf_counter()
        fn()
        parts[name] = time.perf_counter() - t0
    return parts


def main() -> None:
    torch.set_num_threads(2)
    maps = build_maps()
    print(f"maps: {maps!r}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    run_all(maps)  # warm-up
    runs = [run_all(maps) for _ in range(REPEATS)]
    totals = [sum(r.values()) for r in runs]
    for name in runs[0]:
        print(f"  {name:<15} median {statistics.median(r[name] for r in runs):.3f} s")
    print(f"  runs: {', '.join(f'{t:.3f}' for t in totals)} s")
    print(f"metrics_seconds: {statistics.median(totals):.3f} (goal < {GOAL_S})")


if __name__ == "__main__":
    main()
