"""Chapter 3's issue-31 controls: the aperiodic inputs, the most favourable control value, the forecaster gate,
training to the forecast bar, and the layout presets' comparison."""

import dataclasses
import math

import numpy as np
import pytest

from attnbook.claims import Rule, across_seeds
from attnbook.errors import InvalidInputError
from attnbook.registry import spec
from attnbook.vitime import controls, harmonics as hm

P = hm.PERIOD_63


def test_aperiodic_inputs_are_seeded_and_normalised_like_the_probes():
    x = controls.aperiodic_inputs()
    ref = hm.signal(hm.EXPERIMENTS[1], 512)
    assert list(x) == list(controls.APERIODIC_KINDS)
    for v in x.values():
        assert v.shape == (512,) and v.dtype == np.float64
        assert v.mean() == pytest.approx(ref.mean(), abs=1e-12) and v.std() == pytest.approx(ref.std())
    again, other = controls.aperiodic_inputs(), controls.aperiodic_inputs(seed=1)
    assert all(np.array_equal(x[k], again[k]) for k in x)
    assert not np.array_equal(x["noise"], other["noise"]) and np.array_equal(x["trend"], other["trend"])  # a line draws nothing
    assert np.all(np.diff(x["trend"]) > 0) and np.allclose(np.diff(x["trend"], 2), 0, atol=1e-12)  # a straight line
    rng = np.random.default_rng(controls.APERIODIC_SEED)
    rng.standard_normal(512)
    steps = rng.standard_normal(512)  # the walk's increments: the seed's second draw
    walk = np.cumsum(steps)
    assert np.allclose(x["random walk"], (walk - walk.mean()) / walk.std() * ref.std() + ref.mean())
    short = controls.aperiodic_inputs(100, reference=np.arange(100.0))
    assert all(len(v) == 100 and v.std() == pytest.approx(np.arange(100.0).std()) for v in short.values())


def test_aperiodic_inputs_have_no_period_peak_by_construction():
    # at the lags of sin(n/10)'s multiples the autocorrelation is no higher than half-way between them: no peak at the period
    x = controls.aperiodic_inputs()
    multiples, midpoints = [63, 126, 189], [31, 94, 157]
    for name in ("trend", "random walk"):  # monotone decreasing autocorrelation
        a = controls.acf(x[name], list(range(0, 200)))
        assert np.all(np.diff(a) < 0), name
        assert controls.acf(x[name], multiples).mean() < controls.acf(x[name], midpoints).mean()
    assert np.abs(controls.acf(x["noise"], range(1, 200))).max() < 0.15  # white noise: every lag near 0
    periodic = controls.acf(hm.signal(hm.EXPERIMENTS[1], 512), multiples).mean() - controls.acf(hm.signal(hm.EXPERIMENTS[1], 512), midpoints).mean()
    assert periodic > 0.3  # the probe itself has the peak (0.48)


def test_acf_by_hand_and_errors():
    # x = 1, 2, 3, 4: deviations −1.5, −0.5, 0.5, 1.5; Σ d_t d_{t+1} = 0.75 − 0.25 + 0.75 = 1.25; Σ d² = 5
    assert controls.acf([1, 2, 3, 4], [0, 1, 3]) == pytest.approx([1.0, 0.25, -2.25 / 5])
    with pytest.raises(InvalidInputError, match="x"):
        controls.acf([1.0, 1.0, 1.0], [1])
    with pytest.raises(InvalidInputError, match="lag"):
        controls.acf([1, 2, 3, 4], [4])
    with pytest.raises(InvalidInputError, match="reference"):
        controls.aperiodic_inputs(reference=np.ones(512))
    with pytest.raises(InvalidInputError, match="length"):
        controls.aperiodic_inputs(4)


def test_strongest_takes_the_value_most_favourable_to_each_condition():
    rule = Rule.of(("c", ">=", 2.0), ("e", "<=", 8.0))
    values = {"noise": {"c": 1.2, "e": 40.0}, "trend": {"c": 0.9, "e": math.inf}, "walk": {"c": 1.5, "e": 12.0}}
    assert controls.strongest(values, rule) == {"c": 1.5, "e": 12.0}
    assert controls.strongest({"a": {"c": math.nan, "e": 1.0}, "b": {"c": 3.0, "e": math.nan}}, rule) == {"c": 3.0, "e": 1.0}
    assert math.isnan(controls.strongest({"a": {"c": math.nan, "e": 1.0}}, rule)["c"])
    with pytest.raises(InvalidInputError, match="values"):
        controls.strongest({}, rule)
    with pytest.raises(InvalidInputError, match="'e'"):
        controls.strongest({"noise": {"c": 1.0}}, rule)


