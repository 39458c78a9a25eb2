"""Chapter 3 over training seeds: each seed's pretraining as a run, the overlap of analysis with training,
the checks over seeds and the prose helpers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from attnbook import runs
from attnbook.claims import AcrossSeeds
from attnbook.errors import InvalidInputError
from attnbook.profiles import CPU_FP32, Training
from attnbook.registry import spec
from attnbook.vitime import experiment, realts, seeds

TINY = experiment.Settings(preset="strip", train=Training(steps=2, batch_size=2, lr=1e-3, warmup=0, eval_every=1), val_size=2, emd=0.2,
                           future_fill="seasonal average", hardware=CPU_FP32)
DATA = realts.RealTSConfig()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    monkeypatch.setenv("ATTNBOOK_RAY", "0")
    return tmp_path


def test_a_seeds_run_fills_the_entry_pretrained_reads_and_validation_is_the_same_for_every_seed(cache):
    run_list = seeds.pretraining_runs(TINY, DATA, (0, 1))
    assert [r.seed for r in run_list] == [0, 1] and all(r.chapter == "vitime-harmonics" and not r.cached for r in run_list)
    assert run_list[0].entries[0].key != run_list[1].entries[0].key  # the seed is in the key
    timings = runs.execute(run_list, progress=False)
    assert all(r.cached for r in run_list) and [t.seed for t in timings] == [0, 1] and not any(t.cached for t in timings)
    m0, h0, loaded0 = experiment.pretrained(TINY, DATA, 0, progress=False)
    m1, h1, loaded1 = experiment.pretrained(TINY, DATA, 1, progress=False)
    assert loaded0 and loaded1
    # the validation series are fixed: the random initial weights differ, so the losses differ, but both keys name one val_seed
    keys = [realts.pretrain_key(TINY.model, TINY.mapping, DATA, TINY.train.config(s), val_size=2, val_seed=experiment.VALIDATION_SEED)
            for s in (0, 1)]
    assert keys[0]["val_seed"] == keys[1]["val_seed"] == experiment.VALIDATION_SEED
    assert h0.val_loss != h1.val_loss
    assert "val_seed" not in realts.pretrain_key(TINY.model, TINY.mapping, DATA, TINY.train.config(0))  # the old default key stays


def test_execute_and_analyse_analyses_each_seed_once_in_order(cache):
    run_list = seeds.pretraining_runs(TINY, DATA, (0, 1))
    seen = []

    def analyse(seed, prepared):
        assert prepared == "fixed" and run_list[seed].cached
        seen.append(seed)
        return seed * 10

    timings, prepared, out = seeds.execute_and_analyse(run_list, analyse, prepare=lambda: "fixed")
    assert prepared == "fixed" and out == {0: 0, 1: 10} and sorted(seen) == [0, 1] and len(timings) == 2
    timings, _, again = seeds.execute_and_analyse(run_list, analyse, prepare=lambda: "fixed")  # cached: analysed at once
    assert again == out and all(t.cached for t in timings)
    with pytest.raises(InvalidInputError, match="one run per seed"):
        seeds.execute_and_analyse(run_list + run_list[:1], analyse)


def test_a_failing_run_raises_in_the_caller(cache, monkeypatch):
    bad = runs.Run("vitime-harmonics", "broken seed 0", 0, seeds.train_pretrained, (TINY, "not a RealTSConfig", 0, None),
                   entries=seeds.pretraining_run(TINY, DATA, 0).entries)
    with pytest.raises(runs.RunFailedError, match="broken seed 0"):
        seeds.execute_and_analyse([bad], lambda s, p: s)


def test_the_checks_read_the_worst_seed():
    def result(fell, contrast, ratio):
        history = SimpleNamespace(best_val=fell, val_loss=[1.0])
        return SimpleNamespace(history=history, rand1=SimpleNamespace(contrast=np.array([contrast, 1.0])), round_trip=0.0, shuffle_diff=0.0,
                               error_ratio=ratio)

    good = seeds.seed_checks([result(0.5, 1.1, 0.7), result(0.6, 0.9, 0.8)])
    assert all(c.holds for c in good)
    task = next(c for c in good if "history mean" in c.text)
    assert task.measured == 0.8
    bad = seeds.seed_checks([result(0.5, 1.1, 0.7), result(0.6, 0.9, 1.05)])
    assert [c.holds for c in bad if "history mean" in c.text] == [False]


def test_the_prose_helpers_name_every_seed():
    s = spec("vitime-harmonics/period-head-vanishes")
    found = AcrossSeeds(s, (0, 1, 2), (s.result(1.0, 5.0), s.result(4.0, 5.0), s.result(1.0, 6.0)))
    assert seeds.verdict_text(found) == f"**{found.verdict}** ({' '.join(v[0].upper() for v in found.per_seed)} on seeds 0, 1, 2)"
    assert seeds.per_seed_text({0: 1.5, 3: 2.25}) == "1.500 (seed 0), 2.250 (seed 3)"  # claims.fmt
    assert seeds.verdicts_sentence([found], [s.key]).startswith(s.statement + ": **")


def test_the_learning_curve_draws_one_line_per_seed():
    from attnbook.train import History
    from attnbook.vitime.figures import learning_curve
    from attnbook.vitime.forecasting import CURVE

    def history(values):
        return History(steps=[0, 1], train_loss=[float("nan"), 1.0], val_loss=[2.0, 1.5], best_step=1, best_val=1.5, seconds=1.0,
                       monitors={CURVE: values})

    fig = learning_curve({"seed 0": history([1.0, 0.8]), "seed 1": history([1.0, 0.9])}, {"repeat last period": 0.8})
    assert len(fig.axes[0].lines) == 2 * 2 + 1  # a curve and its kept step per seed, a level
