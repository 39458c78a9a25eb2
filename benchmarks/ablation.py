"""Ablation cost on MiniLM-L6, chapter 1's experiment at its quick-profile size.

One "metric" is chapter 1's paraphrase margin: two forward passes over the chapter's 16
(sentence, paraphrase) pairs. Timed: that plain metric; one metric with one head mean-ablated
(ablate's install/restore + the eager path); single-head effects over all 72 heads
(``head_effects``); and one attention group against 50 random sets (``against_random``).
Prints each time and its ratio to one plain metric, and, last,
``ablation_per_head_overhead: <ratio>`` — one ablated metric over one plain metric.
"""

from __future__ import annotations

import statistics
import time

import torch

from attnbook import lm
from attnbook.intervene import ablate, against_random, head_effects, head_means
from attnbook.lm.analysis import margin_lost


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(2)
    model = lm.load("minilm")
    pairs = lm.data.paraphrase_pairs(16)
    texts = lm.sentences(24)
    metric = margin_lost(model, pairs)
    means = head_means(model.model, lambda m: [m(**lm.encode(model, t)[0]) for t in texts])

    def one_ablated():
        with ablate(model.model, [(2, 3)], how="mean", reference=means):
            metric(model.model)

    metric(model.model), one_ablated()  # warm-up
    plain = statistics.median(seconds(lambda: metric(model.model)) for _ in range(7))
    ablated = statistics.median(seconds(one_ablated) for _ in range(7))
    every_head = seconds(lambda: head_effects(model.model, metric, how="mean", reference=means))
    random_sets = seconds(lambda: against_random(model.model, metric, [(0, 2), (1, 8)], draws=50, how="mean", reference=means))
    print(f"one metric (2 forwards of 16 sentences): {plain * 1e3:.0f} ms")
    print(f"one metric, one head mean-ablated: {ablated * 1e3:.0f} ms (ratio {ablated / plain:.2f})")
    print(f"head_effects, 72 heads + clean: {every_head:.1f} s (ratio {every_head / plain:.1f}; 73 metrics)")
    print(f"against_random, 50 sets + chosen + clean: {random_sets:.1f} s (ratio {random_sets / plain:.1f}; 52 metrics)")
    print(f"ablation_per_head_overhead: {ablated / plain:.2f}")


if __name__ == "__main__":
    main()