def _bar(ok: bool):
    return spec("vitime-harmonics/forecasts-held-out-series").result({"÷ history mean": 0.6 if ok else 0.75, "÷ repeat last period": 0.5},
                                                                     {"÷ history mean": 0.9, "÷ repeat last period": 1.1})


def test_gate_makes_the_attention_findings_inconclusive_on_a_model_below_its_bar():
    period = spec("vitime-harmonics/period-head").result({"period contrast": 3.0, "peak error (samples)": 1.0},
                                                         {"period contrast": 1.0, "peak error (samples)": 40.0})
    causal = spec(controls.ATTENTION_KEYS[-1]).result({"effect − null mean": 1.0, "Holm-adjusted p": 0.01},
                                                      {"effect − null mean": 0.0, "Holm-adjusted p": 0.5}, inconclusive="no positive control")
    fc = spec("vitime-harmonics/experiment-1-forecast").result(0.5, 1.2)
    found = [period, causal, fc, _bar(False)]
    assert controls.gate_on_bar(found, _bar(True)) == found
    gated = controls.gate_on_bar(found, _bar(False))
    assert [f.verdict for f in gated] == ["inconclusive", "inconclusive", "supported", "not supported"]
    assert gated[0].inconclusive == "the model does not meet its forecast bar on this seed (forecasts-held-out-series: not supported)"
    assert gated[0].measured == period.measured and gated[1].inconclusive.endswith("; no positive control")
    assert set(controls.LAG_PEAK_KEYS) < set(controls.ATTENTION_KEYS) and all(spec(k) for k in controls.ATTENTION_KEYS)
    with pytest.raises(InvalidInputError, match="bar"):
        controls.gate_on_bar(found, "supported")


def test_bar_training_and_settings_refuse_bad_values():
    from attnbook import profiles

    for bad in [dict(ladder=()), dict(ladder=(200, 100)), dict(ladder=(100, 100)), dict(ladder=(0,)), dict(ladder=(10,), presets=("strip", "strip")),
                dict(ladder=(10,), presets=("nope",))]:
        with pytest.raises(InvalidInputError):
            controls.BarTraining(**bad)
    full = profiles.get("vitime-harmonics", "full")
    assert full.to_bar.presets == ("strip", "grid4") and full.to_bar.ladder[0] == full.train.steps
    assert profiles.get("vitime-harmonics", "quick").to_bar is None
    with pytest.raises(InvalidInputError, match="to_bar"):
        dataclasses.replace(full, to_bar=controls.BarTraining(ladder=(10,), presets=("grid4", "strip")))


def _tiny(tmp_path, monkeypatch, ladder=(1, 2)):
    from attnbook import profiles
    from attnbook.profiles import Training
    from attnbook.vitime import realts

    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    quick = profiles.get("vitime-harmonics", "quick")
    settings = dataclasses.replace(quick, train=Training(steps=1, batch_size=2, lr=1e-3, warmup=0, eval_every=1), val_size=2,
                                   to_bar=controls.BarTraining(ladder=ladder, presets=("strip", "grid4"), tuning_n=2))
    return settings, realts.RealTSConfig()


def test_train_to_bar_on_a_tiny_config_climbs_the_ladder_to_its_end(tmp_path, monkeypatch):
    # the mechanism, run for real on a tiny config (1 and 2 steps of 2 series, 2 tuning series): no such model meets the bar
    settings, data = _tiny(tmp_path, monkeypatch)
    reached, record = controls.train_to_bar(settings, data, 0, settings.to_bar, profile="quick")
    assert record["preset"] == "strip" and record["steps"] == 2 and record["max_reached"] and not record["met"]
    assert [t["steps"] for t in record["tried"]] == [1, 2] and all(not t["met"] for t in record["tried"])
    assert reached.train.steps == 2 and reached.to_bar is None and reached.preset == "strip"
    assert set(record["tried"][0]["ratios"]) == {"model (expectation) ÷ history mean <= 0.7", "model (expectation) ÷ repeat last period < 1"}


