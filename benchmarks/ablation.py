"""What the causal sections cost: per chapter, forwards per second, null draws actually used after
sequential stopping, and the causal section's total time against the chapter's budget.

Two parts:

1. **Each chapter's causal section, as it ran** — every experiment chapter times its causal section on
   every training seed and writes ``causal_cost`` (``seed, seconds, forwards, draws``) into its summary.
   This reads those records from ``results/<chapter>/<profile>/summary.json`` (run the chapters first:
   ``python -m attnbook build``, or ``--run`` here to execute them now) and prints per chapter: seeds,
   forwards (metric calls), forwards per second, null draws used (per seed), the section's seconds and
   its share of the chapter budget of DESIGN.md (4 min, the char-LM chapter 6 min, quick, 2-core CPU).
2. **The ablation overhead** — on MiniLM-L6, one damage metric with and without one head
   mean-ablated (ablate's install/restore and the eager path), and one :func:`head_set_test` of a
   layer-matched pair sized for a family of 2, timed.

Last line: ``largest_causal_share_of_budget: <ratio>``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch

from attnbook.chapters import EXPERIMENTS
from attnbook.store import read_json, results_dir

#: each chapter's wall-time budget on a 2-core CPU at quick (DESIGN.md), seconds
BUDGETS = {c.slug: (360.0 if c.slug == "charlm-evolution" else 240.0) for c in EXPERIMENTS}


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def chapter_costs(profile: str) -> float:
    """Print each chapter's causal cost from its summary; return the largest share of a budget."""
    worst = 0.0
    print(f"{'chapter':<22} {'seeds':>5} {'forwards':>8} {'fwd/s':>7} {'draws per seed':<22} {'seconds':>8} {'of budget':>9}")
    for chapter in EXPERIMENTS:
        path = results_dir(chapter.slug, profile) / "summary.json"
        if not path.is_file():
            print(f"{chapter.slug:<22} no summary (run: python -m attnbook run {chapter.number:02d})")
            continue
        cost = read_json(path).get("causal_cost") or []
        if not cost:
            print(f"{chapter.slug:<22} no causal_cost recorded")
            continue
        total = sum(c["seconds"] for c in cost)
        forwards = sum(c["forwards"] for c in cost)
        share = total / BUDGETS[chapter.slug]
        worst = max(worst, share)
        draws = " ".join(str(c["draws"]) for c in cost)
        print(f"{chapter.slug:<22} {len(cost):>5} {forwards:>8} {forwards / total:>7.1f} {draws:<22} {total:>8.1f} {share:>9.2f}")
    return worst


def minilm_overhead() -> None:
    from attnbook import lm
    from attnbook.intervene import ablate, head_means, head_set_test
    from attnbook.lm.analysis import margin_lost

    model = lm.load("minilm")
    selection, test = lm.data.split_items(lm.data.role_items(128))  # chapter 1's quick items: 64 selection, 64 test
    metric = margin_lost(model, test)  # role margin lost per test item
    means = head_means(model.model, lambda m: [m(**lm.encode(model, i.source)[0]) for i in selection])

    def one_ablated():
        with ablate(model.model, [(2, 3)], how="mean", reference=means):
            metric(model.model)

    metric(model.model), one_ablated()  # warm-up
    plain = statistics.median(seconds(lambda: metric(model.model)) for _ in range(7))
    ablated = statistics.median(seconds(one_ablated) for _ in range(7))
    result = {}
    test = seconds(lambda: result.setdefault("t", head_set_test(model.model, metric, [(0, 2), (1, 8)], how="mean", reference=means,
                                                                   family=2)))
    t = result["t"].result
    print(f"MiniLM: one metric (3 × 64 sentences) {plain * 1e3:.0f} ms; one head mean-ablated {ablated * 1e3:.0f} ms "
          f"(ablation_per_head_overhead: {ablated / plain:.2f})")
    print(f"MiniLM: head_set_test of a layer-matched pair, family of 2: {t.draws} of {t.space - 1} sets drawn "
          f"({'stopped early' if t.stopped else 'all allowed draws'}), {test:.1f} s, {(t.draws + 2) / test:.1f} forwards/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--run", action="store_true", help="execute the experiment chapters first (python -m attnbook run …)")
    parser.add_argument("--no-minilm", action="store_true", help="skip the MiniLM overhead part")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.run:
        subprocess.run([sys.executable, "-m", "attnbook", "run", *[f"{c.number:02d}" for c in EXPERIMENTS], "-p", "profile", args.profile],
                       check=True)
    worst = chapter_costs(args.profile)
    if not args.no_minilm:
        minilm_overhead()
    print(f"largest_causal_share_of_budget: {worst:.2f}")


if __name__ == "__main__":
    main()
