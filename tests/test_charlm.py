"""The char-level GPT, sampling, quality metrics, attention snapshots, runs and their tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from attnbook import metrics, registry
from attnbook.capture import capture
from attnbook.charlm import analysis, causal, figures
from attnbook.charlm.experiment import RunSpec, chapter_runs, load_model, load_run, load_runs, ngram_loss, train_run, windows
from attnbook.charlm import controls
from attnbook.charlm.explorer import EvolutionExplorer, evolution_view, render_snapshot
from attnbook.charlm.model import GPT, GPTConfig
from attnbook.charlm.quality import coherence, distinct_n, inference_speed, quality, repetition, sample, words
from attnbook.charlm.tracking import AttentionTracker, causal_maps, repeated_batch, snapshot_metrics, uniform_causal
from attnbook.claims import fmt
from attnbook.data import CharCorpus
from attnbook.errors import InvalidInputError, MissingResourceError
from attnbook.maps import AttentionMaps
from attnbook.train import TrainConfig
from attnbook.views import read

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY = GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16)


@pytest.fixture()
def gpt():
    torch.manual_seed(0)
    return GPT(TINY).eval()


@pytest.fixture()
def corpus():
    text = "abc de fgh ij " * 400
    chars = tuple(sorted(set(text)))
    ids = np.array([chars.index(c) for c in text], dtype=np.uint16)
    cut = int(0.9 * len(ids))
    return CharCorpus("tinyshakespeare", chars, ids[:cut], ids[cut:], None, "synthetic")


# -- model -------------------------------------------------------------------------------------
def test_forward_loss_is_cross_entropy_and_weights_are_tied(gpt):
    x = torch.randint(0, 11, (3, 16))
    y = torch.randint(0, 11, (3, 16))
    logits, loss = gpt(x, y)
    assert logits.shape == (3, 16, 11)
    assert torch.allclose(loss, F.cross_entropy(logits.reshape(-1, 11), y.reshape(-1), reduction="mean"))
    assert gpt.lm_head.weight is gpt.wte.weight
    assert gpt.n_params() == gpt.n_params(non_embedding=False) - 16 * 16


def test_scaled_residual_init(gpt):
    torch.manual_seed(1)
    big = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=8, n_head=2, n_embd=64))
    assert big.blocks[0].attn.proj.weight.std().item() == pytest.approx(0.02 / math.sqrt(16), rel=0.1)
    assert big.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_model_is_causal(gpt):
    x = torch.randint(0, 11, (2, 16))
    z = x.clone()
    z[:, 10:] = (z[:, 10:] + 1) % 11
    assert torch.allclose(gpt(x)[0][:, :10], gpt(z)[0][:, :10], atol=1e-6)


def test_captured_attention_matches_the_fused_forward(gpt):
    x = torch.randint(0, 11, (2, 16))
    plain = gpt(x)[0]
    with capture(gpt) as cap:
        recorded = gpt(x)[0]
    assert torch.allclose(plain, recorded, atol=1e-5)
    w = cap.maps.weights
    assert w.shape == (2, 2, 2, 16, 16)
    assert float(w.triu(1).abs().max()) == 0.0 and torch.allclose(w.sum(-1), torch.ones(()), atol=1e-6)


def test_bad_inputs_are_typed_errors(gpt):
    with pytest.raises(InvalidInputError, match="block_size=16"):
        gpt(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(InvalidInputError, match=r"ids in \[0, 11\)"):
        gpt(torch.full((1, 4), 11))
    with pytest.raises(InvalidInputError, match="idx"):
        gpt(torch.zeros(4))
    with pytest.raises(InvalidInputError, match="n_embd"):
        GPTConfig(n_embd=10, n_head=4)
    with pytest.raises(InvalidInputError, match="block_size"):
        GPTConfig(block_size=0)


def test_generate_crops_context_and_top_k_1_is_greedy(gpt):
    start = torch.zeros(1, 3, dtype=torch.long)
    out = gpt.generate(start, 30, top_k=1)
    assert out.shape == (1, 33)
    idx = start
    for _ in range(30):
        nxt = gpt(idx[:, -16:])[0][:, -1].argmax(-1, keepdim=True)
        idx = torch.cat([idx, nxt], 1)
    assert torch.equal(out, idx)


def test_kv_cache_generation_reads_what_a_full_forward_reads(gpt):
    """With a KV cache the prompt is read once and then one position per step; logits, sampled text and
    the attention recorded while sampling equal the full-forward path (past the context: cropped recompute)."""
    from attnbook.modules import KVCache

    idx = torch.randint(0, 11, (2, 5), generator=torch.Generator().manual_seed(1))
    cache = KVCache()
    first = gpt(idx[:, :3], cache=cache)[0]
    rest = gpt(idx[:, 3:], cache=cache)[0]
    assert cache.length == 5 and torch.allclose(torch.cat([first, rest], 1), gpt(idx)[0], atol=1e-5)
    with pytest.raises(InvalidInputError, match="in the cache"):
        gpt(torch.zeros(2, 12, dtype=torch.long), cache=cache)  # 5 + 12 > block_size 16
    assert torch.equal(gpt.generate(idx, 20, top_k=1), gpt.generate(idx, 20, top_k=1, use_cache=True))  # 25 > 16: crops too
    sampled = [gpt.generate(idx, 9, temperature=0.8, generator=torch.Generator().manual_seed(5), use_cache=c) for c in (False, True)]
    assert torch.equal(*sampled)
    with torch.no_grad(), capture(gpt) as cap:
        out = gpt.generate(idx, 9, top_k=1, use_cache=True)
    with torch.no_grad(), capture(gpt) as once:
        gpt(out[:, :-1])
    assert cap.generated and cap.forwards == 9 and (cap.weights() - once.weights()).abs().max() < 1e-5


def test_generation_attention_measures_sampled_against_validation_text(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    train_run(_spec(), corpus=corpus, progress=False)
    measured = analysis.generation_attention(load_model(_spec()), corpus, windows=3, prompt=4, seed=0)
    assert measured["capture_vs_forward"] <= 1e-5 and measured["positions"] == 15 and measured["windows"] == 3
    assert 0 < measured["entropy_sampled"] < math.log(16) and 0 < measured["entropy_validation"] < math.log(16)
    assert measured["relative_entropy_difference"] >= 0 and measured["validation_vs_validation"] >= 0
    again = analysis.generation_attention(load_model(_spec()), corpus, windows=3, prompt=4, seed=0)
    assert again == measured  # seeded


def test_generate_is_seeded_and_checks_arguments(gpt):
    a = gpt.generate(torch.zeros(1, 1, dtype=torch.long), 20, temperature=0.8, generator=torch.Generator().manual_seed(3))
    b = gpt.generate(torch.zeros(1, 1, dtype=torch.long), 20, temperature=0.8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    for kwargs in ({"temperature": 0.0}, {"top_k": 0}):
        with pytest.raises(InvalidInputError):
            gpt.generate(torch.zeros(1, 1, dtype=torch.long), 2, **kwargs)
    with pytest.raises(InvalidInputError):
        gpt.generate(torch.zeros(1, 1, dtype=torch.long), -1)


def test_sample_refuses_prompt_characters_outside_the_vocabulary(gpt, corpus):
    with pytest.raises(InvalidInputError, match="outside"):
        sample(gpt, corpus, "xyz", 5)
    assert len(sample(gpt, corpus, "ab", 12)) == 12


def test_inference_speed_returns_the_mean_rate_and_texts(gpt, corpus):
    rate, texts = inference_speed(gpt, corpus, samples=2, new_tokens=10)
    assert rate > 0 and len(texts) == 2 and all(len(t) == 10 for t in texts)


# -- quality -----------------------------------------------------------------------------------
def test_quality_metrics_on_hand_computed_cases():
    assert distinct_n("abab", 2) == pytest.approx(2 / 3)  # ab, ba, ab
    assert distinct_n(["a", "b"], 3) != distinct_n(["a", "b"], 3)  # NaN: too short
    assert repetition("abcdefghabcdefgh", 8) == pytest.approx(1 - 8 / 9)
    assert words("Hello, world!  'tis") == ["hello", "world", "tis"]
    assert coherence("the cat zzq.", {"the", "cat"}) == pytest.approx(2 / 3)
    assert math.isnan(coherence("...", {"a"}))
    q = quality("the the the the", {"the"})
    assert q["distinct_1_words"] == 0.25 and q["coherence"] == 1.0
    with pytest.raises(InvalidInputError):
        distinct_n("abc", 0)


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="ab c", max_size=60), st.integers(1, 5))
def test_distinct_n_is_a_ratio_in_0_1(text, n):
    d = distinct_n(text, n)
    assert math.isnan(d) if len(text) < n else 0 < d <= 1


# -- snapshot statistics -----------------------------------------------------------------------
def _uniform_causal_maps(T: int, L: int = 2, H: int = 3, B: int = 2) -> AttentionMaps:
    w = torch.tril(torch.ones(T, T))
    w = w / w.sum(-1, keepdim=True)
    mask = torch.ones(T, T, dtype=torch.bool).tril()[None].expand(B, T, T)
    return AttentionMaps(w.expand(L, B, H, T, T).contiguous(), tuple(f"l{l}" for l in range(L)), mask=mask)


def test_uniform_causal_values_match_the_metrics():
    T = 20
    s = snapshot_metrics(_uniform_causal_maps(T))
    u = uniform_causal(T)
    assert np.allclose(s["entropy"], u["entropy"], atol=1e-5)
    assert np.allclose(s["span"], u["span"], atol=1e-4)
    assert np.allclose(s["sink"], u["sink"], atol=1e-6)
    assert np.allclose(s["entropy_norm"], u["entropy_norm"], atol=1e-5)
    assert np.allclose(s["diversity"], 0.0, atol=1e-6) and np.allclose(s["layer_js"], 0.0, atol=1e-6)
    assert np.allclose(s["layer_cosine"], 1.0, atol=1e-6)


def test_key_mass_skips_the_query_that_can_only_see_the_key():
    T = 5
    maps = _uniform_causal_maps(T, L=1, H=1, B=1)
    assert float(metrics.key_mass(maps, 0)) == pytest.approx(np.mean([1 / t for t in range(2, T + 1)]))
    assert float(metrics.key_mass(maps, 4)) != float(metrics.key_mass(maps, 4))  # no later query: NaN


def test_snapshot_entropy_equals_scipy_per_row(gpt):
    x = torch.randint(0, 11, (2, 16))
    maps = causal_maps(gpt, x)
    s = snapshot_metrics(maps)
    w = maps.weights.double().numpy()
    ref = np.mean([[[stats.entropy(w[l, b, h, i, : i + 1], base=np.e) for i in range(16)] for b in range(2)] for l in range(2) for h in range(2)],
                  axis=(1, 2)).reshape(2, 2)
    assert np.allclose(s["entropy"], ref, atol=1e-5)


def test_tracker_records_snapshots_and_induction(gpt):
    rep = repeated_batch(11, 3, 8, seed=0)
    assert torch.equal(rep[:, :8], rep[:, 8:])
    tracker = AttentionTracker(torch.randint(0, 11, (3, 16)), rep)
    tracker(0, gpt)
    tracker(5, gpt)
    assert tracker.steps == [0, 5] and tracker.series("entropy").shape == (2, 2, 2)
    assert tracker.maps[0].shape == (2, 2, 16, 16) and tracker.maps[0].dtype == np.float16
    assert np.isfinite(tracker.series("induction")).all() and tracker.seconds > 0
    with pytest.raises(InvalidInputError):
        AttentionTracker(torch.zeros(3, 7, dtype=torch.long), torch.zeros(3, 7, dtype=torch.long))


# -- data helpers ------------------------------------------------------------------------------
def test_windows_shift_targets_by_one():
    data = np.arange(100, dtype=np.uint16)
    x, y = windows(data, 8, np.array([0, 50]))
    assert torch.equal(x[1], torch.arange(50, 58)) and torch.equal(y[1], torch.arange(51, 59))
    with pytest.raises(InvalidInputError):
        windows(data, 100, np.array([0]))


def test_ngram_loss_matches_a_hand_count():
    train = np.array([0, 1, 0, 1, 0, 0], dtype=np.uint16)
    val = np.array([0, 1, 1], dtype=np.uint16)
    # add-one bigram: from 0: counts 0->0:1, 0->1:2 (+1 each) -> p(1|0)=3/5; from 1: 1->0:2 -> p(1|1)=1/4
    assert ngram_loss(train, val, 2, 2) == pytest.approx(-(math.log(3 / 5) + math.log(1 / 4)) / 2)
    # unigram: 4 zeros, 2 ones (+1) -> p0=5/8, p1=3/8
    assert ngram_loss(train, val, 2, 1) == pytest.approx(-(math.log(5 / 8) + 2 * math.log(3 / 8)) / 3)
    with pytest.raises(InvalidInputError):
        ngram_loss(train, val, 2, 3)


# -- runs --------------------------------------------------------------------------------------
def _spec(seed: int = 0, steps: int = 30) -> RunSpec:
    return RunSpec("tinyshakespeare", TINY, TrainConfig(steps=steps, batch_size=4, lr=3e-3, warmup=2, eval_every=10, seed=seed),
                   eval_batches=2, snapshot_every=10, snapshot_windows=2, induction_period=4, sample_chars=20, speed_samples=1,
                   speed_tokens=10)


def test_run_spec_rejects_bad_settings():
    with pytest.raises(InvalidInputError, match="dataset"):
        RunSpec("wiki", TINY, TrainConfig())
    with pytest.raises(InvalidInputError, match="induction_period"):
        RunSpec("text8", TINY, TrainConfig(), induction_period=9)
    with pytest.raises(InvalidInputError, match="vocab_size"):
        train_run(RunSpec("tinyshakespeare", GPTConfig(vocab_size=5, block_size=16, n_layer=1, n_head=1, n_embd=8), TrainConfig(steps=2, warmup=0),
                          induction_period=4),
                  corpus=CharCorpus("x", tuple("abcdefghijk"), np.zeros(100, np.uint16), np.zeros(50, np.uint16), None, "x"))


def test_train_run_learns_tracks_and_is_cached(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    r = train_run(_spec(), corpus=corpus, progress=False)
    assert r.steps == [0, 10, 20, 30] and r.history.steps == [0, 10, 20, 30]
    assert r.history.val_loss[-1] < r.history.val_loss[0]
    assert r.snapshots["entropy"].shape == (4, 2, 2) and r.maps.shape == (4, 2, 2, 16, 16)
    assert [s["step"] for s in r.samples] == r.steps and len(r.window) == 16
    again = train_run(_spec(), corpus=corpus, progress=False)
    assert again.loaded and again.history.val_loss == r.history.val_loss
    assert np.array_equal(again.snapshots["entropy"], r.snapshots["entropy"]) and np.array_equal(again.maps, r.maps)
    model = load_model(_spec())
    x, y = windows(corpus.val, 16, np.arange(4) * 7)
    assert model(x, y)[1].item() < math.log(11)
    with pytest.raises(MissingResourceError):
        load_model(_spec(seed=9))


def test_tables_and_figures_over_runs(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    runs = [train_run(_spec(seed=s), corpus=corpus, progress=False) for s in (0, 1)]
    table = analysis.results_table(runs)
    vals = [r.history.best_val for r in runs]
    assert table.loc["tinyshakespeare", "best_val_loss"] == pytest.approx(np.mean(vals))
    assert table.loc["tinyshakespeare", "best_val_loss_se"] == pytest.approx(stats.sem(vals, ddof=1))
    assert analysis.layer_series(runs, "entropy").shape == (2, 4, 2)
    corr = analysis.correlations(runs)
    assert set(corr.against) == {"val_loss", "coherence", "repetition"} and (corr.n == 8).all()
    ref = analysis.js_reference(runs[0])
    assert 0 <= ref["min"] <= ref["max"] <= math.log(2) and ref["max_difference"] < 1e-4
    within, between = analysis.head_similarity(runs[0])
    assert 0 <= within <= math.log(2) and 0 <= between <= math.log(2)
    assert (analysis.overhead_table(runs)["tracking_overhead"] >= 1).all()
    assert len(analysis.samples_table(runs)) == 3
    for fig in (figures.loss_curves(runs, {"tinyshakespeare": 2.0}), figures.metric_evolution(runs), figures.layer_similarity(runs[0]),
                figures.layer_similarity(runs, "layer_cosine", position=-1), figures.window_maps(runs)):
        assert fig.axes and all(ax.get_title() for ax in fig.axes if ax.get_label() != "<colorbar>")
    with pytest.raises(InvalidInputError):
        analysis.layer_series(runs, "nope")
    with pytest.raises(InvalidInputError, match="position"):
        figures.window_maps(runs, position=1)  # one dataset only
    explorer = EvolutionExplorer(runs)
    explorer.layer.value = 1
    explorer.snapshot.value = 0
    assert explorer.n_renders == 3 and "entropy" in explorer.info.value
    with pytest.raises(IndexError):
        render_snapshot(runs[0], 9, 0, 0)
    data = read(evolution_view(runs).to_html())[0]
    assert data["facets"][0]["values"] == ["tinyshakespeare"] and data["facets"][1]["values"] == [f"step {s}" for s in runs[0].steps]
    last = data["entries"][-1]
    stored = runs[0].maps[-1].astype(np.float64)
    assert np.abs(last["weights"][0] - stored / stored.sum(-1, keepdims=True)).max() < 0.005
    assert last["allowed"][0].sum() == stored.shape[-1] * (stored.shape[-1] + 1) // 2  # causal
    assert "entropy" in last["head_notes"][1][0] and "validation loss" in last["note"]
    with pytest.raises(InvalidInputError, match="RunResult"):
        evolution_view([])


def test_chapter_checks_findings_and_summary_follow_the_corpora_that_ran(corpus, tmp_path, monkeypatch):
    """One corpus ran, text8 did not: checks and findings are about tiny Shakespeare only, each finding
    is measured at the last snapshot and, as its control, at step 0; the summary says why text8 is
    missing; with no runs there is nothing to check or find and every table is empty."""
    from attnbook import profiles, registry
    from attnbook.claims import VERDICTS, Finding

    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    runs = [train_run(_spec(seed=s), corpus=corpus, progress=False) for s in (0, 1)]
    floors = {"tinyshakespeare": 3.0}
    checks = analysis.chapter_checks(runs, floors, "full")
    texts = " ".join(c.text for c in checks)
    assert "(tinyshakespeare, worst seed)" in texts and "text8" not in texts and "fresh capture" not in texts
    gap = [c for c in checks if c.text.startswith("final val loss − bigram floor")][0]
    assert gap.measured == pytest.approx(max(r.history.val_loss[-1] for r in runs) - 3.0)

    monkeypatch.setenv("ATTNBOOK_RAY", "0")  # the statistics' tasks in process
    stats = [st for v in controls.seed_statistics(runs, {"tinyshakespeare": corpus}, windows=8).values() for st in v]
    found = analysis.chapter_findings(runs, floors, stats=stats)
    keys = [s.key for s in registry.chapter_specs("charlm-evolution")]
    assert [f.spec.key for f in found] == keys[:8] and all(isinstance(f, Finding) and f.verdict in VERDICTS for f in found)
    by = {f.spec.key.split("/")[1]: f for f in found}
    prev = by["previous-token-head"]
    assert prev.measured == {"largest mass on i−1": max(float(s.end["previous_token"].max()) for s in stats)}
    assert prev.control == {"largest mass on i−1": max(float(s.positions["previous_token"].max()) for s in stats)}
    span = by["span-increases"]
    span0 = np.mean([s.start["span"].mean() for s in stats])
    assert span.measured["span change (chars)"] == pytest.approx(np.mean([s.end["span"].mean() for s in stats]) - span0)
    assert span.control["span change (chars)"] == pytest.approx(np.mean([s.shuffled["span"].mean() for s in stats]) - span0)
    assert abs(span0 - uniform_causal(16)["span"]) < 0.05 * uniform_causal(16)["span"]  # the untrained model: near uniform
    within, between = np.mean([controls.within_between(s.end["distances"], 2) for s in stats], axis=0)
    assert by["heads-of-a-layer-alike"].measured["within ÷ between JS"] == pytest.approx(within / between)
    assert by["floor-before-sharpening"].control["share of layer 0's entropy drop"] == pytest.approx(
        np.mean([analysis.floor_crossing_loss(r, 3.0) for r in runs]))
    with pytest.raises(InvalidInputError, match="stats"):
        analysis.chapter_findings(runs, floors)
    with pytest.raises(InvalidInputError, match="stats"):
        analysis.chapter_findings(runs, floors, stats=stats[::-1])
    generation = {"relative_entropy_difference": 0.05, "validation_vs_validation": 0.004, "entropy_sampled": 1.0, "entropy_validation": 1.05}
    more = analysis.chapter_findings(runs, floors, generation, stats=stats)
    assert more[-1].spec.key == "charlm-evolution/generation-differs-slightly" and more[-1].verdict == "supported"

    glued = analysis.findings_glue(found)
    assert set(glued) == {f"{k.split('/')[1].replace('-', '_')}_{part}" for k in keys for part in ("verdict", "m", "detail")}
    assert glued["previous_token_head_verdict"] == f"**{prev.verdict}**"
    assert glued["previous_token_head_m"].endswith(f"; control {fmt(prev.control['largest mass on i−1'])}")
    assert glued["generation_differs_slightly_verdict"] == "not run" and glued["distinct_heads_used_m"] == "not run"

    summary = analysis.learning_summary(runs, floors, {"text8": "put text8.zip there"}, profiles.get("charlm-evolution", "full"))
    assert "**tinyshakespeare** ends at a validation loss of" in summary and "(bigram floor 3.000)" in summary
    assert "the seed reached 1.468" in summary and "**text8** was not run: put text8.zip there." in summary
    assert analysis.chapter_checks([], {}, "quick") == [] and analysis.chapter_findings([], {}) == []
    assert analysis.correlation_reading(analysis.correlations(runs), "span", "val_loss").startswith("tinyshakespeare: ρ=")
    assert analysis.correlation_reading(analysis.correlations([]), "span", "val_loss") == "none"
    for table in (analysis.runs_table([]), analysis.results_table([]), analysis.overhead_table([]), analysis.samples_table([])):
        assert table.empty and len(table.columns) > 0
    for fig in (figures.loss_curves([]), figures.metric_evolution([]), figures.layer_similarity([]), figures.window_maps([])):
        assert "no corpus was available" in fig.axes[0].texts[0].get_text()


def test_findings_are_measured_per_seed_and_reported_across_seeds(corpus, tmp_path, monkeypatch):
    """Each seed's findings come from that seed's runs only (one per corpus), with that seed's generation
    record and causal test; across seeds the glue quotes the verdict with how many seeds support it, the
    mean and interval of the first measure, and every seed's detail; the checks take every seed's generation."""
    from attnbook.claims import AcrossSeeds, across_seeds

    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    runs = [train_run(_spec(seed=s), corpus=corpus, progress=False) for s in (0, 1, 2)]
    floors = {"tinyshakespeare": 3.0}
    assert list(analysis.by_seed(runs)) == [0, 1, 2] and all(len(v) == 1 for v in analysis.by_seed(runs).values())
    generations = {s: {"relative_entropy_difference": 0.05, "validation_vs_validation": 0.004 * (s + 1), "entropy_sampled": 1.0,
                       "entropy_validation": 1.05, "capture_vs_forward": 1e-7 * s} for s in (0, 1, 2)}
    monkeypatch.setenv("ATTNBOOK_RAY", "0")
    stats = controls.seed_statistics(runs, {"tinyshakespeare": corpus}, windows=8)
    per_seed = analysis.seed_findings(runs, floors, generations, stats=stats)
    assert list(per_seed) == [0, 1, 2]
    for s, r in zip((0, 1, 2), runs):
        assert [f.record() for f in per_seed[s]] == [f.record() for f in analysis.chapter_findings([r], floors, generations[s], stats=stats[s])]
    found = across_seeds(per_seed)
    assert all(isinstance(a, AcrossSeeds) and a.seeds == (0, 1, 2) for a in found)
    glued = analysis.findings_glue(found)
    prev = next(a for a in found if a.spec.key.endswith("/previous-token-head"))
    k = sum(v == "supported" for v in prev.per_seed)
    assert glued["previous_token_head_verdict"] == f"**{prev.verdict}** ({k} of 3 seeds)"
    mean, low, high = prev.effect()
    assert glued["previous_token_head_m"].startswith(f"{fmt(mean)} [{fmt(low)}, {fmt(high)}] (mean of 3 seeds, 95 % t-interval); control ")
    sink = next(a for a in found if a.spec.key.endswith("/attention-sink"))
    assert sink.spec.scale == "log" and "(geometric mean of 3 seeds" in glued["attention_sink_m"]
    assert glued["generation_differs_slightly_detail"].startswith("seed 0 ") and "; seed 2 " in glued["generation_differs_slightly_detail"]
    check = [c for c in analysis.chapter_checks(runs, floors, "full", generation=list(generations.values())) if "while sampling" in c.text]
    assert len(check) == 1 and check[0].measured == pytest.approx(2e-7) and "(over 3 seeds)" in check[0].text
    assert analysis.seed_findings([], floors) == {}
    assert analysis.samples_table(runs)["seed"].unique().tolist() == [0]  # the first training seed's samples
    assert "(mean of 3 seeds, worst " in analysis.learning_summary(runs, floors, {}, _full_settings())
    note = analysis.full_not_run("quick", _full_settings(), 5)
    assert "None of `full`'s has been run: 5 seeds" in note and "15 runs" in note and "python -m attnbook run 05 -p profile full" in note
    assert analysis.full_not_run("full", _full_settings(), 5) == ""


def _full_settings():
    from attnbook import profiles

    return profiles.get("charlm-evolution", "full")


def _fake_run(steps, diversity, span, sink, T=8):
    """A stand-in for a RunResult with the snapshot series the finding measures read (2 heads)."""
    from types import SimpleNamespace

    span, sink = np.asarray(span, dtype=float), np.asarray(sink, dtype=float)
    return SimpleNamespace(spec=SimpleNamespace(dataset="tinyshakespeare"), steps=list(steps), maps=np.zeros((1, 1, 1, T, T)),
                           snapshots={"diversity": np.asarray(diversity, dtype=float), "span": np.repeat(span[..., None], 2, -1),
                                      "sink": np.repeat(sink[..., None], 2, -1)})


def test_finding_measures_by_hand():
    # diversity per layer (snapshots, L = 2): layer means 0, 0.45, 0.5, 0.5, 0.5 over steps 0..400; a quarter in is snapshot 1 (step 100)
    run = _fake_run(range(0, 500, 100), [[0, 0], [0.4, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]], span=[[1, 1]] * 5, sink=[[0.1, 0.1]] * 5)
    timing = analysis.diversity_timing([run])
    assert timing["share"] == pytest.approx(0.9) and timing["change"] == pytest.approx(0.5) and timing["quarter_step"] == 100
    assert timing["linear_share"] == pytest.approx(0.25)  # a straight line from 0 to 0.5 reaches a quarter of it at step 100 of 400
    # span per layer rises with depth at the end, falls at step 0: r = 1 and −1
    run = _fake_run([0, 10], [[0, 0], [0, 0]], span=[[2, 1], [1, 3]], sink=[[0.1, 0.1], [0.2, 0.7]])
    assert analysis.depth_order([run]) == {"tinyshakespeare": pytest.approx(1.0)}
    assert analysis.depth_order([run], 0)["tinyshakespeare"] == pytest.approx(-1.0)
    assert math.isnan(analysis.depth_order([_fake_run([0], [[0, 0]], span=[[1, 1]], sink=[[0, 0]])])["tinyshakespeare"])
    uniform = uniform_causal(8)["sink"]
    assert analysis.sink_ratio([run]) == pytest.approx(0.7 / uniform) and analysis.sink_ratio([run], 0) == pytest.approx(0.1 / uniform)


def test_floor_crossing_reads_the_first_evaluation_below_the_floor(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    r = train_run(_spec(), corpus=corpus, progress=False)
    assert math.isnan(analysis.floor_crossing(r, -1.0))
    e = r.snapshots["entropy"][:, 0].mean(-1)
    k = next(i for i, v in enumerate(r.history.val_loss) if v < r.history.val_loss[0] - 1e-9)
    floor = r.history.val_loss[0] - 1e-9
    assert analysis.floor_crossing(r, floor) == pytest.approx((e[0] - e[k]) / (e[0] - e[-1]))
    val = r.history.val_loss
    assert analysis.floor_crossing_loss(r, floor) == pytest.approx((val[0] - val[k]) / (val[0] - val[-1]))
    assert math.isnan(analysis.floor_crossing_loss(r, -1.0))


def test_chapter_runs_carry_their_corpus_and_equal_a_direct_training(corpus, tmp_path, monkeypatch):
    """The chapter's runs (executed in process here; tests/test_runs.py checks Ray against in process bit for
    bit) fill the same cache entries as train_run itself: the corpus travels in the run's arguments, the
    seed is the run's seed, and the evaluation data are the same for every training seed."""
    from attnbook import runs

    monkeypatch.setenv("ATTNBOOK_RAY", "0")
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path / "runs"))
    specs = [_spec(seed=s) for s in (0, 1)]
    declared = chapter_runs(specs, {"tinyshakespeare": corpus})
    assert [(r.chapter, r.label, r.seed, r.threads) for r in declared] == [("charlm-evolution", f"tinyshakespeare seed {s}", s, 1) for s in (0, 1)]
    assert declared[0].args[1] is corpus and declared[0].args[2:] == ("cpu", "fp32") and not declared[0].cached
    with pytest.raises(MissingResourceError, match="not trained yet"):
        load_run(specs[0])
    timings = runs.execute(declared, progress=False)
    assert [t.where for t in timings] == ["in process"] * 2 and all(d.cached for d in declared)
    executed = load_runs(specs)
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path / "direct"))
    direct = [train_run(s, corpus=corpus, progress=False) for s in specs]
    for e, d in zip(executed, direct):
        assert e.loaded and e.history.val_loss == d.history.val_loss and np.array_equal(e.snapshots["entropy"], d.snapshots["entropy"])
    assert executed[0].history.val_loss != executed[1].history.val_loss  # the seed draws the initialisation and the training windows
    assert executed[0].window == executed[1].window  # ... not the evaluation data