def test_train_to_bar_stops_at_the_first_budget_that_meets_the_bar(tmp_path, monkeypatch):
    from attnbook.vitime import experiment, seeds as vitime_seeds

    settings, data = _tiny(tmp_path, monkeypatch, ladder=(1, 2, 3))
    calls, trained = [], []
    monkeypatch.setattr(experiment, "pretrained", lambda s, d, seed, **_: (trained.append((s.preset, s.train.steps)), None, False))

    def fake_bar(model, tuning, mapping, profile):
        calls.append(tuning.seed)
        return len(calls) == 2, {"bar": 0.5}

    monkeypatch.setattr(controls, "bar_met", fake_bar)
    by_seed, records = vitime_seeds.bar_settings(settings, data, [0], profile="quick", preset="grid4")
    assert records[0]["steps"] == 2 and records[0]["met"] and not records[0]["max_reached"] and len(records[0]["tried"]) == 2
    assert by_seed[0].preset == "grid4" and by_seed[0].train.steps == 2 and calls == [777, 777]  # the tuning draw, not the test set
    assert trained == [("grid4", 1), ("grid4", 2)]  # each budget a pretraining of the preset asked for
    plain, none = vitime_seeds.bar_settings(dataclasses.replace(settings, to_bar=None), data, [0, 1], profile="quick")
    assert none is None and plain[0].train.steps == 1 and set(plain) == {0, 1}


def test_preset_comparison_says_where_a_finding_holds_only_on_its_tuned_preset():
    def f(key, ok):
        if key.endswith("period-head"):
            return spec(key).result({"period contrast": 3.0 if ok else 1.0, "peak error (samples)": 1.0},
                                    {"period contrast": 1.0, "peak error (samples)": 40.0})
        return spec(key).result(2.5 if ok else 1.0, 1.0)

    k1, k2, k3 = "vitime-harmonics/period-head", "vitime-harmonics/rollout-keeps-period", "vitime-harmonics/follows-sin-n-5"
    strip = across_seeds({0: [f(k1, True), f(k2, True), f(k3, False)], 1: [f(k1, True), f(k2, True), f(k3, False)]})
    grid4 = across_seeds({0: [f(k1, False), f(k2, True), f(k3, True)], 1: [f(k1, True), f(k2, True), f(k3, True)]})
    records = {"strip": [{"steps": 3000, "max_reached": False}] * 2, "grid4": [{"steps": 24000, "max_reached": True}, {"steps": 12000, "max_reached": False}]}
    table = controls.preset_comparison({"strip": strip, "grid4": grid4}, records, "strip")
    assert table.loc["period-head", "strip"] == "supported (SS)" and table.loc["period-head", "grid4"] == "seed-dependent (NS)"
    assert table.loc["period-head", "note"] == "holds only on strip, the preset it was tuned on"
    assert table.loc["rollout-keeps-period", "note"] == "holds on every preset"
    assert table.loc["follows-sin-n-5", "note"] == "holds only on grid4"
    assert table.loc["steps to bar", "grid4"] == "24000 (max), 12000"
    with pytest.raises(InvalidInputError, match="presets"):
        controls.preset_comparison({"strip": strip}, {"strip": records["strip"]}, "strip")


def test_rule_table_reads_the_rule_on_the_values_before_the_gate():
    period = spec("vitime-harmonics/period-head").result({"period contrast": 3.0, "peak error (samples)": 1.0},
                                                         {"period contrast": 1.0, "peak error (samples)": 40.0})
    rollout = spec("vitime-harmonics/rollout-keeps-period").result(2.5, 2.1)  # the control passes too
    nan = spec("vitime-harmonics/rollout-keeps-period").result(math.nan, 1.0)
    gated = controls.gate_on_bar([period, rollout], _bar(False))
    table = controls.rule_table({0: gated, 1: [period, nan]})
    assert table.loc["period-head", "seed 0"] == "S (model passes, control fails)" and gated[0].verdict == "inconclusive"
    assert table.loc["rollout-keeps-period", "seed 0"] == "N (model passes, control passes)"
    assert table.loc["rollout-keeps-period", "seed 1"].startswith("I ")
    assert list(table.index) == ["period-head", "rollout-keeps-period"]
    causal = spec(controls.ATTENTION_KEYS[-1]).result({"effect − null mean": 1.0, "Holm-adjusted p": 0.5},
                                                      {"effect − null mean": 0.0, "Holm-adjusted p": 0.5}, inconclusive="no positive control")
    own = controls.rule_table({0: controls.gate_on_bar([causal], _bar(False))})
    assert own.iloc[0, 0].startswith("I ")  # inconclusive for its own reason, gate or not
    with pytest.raises(InvalidInputError, match="found_by_seed"):
        controls.rule_table({})
