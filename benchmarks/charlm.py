"""Char-LM training speed and the cost of attention tracking.

nanoGPT's CPU configuration (4 layers, 4 heads, 128 wide, block 64, batch 12) trained on tiny
Shakespeare through ``attnbook.train.fit``. Runs of ``--steps`` steps alternate between no
callback and the chapter's :class:`AttentionTracker` every ``--every`` steps (8 validation
windows + 8 repeated strings), ``--pairs`` times, so machine drift hits both alike. Prints the
medians and, last, ``charlm_tokens_per_s: <n>`` (without tracking) and
``tracking_overhead: <ratio> (goal <= 1.03)`` (median with / median without).
Needs tiny Shakespeare (``$ATTNBOOK_DATA_DIR``, the cache, or the network).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from attnbook.charlm import GPT, GPTConfig
from attnbook.charlm.experiment import windows
from attnbook.charlm.tracking import AttentionTracker, repeated_batch
from attnbook.data import load_corpus
from attnbook.train import TrainConfig, fit


def one_run(corpus, steps: int, every: int | None, seed: int) -> float:
    """Wall seconds of ``steps`` training steps (evaluation only at the ends, as cheap as possible)."""
    T, B = 64, 12
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=corpus.vocab_size, block_size=T))
    rng = np.random.default_rng(seed)
    val_x, val_y = windows(corpus.val, T, rng.integers(0, len(corpus.val) - T, B))
    callbacks = []
    if every:
        snap_x, _ = windows(corpus.val, T, rng.integers(0, len(corpus.val) - T, 8))
        callbacks = [(every, AttentionTracker(snap_x, repeated_batch(corpus.vocab_size, 8, 32, seed=seed)))]

    def get_batch(g):
        return windows(corpus.train, T, torch.randint(0, len(corpus.train) - T, (B,), generator=g).numpy())

    config = TrainConfig(steps=steps, batch_size=B, lr=1e-3, weight_decay=0.1, warmup=min(100, steps // 2), eval_every=steps, seed=seed)
    start = time.perf_counter()
    fit(model, lambda m, b: m(*b)[1], get_batch, lambda m: float(m(val_x, val_y)[1]), config, callbacks=callbacks, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--every", type=int, default=250, help="snapshot interval (the chapter's)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="1: as each of the chapter's parallel runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = load_corpus("tinyshakespeare")
    one_run(corpus, 20, args.every, seed=99)  # warm-up
    plain, tracked = [], []
    for k in range(args.pairs):
        plain.append(one_run(corpus, args.steps, None, seed=k))
        tracked.append(one_run(corpus, args.steps, args.every, seed=k))
        print(f"pair {k}: without {plain[-1]:.2f} s, with snapshots every {args.every}: {tracked[-1]:.2f} s")
    p, t = statistics.median(plain), statistics.median(tracked)
    print(f"{args.threads} thread(s), {args.steps} steps, batch 12 × 64 tokens: median {p:.2f} s without, {t:.2f} s with tracking")
    print(f"charlm_tokens_per_s: {args.steps * 12 * 64 / p:.0f}")
    print(f"tracking_overhead: {t / p:.3f} (goal <= 1.03)")


if __name__ == "__main__":
    main()