def test_load_corpora_leaves_out_what_is_unavailable(tmp_path, monkeypatch):
    from attnbook import data
    from attnbook.charlm.experiment import load_corpora, profile_specs

    monkeypatch.setenv("ATTNBOOK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path / "cache"))
    (tmp_path / "abc.txt").write_bytes(b"abc ab\n" * 300)
    text = (tmp_path / "abc.txt").read_bytes()
    monkeypatch.setitem(data.CORPORA, "abc", data.CorpusSpec("abc", "abc.txt", "http://x", len(text), data.file_digest(text, "sha256"), (0.9, 0.1)))
    monkeypatch.setitem(data.CORPORA, "gone", data.CorpusSpec("gone", "gone.txt", (tmp_path / "nowhere.txt").as_uri(), 10, "sha256:0", (0.9, 0.1)))
    from attnbook.charlm.experiment import CharDataset, CharModel, Settings
    from attnbook.profiles import CPU_FP32, Training

    d = CharDataset(prefix=None, snapshot_every=2, train=Training(steps=4, batch_size=2, lr=1e-3, warmup=1, eval_every=2))
    settings = Settings(model=CharModel(n_layer=1, n_head=1, n_embd=8, block_size=8, dropout=0.0), datasets={"abc": d, "gone": d},
                        eval_batches=1, snapshot_windows=1, induction_period=4, sample_chars=5, speed_samples=1, speed_tokens=5,
                        threads=1, hardware=CPU_FP32)
    corpora, missing = load_corpora(settings)
    assert list(corpora) == ["abc"] and "gone.txt" in missing["gone"] and str(tmp_path / "cache") not in missing["gone"]
    assert [s.seed for s in profile_specs(settings, corpora)] == [0]
    with pytest.raises(InvalidInputError, match="seeds"):
        profile_specs(settings, corpora, ())
    specs = profile_specs(settings, corpora, (0, 1))
    assert [(s.dataset, s.seed) for s in specs] == [("abc", 0), ("abc", 1)] and specs[0].model.vocab_size == 5  # a b c space newline


def test_train_run_in_bf16_learns_and_keeps_fp32_weights(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    r = train_run(_spec(seed=3), corpus=corpus, progress=False, precision="bf16")  # CPU autocast: the GPU path, run here
    assert (r.history.device, r.history.precision) == ("cpu", "bf16") and r.history.val_loss[-1] < r.history.val_loss[0]
    assert all(v.dtype == torch.float32 for v in load_model(_spec(seed=3)).state_dict().values())
    assert train_run(_spec(seed=3), corpus=corpus, progress=False).history.precision == "bf16"  # loaded, as recorded


# -- does the model use it? (the causal section) --------------------------------------------------
def _random_causal_maps(L: int = 2, H: int = 3, B: int = 2, T: int = 5, seed: int = 0) -> AttentionMaps:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(L, B, H, T, T, generator=g).masked_fill(torch.ones(T, T).triu(1).bool(), -math.inf)
    return AttentionMaps(torch.softmax(logits, -1), tuple(f"layer {l}" for l in range(L)),
                         mask=torch.ones(T, T, dtype=torch.bool).tril().expand(B, T, T))


def test_head_distinctness_is_the_mean_js_to_layer_mates_by_scipy_and_averages_to_the_diversity():
    from scipy.spatial.distance import jensenshannon

    maps = _random_causal_maps()
    w = maps.weights.double().numpy()
    L, B, H, T = 2, 2, 3, 5
    expected = np.zeros((L, H))
    for l in range(L):
        for h in range(H):
            others = [np.mean([np.mean([jensenshannon(w[l, b, h, i, : i + 1], w[l, b, g, i, : i + 1]) ** 2 for i in range(T)])
                               for b in range(B)]) for g in range(H) if g != h]
            expected[l, h] = np.mean(others)
    d = analysis.head_distinctness(maps)
    assert d.shape == (L, H) and np.allclose(d, expected, atol=1e-6)
    assert np.allclose(d.mean(1), metrics.head_diversity(maps).mean(1).numpy(), atol=1e-6)
    assert np.array_equal(analysis.head_distinctness(_random_causal_maps(H=1)), np.zeros((2, 1)))


def test_choose_heads_by_hand():
    prev = np.array([[0.1, 0.2, 0.3, 0.1], [0.9, 0.0, 0.9, 0.2]])  # a tie: the lower (layer, head) wins
    dist = np.array([[0.05, 0.30, 0.10, 0.30], [0.01, 0.02, 0.20, 0.03]])
    assert analysis.distinct_count(2, 4) == 2 and analysis.distinct_count(1, 2) == 1 and analysis.distinct_count(6, 6) == 9
    heads = analysis.choose_heads(prev, dist)
    assert heads == {"previous-character heads": [(1, 0), (1, 2)], "most distinct heads": [(0, 1), (0, 3)]}
    assert analysis.choose_heads(prev, dist, previous_count=3)["previous-character heads"] == [(0, 2), (1, 0), (1, 2)]
    assert analysis.choose_heads(prev, dist, count=3)["most distinct heads"] == [(0, 1), (0, 3), (1, 2)]
    with pytest.raises(InvalidInputError, match="count"):
        analysis.choose_heads(prev, dist, count=9)
    with pytest.raises(InvalidInputError, match="previous_count"):
        analysis.choose_heads(prev, dist, previous_count=0)
    with pytest.raises(InvalidInputError, match="previous_token"):
        analysis.choose_heads(prev, dist[:, :3])


# -- the causal section (attnbook.charlm.causal) ---------------------------------------------------
def test_independent_windows_share_no_character_and_the_splits_are_disjoint():
    data = np.arange(1000)
    sel, test = causal.independent_windows(data, 16, [20, 30], seed=4)
    assert len(sel) == 20 and len(test) == 30 and not set(sel) & set(test)
    starts = np.sort(np.concatenate([sel, test]))
    assert np.all(starts % 17 == 0) and np.all(np.diff(starts) >= 17) and starts[-1] + 17 <= len(data)  # T inputs + 1 target each
    x, y = windows(data, 16, starts)
    covered = np.concatenate([np.append(a.numpy(), b.numpy()[-1]) for a, b in zip(x, y)])  # every character a window reads or predicts
    assert len(set(covered.tolist())) == covered.size  # no character in two windows
    again = causal.independent_windows(data, 16, [20, 30], seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(again, (sel, test)))
    assert not np.array_equal(causal.independent_windows(data, 16, [20, 30], seed=5)[0], sel)
    assert sum(len(s) for s in causal.independent_windows(data, 16, [58], seed=0)) == 58  # ⌊1000 / 17⌋ = 58 windows fit
    with pytest.raises(InvalidInputError, match="counts"):
        causal.independent_windows(data, 16, [30, 29])


def _hand_window_losses(logits, y):
    """Each window's mean cross-entropy, by log-softmax and gather (independent of F.cross_entropy)."""
    logp = torch.log_softmax(logits.double(), -1)
    return (-logp.gather(-1, y.long()[..., None])[..., 0]).mean(1).detach().numpy()


def _hand_mean_ablated_loss(model, x, y, reference, heads):
    """Per-window loss with each (layer, head)'s slice before ``blocks[l].attn.proj`` replaced by its mean over every
    reference sample and position — written with plain hooks, independently of attnbook.intervene."""
    d = model.config.n_embd // model.config.n_head
    seen: dict[int, list[torch.Tensor]] = {}
    handles = [b.attn.proj.register_forward_pre_hook(lambda m, a, l=l: seen.setdefault(l, []).append(a[0].reshape(-1, a[0].shape[-1])))
               for l, b in enumerate(model.blocks)]
    with torch.no_grad():
        model(reference)
    for hnd in handles:
        hnd.remove()
    means = {l: torch.cat(v).mean(0) for l, v in seen.items()}

    def replace(m, a, l):
        z = a[0].clone()
        for hl, h in heads:
            if hl == l:
                z[..., h * d:(h + 1) * d] = means[l][h * d:(h + 1) * d]
        return (z,)

    handles = [b.attn.proj.register_forward_pre_hook(lambda m, a, l=l: replace(m, a, l)) for l, b in enumerate(model.blocks)]
    try:
        with torch.no_grad():
            return _hand_window_losses(model(x)[0], y)
    finally:
        for hnd in handles:
            hnd.remove()


def test_window_loss_is_one_value_per_window_and_the_prefix_cache_changes_nothing(corpus):
    from attnbook.intervene import ablate, head_means

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=corpus.vocab_size, block_size=16, n_layer=3, n_head=2, n_embd=16)).eval()
    x, y = windows(corpus.val, 16, np.arange(6) * 17)
    metric = causal.WindowLoss(model, x, y, memo=False)  # the memo's probe would run every block
    clean = metric(model)
    assert clean.shape == (6,) and clean.dtype == torch.float64
    assert np.allclose(clean.numpy(), _hand_window_losses(model(x)[0], y), atol=1e-6)
    with torch.no_grad():
        assert float(clean.mean()) == pytest.approx(float(model(x, y)[1]), abs=1e-6)  # windows of one length: the mean is the loss
    reference, _ = windows(corpus.train, 16, np.arange(5) * 30)
    means = head_means(model, reference)
    full = causal.WindowLoss(model, x, y, prefix_cache=False)
    ran = []
    for i, b in enumerate(model.blocks):  # count the blocks that run (a wrapped forward, not a hook: a hook marks a block as ablated)
        b.forward = lambda *a, i=i, f=b.forward, **k: (ran.append(i), f(*a, **k))[1]
    try:
        for heads, first in (([(0, 1)], 0), ([(1, 0)], 1), ([(2, 1)], 2), ([(1, 1), (2, 0)], 1)):
            with ablate(model, heads, how="mean", reference=means):
                ran.clear()
                cached = metric(model)
                assert sorted(set(ran)) == list(range(first, 3))  # the blocks below the lowest ablated one are not run again
                plain = full(model)
            assert torch.allclose(cached, plain, atol=1e-6, rtol=0)
            assert np.allclose(cached.numpy(), _hand_mean_ablated_loss(model, x, y, reference, heads), atol=1e-5)
    finally:
        for b in model.blocks:
            del b.forward
    assert metric.calls == 5 and full.calls == 4
    with pytest.raises(InvalidInputError, match="x/y"):
        causal.WindowLoss(model, x, y[:, :5])


def test_window_loss_memo_serves_a_repeated_ablation_with_the_same_numbers(corpus):
    from attnbook.intervene import ablate, head_means

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=corpus.vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=16)).eval()
    x, y = windows(corpus.val, 16, np.arange(6) * 17)
    means = head_means(model, windows(corpus.train, 16, np.arange(5) * 30)[0])
    memo, plain = causal.WindowLoss(model, x, y), causal.WindowLoss(model, x, y, memo=False)
    seen = []
    for heads in ([(0, 1)], [(1, 0)], [(0, 1)], [], [(1, 0)], [(0, 0), (1, 1)]):
        with ablate(model, heads, how="mean", reference=means):
            got, want = memo(model), plain(model)
        assert torch.equal(got, want)  # bit-identical: a stored value is the same computation's
        seen.append(got)
    assert memo.calls == plain.calls == 6 and plain.forwards == 6 and memo.forwards == 4  # two repeats served from the memo
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[3], seen[0])  # different ablations are not confused


def test_use_test_chooses_on_the_selection_split_and_tests_on_the_test_split(tmp_path):
    from types import SimpleNamespace

    from attnbook.intervene import CausalFamily

    text = "the cat sat on a mat. a dog ran to the log; " * 300
    chars = tuple(sorted(set(text)))
    ids = np.array([chars.index(c) for c in text], dtype=np.uint16)
    corpus = CharCorpus("tinyshakespeare", chars, ids[:9000], ids[9000:], None, "synthetic")
    torch.manual_seed(0)
    last = GPT(GPTConfig(vocab_size=len(chars), block_size=16, n_layer=2, n_head=8, n_embd=32)).eval()  # 16 heads: 120 pairs
    torch.manual_seed(1)
    middle = GPT(GPTConfig(vocab_size=len(chars), block_size=16, n_layer=2, n_head=8, n_embd=32)).eval()
    run = SimpleNamespace(spec=SimpleNamespace(name="tiny seed 0", seed=0), history=SimpleNamespace(best_step=30), middle_step=20)
    settings = causal.CausalSettings(test_windows=40, selection_windows=24, reference_windows=5, previous_count=2, exact_up_to=0)
    use = causal.use_test(run, corpus, settings, models={"last": last, "middle": middle}, seed=3)

    sel, test = causal.independent_windows(corpus.val, 16, [24, 40], seed=3)
    xs, ys = windows(corpus.val, 16, sel)
    xt, yt = windows(corpus.val, 16, test)
    reference, _ = windows(corpus.train, 16, np.random.default_rng(3).integers(0, len(corpus.train) - 16, 5))
    # selection: attention statistics and single-head effects on the selection windows only
    maps = causal_maps(last, xs)
    previous = metrics.previous_token_mass(maps).mean(1).numpy()
    assert np.allclose(use.last.previous_token, previous, atol=1e-6)
    assert {k: v for k, v in use.last.heads.items() if k != causal.CONTROL} == analysis.choose_heads(previous, analysis.head_distinctness(maps))
    clean_sel = _hand_window_losses(last(xs)[0], ys).mean()
    singles = {(l, h): _hand_mean_ablated_loss(last, xs, ys, reference, [(l, h)]).mean() - clean_sel for l in range(2) for h in range(8)}
    assert use.last.heads[causal.CONTROL] == sorted(sorted(singles, key=lambda p: -singles[p])[:2])
    # test: the family of the registry's two findings, each test sized for m = 2, on the 40 test windows
    family = use.family
    assert isinstance(family, CausalFamily) and list(family.tests) == list(causal.USE_KEYS.values()) == list(registry.causal_family("charlm-evolution"))
    clean = _hand_window_losses(last(xt)[0], yt)
    for key, name in zip(family.tests, (causal.PREVIOUS, causal.DISTINCT)):
        t = family.tests[key]
        assert t.family == 2 and t.units == 40 and t.how == "mean"
        assert np.allclose(t.unit_effects, _hand_mean_ablated_loss(last, xt, yt, reference, use.last.heads[name]) - clean, atol=1e-5)
        assert not t.result.exact and t.result.max_draws == 79 and t.smallest_p == pytest.approx(1 / 80)  # draws_for(0.05, 2), Monte Carlo
    assert family.control.family == 2 and family.control.heads == tuple((f"blocks.{l}.attn", h) for l, h in use.last.heads[causal.CONTROL])
    # the earlier snapshot: its own selection, described on the same test windows
    clean_mid = _hand_window_losses(middle(xt)[0], yt)
    for name, e in use.earlier_effects.items():
        assert e.units == 40 and e.heads == tuple(use.earlier.heads[name])
        assert e.effect == pytest.approx(float((_hand_mean_ablated_loss(middle, xt, yt, reference, e.heads) - clean_mid).mean()), abs=1e-5)
    assert use.earlier.step == 20 and use.last.step == 30
    # cost: every metric call counted, draws after stopping
    assert use.draws == sum(t.result.draws for t in (*family.tests.values(), family.control))
    assert use.selection_forwards == 2 * 17  # per snapshot: clean + 16 single heads (head_effects)
    calls = sum(2 + t.result.draws for t in (*family.tests.values(), family.control)) + 6  # clean + chosen + draws per test; 6 earlier
    assert 6 < use.test_forwards <= calls  # the memo runs a head set the tests share once
    cost = use.cost()
    assert set(cost) >= {"seed", "seconds", "forwards", "draws"} and cost["forwards"] == use.forwards
    records = use.records()
    assert [r["key"] for r in records] == [*causal.USE_KEYS.values(), "positive control"] and all(r["units"] == 40 for r in records)
    assert "24 independent validation windows" in records[0]["selection"] and "disjoint" in records[0]["test_split"]
    assert len(use.findings()) == 2 and len(use.earlier_records()) == 3
    table = causal.uses_table({0: use})
    assert table.index.names == ["seed", "test"] and len(table) == 3 and "selection statistic" in table.columns
    assert len(causal.earlier_table({0: use})) == 3 and len(causal.uses_strips({0: use})) == 3
    glue = causal.use_glue({0: use, 1: use})
    assert set(glue) == {f"use_{k}" for k in causal.USE_GLUE} and glue["use_windows"] == "40" and glue["use_step"] == "30"
    assert glue["use_max_draws"] == "79" and glue["use_selection_windows"] == "24" and glue["use_middle_step"] == "20"
    assert glue["use_reading"].startswith("*Seed 0:* the previous-character heads") and "*Seed 1:*" in glue["use_reading"]
    assert set(causal.use_glue(None).values()) == {"not run"} and causal.use_glue({}) == causal.use_glue(None)
    with pytest.raises(InvalidInputError, match="test_windows"):
        causal.CausalSettings(test_windows=0)
    with pytest.raises(InvalidInputError, match="previous_count"):
        causal.CausalSettings(previous_count=1)  # a single head of 16 cannot reach a corrected threshold


def test_a_run_stores_its_middle_snapshot_weights(corpus, tmp_path, monkeypatch):
    from attnbook.charlm.experiment import middle_step

    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    assert middle_step(1200, 150) == 600 and middle_step(30, 10) == 10 and middle_step(100_000, 5000) == 50_000 and middle_step(5000, 500) == 2500
    r = train_run(_spec(), corpus=corpus, progress=False)
    assert r.middle_step == 10
    last, middle = load_model(_spec()), load_model(_spec(), "middle")
    assert any(not torch.equal(a, b) for a, b in zip(last.state_dict().values(), middle.state_dict().values()))
    assert middle.lm_head.weight is middle.wte.weight
    # the middle weights are those of step 10: their attention on the stored window is the tracker's map at that step
    x = torch.as_tensor([[corpus.chars.index(c) for c in r.window]])
    k = r.steps.index(10)
    assert np.allclose(causal_maps(middle, x).weights[:, 0, :, :, :].numpy(), r.maps[k], atol=2e-3)
    assert not np.allclose(causal_maps(last, x).weights[:, 0].numpy(), r.maps[k], atol=2e-3)
    with pytest.raises(InvalidInputError, match="snapshot"):
        load_model(_spec(), "first")


# -- issue 31: statistics on independent windows, their controls, correlations described ---------------
def test_independent_starts_share_no_character_and_are_seeded():
    starts = controls.independent_starts(1000, 15, 40, seed=3)
    assert len(starts) == 40 and (np.diff(starts) >= 16).all() and (starts % 16 == 0).all() and starts.max() + 16 <= 1000
    assert np.array_equal(starts, controls.independent_starts(1000, 15, 40, seed=3))
    assert not np.array_equal(starts, controls.independent_starts(1000, 15, 40, seed=4))
    with pytest.raises(InvalidInputError, match="count"):
        controls.independent_starts(1000, 15, 63, seed=0)  # 62 windows of 16 fit in 999 characters
    assert controls.window_length(111_540, 64, 512) == 64 and controls.window_length(111_540, 256, 512) == 216  # quick / full
    assert (111_540 - 1) // (216 + 1) >= 512 and (111_540 - 1) // (217 + 1) < 512
    with pytest.raises(InvalidInputError, match="count"):
        controls.window_length(100, 64, 50)


def test_shuffled_text_is_a_permutation_of_each_window():
    x = torch.arange(40).reshape(4, 10)
    y = controls.shuffle_within(x, seed=1)
    assert torch.equal(y.sort(1).values, x) and not torch.equal(y, x)
    assert torch.equal(y, controls.shuffle_within(x, seed=1))
    with pytest.raises(InvalidInputError, match="x"):
        controls.shuffle_within(torch.arange(5), seed=0)


def test_permuted_positions_permute_the_position_rows_only(gpt):
    moved, perm = controls.permute_positions(gpt, seed=2)
    assert sorted(perm.tolist()) == list(range(TINY.block_size)) and perm.tolist() != list(range(TINY.block_size))
    assert torch.equal(moved.wpe.weight, gpt.wpe.weight[perm]) and moved is not gpt
    assert all(torch.equal(a, b) for (k, a), (_, b) in zip(moved.state_dict().items(), gpt.state_dict().items()) if k != "wpe.weight")
    assert not torch.equal(moved.wpe.weight, gpt.wpe.weight)  # the original is untouched, the copy moved
    with pytest.raises(InvalidInputError, match="model"):
        controls.permute_positions(torch.nn.Linear(2, 2))


def test_unrepeated_strings_keep_the_first_half_and_do_not_copy_it():
    rep, unrep = repeated_batch(11, 6, 5, seed=0), controls.unrepeated_batch(11, 6, 5, seed=0)
    assert unrep.shape == rep.shape and torch.equal(unrep[:, :5], rep[:, :5])
    assert torch.equal(rep[:, 5:], rep[:, :5]) and not torch.equal(unrep[:, 5:], unrep[:, :5])


def test_window_statistics_are_window_means_whatever_the_chunk(gpt):
    x = torch.randint(0, 11, (6, 16), generator=torch.Generator().manual_seed(0))
    rep = repeated_batch(11, 6, 4, seed=0)
    one = controls.window_statistics(gpt, x, period=4, repeated=rep, chunk=64)
    two = controls.window_statistics(gpt, x, period=4, repeated=rep, chunk=4)  # chunks of 4 and 2
    assert set(one) == {*controls.MEASURES, "induction"} and all(np.allclose(one[k], two[k], atol=1e-6) for k in one)
    maps = causal_maps(gpt, x)
    assert np.allclose(one["previous_token"], metrics.previous_token_mass(maps).mean(1).numpy(), atol=1e-6)
    assert np.allclose(one["span"], metrics.mean_distance(maps).mean(1).numpy(), atol=1e-5)
    assert np.allclose(one["key1"], metrics.key_mass(maps, 1).mean(1).numpy(), atol=1e-6)
    assert np.allclose(controls.layer_diversity(one["distances"], 2), metrics.head_diversity(maps).mean(1).numpy(), atol=1e-6)
    D = one["distances"]  # 2 layers × 2 heads: within = D[0,1], D[2,3]; between = the 8 cross-layer entries' mean
    within, between = controls.within_between(D, 2)
    assert within == pytest.approx((D[0, 1] + D[2, 3]) / 2) and between == pytest.approx(D[:2, 2:].mean())
    assert set(controls.window_statistics(gpt, x, measures=("span",))) == {"span"}
    with pytest.raises(InvalidInputError, match="measures"):
        controls.window_statistics(gpt, x, measures=("nope",))
    with pytest.raises(InvalidInputError, match="period"):
        controls.window_statistics(gpt, x, repeated=rep)
    with pytest.raises(InvalidInputError, match="distances"):
        controls.layer_diversity(np.zeros((3, 3)), 2)


def test_partial_correlation_equals_the_hand_formula_and_the_precision_matrix():
    rng = np.random.default_rng(0)
    z = rng.normal(size=50)
    x, y = z + rng.normal(size=50), 2 * z + rng.normal(size=50)
    r = np.corrcoef([x, y, z])
    hand = (r[0, 1] - r[0, 2] * r[1, 2]) / math.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))  # first-order partial correlation
    assert controls.partial_correlation(x, y, z) == pytest.approx(hand, abs=1e-10)
    w = rng.normal(size=50)  # two covariates: −P_xy / √(P_xx P_yy) of the precision matrix of (x, y, z, w)
    P = np.linalg.inv(np.cov([x, y, z, w]))
    assert controls.partial_correlation(x, y, np.column_stack([z, w])) == pytest.approx(-P[0, 1] / math.sqrt(P[0, 0] * P[1, 1]), abs=1e-10)
    assert abs(controls.partial_correlation(z + 0.01 * x, z + 0.01 * y, z)) < 1  # both trend with z: the trend is removed
    assert math.isnan(controls.partial_correlation([1.0, 2.0, 3.0], [2.0, 1.0, 0.0], [1.0, 2.0, 3.0]))  # too few points
    with pytest.raises(InvalidInputError, match="covariates"):
        controls.partial_correlation([1.0, 2.0], [1.0], [1.0, 2.0])
    with pytest.raises(InvalidInputError, match="finite"):
        controls.partial_correlation([1.0, math.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0])


def test_partial_correlations_are_descriptions_given_the_step(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    runs = [train_run(_spec(seed=s, steps=60), corpus=corpus, progress=False) for s in (0, 1)]
    table = controls.partial_correlations(runs)
    assert set(table.kind) == {"description"} and (table.n == 14).all() and set(table.against) == {"val_loss", "coherence", "repetition"}
    row = table[(table.metric == "entropy") & (table.against == "val_loss")].iloc[0]
    x = np.concatenate([r.snapshots["entropy"].reshape(len(r.steps), -1).mean(1) for r in runs])
    y = np.concatenate([r.history.val_loss for r in runs])
    step = np.concatenate([r.steps for r in runs]).astype(float)
    A = np.column_stack([np.ones(14), step, np.log1p(step), np.repeat([0.0, 1.0], 7)])  # intercept, step, log step, one run dummy
    res = lambda v: v - A @ np.linalg.lstsq(A, v, rcond=None)[0]  # noqa: E731
    assert row.partial_given_step == pytest.approx(np.corrcoef(res(x), res(y))[0, 1], abs=1e-9)
    assert row.pearson == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert "given the step r=" in controls.partial_reading(table, "entropy", "val_loss") and controls.partial_reading(table.iloc[:0], "a", "b") == "none"


def test_the_statistics_run_as_tasks_with_the_same_numbers(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    monkeypatch.setenv("ATTNBOOK_RAY", "0")
    r = train_run(_spec(), corpus=corpus, progress=False)
    models = controls.run_models(r)
    torch.manual_seed(0)  # the untrained model is rebuilt from the run's seed alone
    assert all(torch.equal(a, b) for a, b in zip(models["start"].state_dict().values(), GPT(TINY).state_dict().values()))
    direct = controls.run_statistics(r, corpus, windows=8)
    tasks = controls.seed_statistics([r], {"tinyshakespeare": corpus}, windows=8)[0][0]
    assert all(np.array_equal(direct.end[k], tasks.end[k]) for k in direct.end) and direct.windows == 8 and direct.window == 16
    assert set(direct.start) == {"span", "distances"} and set(direct.shuffled) == {"span"} and set(direct.positions) == {"previous_token"}
    assert controls.map_tasks(divmod, [((7, 2), {}), ((9, 4), {})]) == [(3, 1), (2, 1)]
    named = analysis.previous_token_heads({0: [direct]}, "tinyshakespeare")
    assert named[0]["mass"] == pytest.approx(float(direct.end["previous_token"].max())) and named[0]["named"] == (
        named[0]["mass"] > 0.5 and named[0]["control"] <= 0.5)
    assert analysis.previous_token_heads({0: [direct]}, "text8") == {} and "seed 0: largest mass on i−1" in analysis.previous_token_reading(named, "x")


def test_the_corpora_a_profile_did_not_run_are_named():
    from attnbook import profiles

    quick, full = profiles.get("charlm-evolution", "quick"), profiles.get("charlm-evolution", "full")
    out = analysis.profile_not_run("quick", quick, full, {})
    assert list(out) == ["enwik8 corpus"] and out["enwik8 corpus"].startswith("not in the `quick` profile (only `full` trains it)")
    out = analysis.profile_not_run("quick", quick, full, {"text8": "put text8.zip there"})
    assert list(out) == ["text8 corpus", "enwik8 corpus"] and out["text8 corpus"] == "put text8.zip there"
    assert analysis.profile_not_run("full", full, full, {}) == {}
