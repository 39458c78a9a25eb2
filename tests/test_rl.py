"""Algorithm Distillation: environments, sources, tokens, the transformer, compression, in-context runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnbook.capture import capture
from attnbook.errors import InvalidInputError
from attnbook.rl import analysis, compress, envs, sources
from attnbook.rl import model as ad

# --- environments ----------------------------------------------------------------------------------


def test_bandit_tasks_parity_variants():
    odd = envs.bandit_tasks(2000, 10, variant="odd", seed=0)
    even = envs.bandit_tasks(2000, 10, variant="even", seed=0)
    uniform = envs.bandit_tasks(2000, 10, seed=0)
    assert odd.shape == (2000, 10) and ((odd >= 0) & (odd <= 1)).all()
    share = lambda m, parity: float(np.mean(m.argmax(1) % 2 == parity))  # noqa: E731
    assert 0.93 < share(odd, 1) < 0.98 + 0.02 * 0.5
    assert 0.93 < share(even, 0) < 0.99
    assert 0.45 < share(uniform, 1) < 0.55
    assert np.array_equal(np.sort(odd, 1), np.sort(uniform, 1))  # only a swap of two means


def test_bandit_pulls_pay_their_means():
    means = np.array([[0.1, 0.9], [0.5, 0.2]])
    env = envs.Bandits(np.tile(means, (5000, 1)), seed=1)
    arms = np.tile([1, 0], 5000)
    r = env.pull(arms)
    assert abs(r[0::2].mean() - 0.9) < 0.02 and abs(r[1::2].mean() - 0.5) < 0.02
    assert np.allclose(env.regret(arms)[:2], [0.0, 0.0])
    assert np.allclose(env.regret(np.tile([0, 1], 5000))[:2], [0.8, 0.3])


@pytest.mark.parametrize("call, match", [
    (lambda: envs.bandit_tasks(5, 1), "arms"),
    (lambda: envs.bandit_tasks(5, 3, variant="prime"), "variant"),
    (lambda: envs.Bandits(np.ones((3, 1))), "at least 2 arms"),
    (lambda: envs.Bandits(np.full((2, 2), 1.5)), "probabilities"),
    (lambda: envs.Bandits(np.full((2, 2), 0.5)).pull(np.array([0, 2])), "arm indices"),
    (lambda: envs.DarkRoom(np.array([[9, 0]])), "inside the 9×9 grid"),
    (lambda: envs.DarkRoom(np.array([[-1, 3]])), "inside"),
    (lambda: envs.DarkRoom(np.array([[1, 1]]), horizon=0), "horizon"),
    (lambda: envs.goal_split(9, 81), "n_test"),
    (lambda: sources.bandit_histories(np.full((2, 3), 0.5), 0), "horizon"),
    (lambda: sources.bandit_histories(np.full((2, 3), 0.5), 5, "greedy"), "source"),
])
def test_documented_errors(call, match):
    with pytest.raises(InvalidInputError, match=match):
        call()


def test_darkroom_moves_rewards_and_episodes():
    env = envs.DarkRoom(np.array([[4, 5], [0, 0]]), size=9, horizon=3)
    s = env.reset()
    assert s.tolist() == [4 * 9 + 4] * 2
    s, r, done = env.step(np.array([0, 2]))  # up; left
    assert s.tolist() == [4 * 9 + 5, 3 * 9 + 4] and r.tolist() == [1.0, 0.0] and not done
    s, r, done = env.step(np.array([4, 2]))  # stay on the goal: paid again
    assert r.tolist() == [1.0, 0.0]
    _, _, done = env.step(np.array([4, 4]))
    assert done
    with pytest.raises(InvalidInputError, match="reset"):
        env.step(np.array([4, 4]))
    env.reset()
    for _ in range(3):
        s, _, _ = env.step(np.array([1, 1]))
    assert s.tolist() == [4 * 9 + 1, 4 * 9 + 1]  # both reset to the centre, then down three times


def test_walls_keep_the_agent_inside():
    env = envs.DarkRoom(np.array([[0, 0]]), size=3, horizon=10)
    env.reset()
    for _ in range(5):
        s, r, _ = env.step(np.array([2]))
    assert s.tolist() == [0 * 3 + 1] and r.tolist() == [0.0]


def test_goal_split_and_optimal_return():
    train, test = envs.goal_split(9, 16, seed=0)
    assert len(train) == 65 and len(test) == 16
    assert not set(map(tuple, train)) & set(map(tuple, test))
    assert np.array_equal(envs.goal_split(9, 16, seed=0)[1], test)
    assert envs.optimal_return(np.array([[4, 4], [4, 5], [0, 0], [8, 8]])).tolist() == [20.0, 20.0, 13.0, 13.0]
    assert abs(envs.optimal_return(np.stack(np.meshgrid(range(9), range(9)), -1).reshape(-1, 2)).mean() - 16.55) < 0.1


def test_expert_reaches_the_optimal_return():
    goals = np.stack(np.meshgrid(range(9), range(9)), -1).reshape(-1, 2)
    h = sources.expert_darkroom_histories(goals, episodes=2)
    assert np.array_equal(h.episode_returns(20)[:, 0], envs.optimal_return(goals))


# --- sources ---------------------------------------------------------------------------------------

def test_bandit_sources_order_by_regret():
    means = envs.bandit_tasks(400, 5, seed=3)
    regret = {}
    for src in sources.BANDIT_SOURCES:
        h = sources.bandit_histories(means, 60, src, seed=4)
        assert h.actions.shape == (400, 60) and set(np.unique(h.rewards)) <= {0.0, 1.0}
        regret[src] = float((means.max(1)[:, None] - means[np.arange(400)[:, None], h.actions]).sum(1).mean())
    assert regret["expert"] == 0.0
    assert regret["thompson"] < regret["ucb"] < regret["random"]


def test_ucb_pulls_every_arm_first_and_is_seeded():
    means = envs.bandit_tasks(8, 5, seed=0)
    h = sources.bandit_histories(means, 20, "ucb", seed=1)
    assert (h.actions[:, :5] == np.arange(5)).all()
    assert np.array_equal(h.actions, sources.bandit_histories(means, 20, "ucb", seed=1).actions)


def test_q_learning_improves_within_a_few_episodes():
    train, _ = envs.goal_split(9, 16, seed=0)
    h = sources.q_learning_histories(train[:20], episodes=40, streams=5, seed=0)
    returns = h.episode_returns(20)
    assert h.n == 100 and h.steps == 800
    assert returns[:, :5].mean() < 2.0 < 8.0 < returns[:, -5:].mean()
    # transitions chain: next_obs is the next obs, except across an episode end (reset to the centre)
    same = ~h.done[:, :-1]
    assert np.array_equal(h.next_obs[:, :-1][same], h.obs[:, 1:][same])
    assert (h.obs[:, 1:][h.done[:, :-1]] == 40).all()


def test_noisy_expert_histories_climb_from_random_play_to_the_optimum():
    train, _ = envs.goal_split(9, 16, seed=0)
    goals = train[:12]
    h = sources.noisy_expert_histories(goals, episodes=40, streams=4, seed=0)
    returns = h.episode_returns(20)
    optimal = np.repeat(envs.optimal_return(goals), 4)
    random_play = sources.noisy_expert_histories(goals, episodes=5, streams=4, eps_start=1.0, eps_end=1.0, seed=1).episode_returns(20)
    assert h.n == 48 and h.steps == 800
    assert returns[:, :5].mean() < random_play.mean() + 1.0  # starts as random play
    assert np.allclose(returns[:, -4:], optimal[:, None])  # ε = 0 over the last 10 % of the history: the optimum
    assert np.all(np.diff(returns.reshape(48, 8, 5).mean((0, 2))) > -1.0)  # rises along the history (5-episode means)
    same = ~h.done[:, :-1]
    assert np.array_equal(h.next_obs[:, :-1][same], h.obs[:, 1:][same])
    clean = sources.noisy_expert_histories(goals, episodes=2, streams=1, eps_start=0.0, eps_end=0.0)
    assert np.array_equal(clean.episode_returns(20), np.repeat(envs.optimal_return(goals)[:, None], 2, 1))  # ε = 0: optimal every episode
    uniform = sources.noisy_expert_histories(goals, episodes=20, streams=4, eps_start=1.0, eps_end=1.0, seed=2).actions
    counts = np.bincount(uniform.ravel(), minlength=5) / uniform.size
    assert np.abs(counts - 0.2).max() < 0.01  # ε = 1: uniform actions
    with pytest.raises(InvalidInputError, match="eps_start"):
        sources.noisy_expert_histories(goals, eps_start=1.5)
    with pytest.raises(InvalidInputError, match="decay_fraction"):
        sources.noisy_expert_histories(goals, decay_fraction=0.0)


# --- tokens and model ------------------------------------------------------------------------------

def test_encode_lays_out_the_seed_format():
    h = sources.Histories(np.array([[1, 2]]), np.array([[3, 0]]), np.array([[1.0, 0.0]]), np.array([[2, 0]]), np.array([[False, True]]))
    tok = ad.encode(h, n_states=3, n_actions=4)
    assert tok.shape == (1, 3, ad.token_dim(3, 4)) == (1, 3, 13)
    assert tok[0, 0].tolist() == [0] * 12 + [1]  # BOS
    # [s one-hot(3), a one-hot(4), r, s' one-hot(3), done, bos]
    assert tok[0, 1].tolist() == [0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0]
    assert tok[0, 2].tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0]
    with pytest.raises(InvalidInputError, match="n_actions"):
        ad.encode(h, 3, 3)


def test_windows_pair_tokens_with_the_next_action():
    means = envs.bandit_tasks(4, 3, seed=0)
    h = sources.bandit_histories(means, 12, "random", seed=0)
    w = ad.Windows(h, ad.ADConfig(n_states=1, n_actions=3, n_ctx=5))
    tokens, targets = w.sample(16, torch.Generator().manual_seed(0))
    assert tokens.shape == (16, 5, ad.token_dim(1, 3)) and targets.shape == (16, 5)
    # the action in token j+1 is the target of position j
    assert torch.equal(tokens[:, 1:, 1:4].argmax(-1), targets[:, :-1])
    with pytest.raises(InvalidInputError, match="n_ctx"):
        ad.Windows(h, ad.ADConfig(n_states=1, n_actions=3, n_ctx=13))


def small_model(n_ctx=9, arms=3, seed=0):
    torch.manual_seed(seed)
    return ad.ADTransformer(ad.ADConfig(n_states=1, n_actions=arms, n_ctx=n_ctx, d_model=16, n_layers=2, n_heads=2, d_ff=32)).eval()


def test_model_is_causal_and_its_maps_are_causal_distributions():
    model = small_model()
    x = torch.rand(2, 9, ad.token_dim(1, 3))
    with torch.no_grad():
        a = model(x)
        y = x.clone()
        y[:, 5:] = torch.rand(2, 4, y.shape[-1])
        b = model(y)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6) and not torch.allclose(a[:, 5:], b[:, 5:])
    with capture(model) as cap, torch.no_grad():
        model(x)
    w = cap.weights()
    assert torch.allclose(w.sum(-1), torch.ones(()), atol=1e-5)
    assert (w.triu(1) == 0).all()
    _, q = ad.query_attention(model, x)
    assert torch.allclose(q, w[..., -1, :])


def test_model_input_errors():
    model = small_model()
    with pytest.raises(InvalidInputError, match="tokens"):
        model(torch.rand(1, 10, ad.token_dim(1, 3)))
    with pytest.raises(InvalidInputError, match="positions"):
        model(torch.rand(1, 3, ad.token_dim(1, 3)), torch.tensor([0, 1, 9]))
    with pytest.raises(InvalidInputError, match="n_heads"):
        ad.ADConfig(d_model=10, n_heads=4)
    with pytest.raises(InvalidInputError, match="n_actions"):
        ad.ADConfig(n_actions=1)


# --- compression -----------------------------------------------------------------------------------

def test_strategies_keep_what_they_say():
    rng = np.random.default_rng(0)
    L, K = 10, 4
    assert compress.select("recent", 1, L, K).tolist() == [[6, 7, 8, 9]]
    assert compress.select("uniform", 2, L, K).tolist() == [[2, 4, 7, 9]] * 2
    assert compress.select("sink_recent", 1, L, K, n_sink=1).tolist() == [[0, 7, 8, 9]]
    assert compress.select("full", 1, L, L).tolist() == [list(range(10))]
    scores = np.arange(10.0)[::-1][None]  # oldest attended most
    assert compress.select("topk", 1, L, K, scores=scores).tolist() == [[0, 1, 2, 3]]
    assert compress.select("h2o", 1, L, K, scores=scores).tolist() == [[0, 1, 8, 9]]
    rewards = np.zeros((1, L))
    rewards[0, [1, 3]] = 1
    assert compress.select("reward", 1, L, K, rewards=rewards).tolist() == [[1, 3, 8, 9]]
    r = compress.select("random", 3, L, K, rng=rng)
    assert r.shape == (3, 4) and all(len(set(row)) == 4 for row in r.tolist())


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(compress.STRATEGIES), st.integers(1, 40), st.integers(1, 40), st.integers(0, 100))
def test_every_strategy_keeps_k_distinct_sorted_positions(strategy, L, K, seed):
    K = L if strategy == "full" else min(K, L)
    rng = np.random.default_rng(seed)
    kept = compress.select(strategy, 3, L, K, scores=rng.random((3, L)), rewards=(rng.random((3, L)) < 0.3).astype(float),
                           n_sink=min(1, K - 1), rng=rng)
    assert kept.shape == (3, K)
    assert all(row == sorted(set(row)) and 0 <= row[0] and row[-1] < L for row in kept.tolist())


@pytest.mark.parametrize("kwargs, match", [
    ({"strategy": "newest", "K": 2}, "strategy"),
    ({"strategy": "recent", "K": 0}, "K"),
    ({"strategy": "recent", "K": 11}, "K"),
    ({"strategy": "full", "K": 5}, "K = L"),
    ({"strategy": "topk", "K": 3}, "scores"),
    ({"strategy": "reward", "K": 3}, "rewards"),
    ({"strategy": "random", "K": 3}, "rng"),
    ({"strategy": "sink_recent", "K": 3, "n_sink": 3}, "n_sink"),
])
def test_compression_errors(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        compress.select(kwargs.pop("strategy"), 1, 10, kwargs.pop("K"), **kwargs)


def test_positions_and_gathering():
    kept = np.array([[1, 4, 6]])
    assert compress.positions_for(kept, 8).tolist() == [[0, 1, 2, 3]]
    assert compress.positions_for(kept, 8, "original").tolist() == [[1, 4, 6, 8]]
    window = torch.arange(9.0)[None, :, None]  # 8 context tokens + query
    assert compress.gather_window(window, kept)[0, :, 0].tolist() == [1, 4, 6, 8]
    with pytest.raises(InvalidInputError, match="positions"):
        compress.positions_for(kept, 8, "shifted")


def test_compressed_forward_with_original_positions_equals_masking_the_dropped_tokens():
    """Dropping tokens while keeping their positions = the full window with those keys masked out."""
    model = small_model(n_ctx=9)
    x = torch.rand(1, 9, ad.token_dim(1, 3))
    kept = np.array([[0, 2, 5, 7]])
    with torch.no_grad():
        small = model(compress.gather_window(x, kept), compress.positions_for(kept, 8, "original"))[0, -1]
        keep = torch.zeros(9, dtype=torch.bool)
        keep[[0, 2, 5, 7, 8]] = True
        h = model.embed(x) + model.pos(torch.arange(9))
        mask = keep[None, :].expand(9, 9) & torch.ones(9, 9, dtype=torch.bool).tril()
        mask = mask | torch.eye(9, dtype=torch.bool)
        full_masked = model.head(model.transformer(h, mask[None]))[0, -1]
    assert torch.allclose(small, full_masked, atol=1e-5)


# --- in-context runs ---------------------------------------------------------------------------------

def test_in_context_runs_every_strategy_on_bandits():
    model = small_model(n_ctx=9)
    means = envs.bandit_tasks(6, 3, seed=0)
    for strategy in compress.STRATEGIES:
        K = 8 if strategy == "full" else 4
        ro = ad.in_context(model, envs.Bandits(means, seed=1), 12, strategy=strategy, K=K, seed=2)
        assert ro.actions.shape == (6, 12) and ro.regret.shape == (6, 12) and ro.kept == K
        assert (ro.regret >= 0).all() and np.isfinite(ro.ms_per_step)
    a = ad.in_context(model, envs.Bandits(means, seed=1), 12, seed=2)
    b = ad.in_context(model, envs.Bandits(means, seed=1), 12, seed=2)
    assert np.array_equal(a.actions, b.actions)


def test_in_context_on_darkroom_and_errors():
    torch.manual_seed(0)
    model = ad.ADTransformer(ad.ADConfig(n_states=81, n_actions=5, n_ctx=9, d_model=16, n_layers=1, n_heads=2, d_ff=32)).eval()
    ro = ad.in_context(model, envs.DarkRoom(np.array([[4, 5], [0, 0]])), 45, strategy="reward", K=4)
    assert ro.rewards.shape == (2, 45) and ro.regret is None
    with pytest.raises(InvalidInputError, match="env"):
        ad.in_context(model, envs.Bandits(np.full((2, 5), 0.5)), 3)
    with pytest.raises(InvalidInputError, match="K"):
        ad.in_context(model, envs.DarkRoom(np.array([[1, 1]])), 3, strategy="recent", K=9)
    with pytest.raises(InvalidInputError, match="positions"):
        ad.in_context(model, envs.DarkRoom(np.array([[1, 1]])), 3, positions="none")


# --- the seed's query statistics ---------------------------------------------------------------------

def test_query_stats_on_hand_made_rows():
    from scipy.stats import entropy as scipy_entropy

    from attnbook.rl import analysis

    L = 8
    uniform = np.full(L + 1, 1.0 / (L + 1))
    recent = np.r_[np.full(L - 2, 0.01), 0.2, 0.66, 0.06]
    sink = np.r_[0.6, np.full(L - 1, 0.05), 0.05]
    w = torch.tensor(np.stack([uniform, recent, sink]))[None, :, None, :]  # (1 layer, 3 samples, 1 head, L+1)
    rewards = np.zeros((3, L))
    rewards[:, 7] = 1
    s = analysis.query_stats(w, rewards)
    p = [row[:L] / row[:L].sum() for row in (uniform, recent, sink)]
    assert np.allclose(s["entropy"][0, :, 0], [scipy_entropy(x, base=np.e) for x in p])  # nats
    assert np.allclose(s["entropy_norm"][0, 0, 0], 1.0)
    assert np.allclose(s["recency"][0, 0, 0], 1.0) and s["recency"][0, 1, 0] > 2
    assert s["recency"][0, 2, 0] < 0.5 and np.isclose(s["recency_no_sink"][0, 2, 0], 1.0)  # the sink explains it
    assert s["argmax"][0, :, 0].tolist() == [0.0, 7.0, 0.0]
    assert np.isclose(s["sink"][0, 2, 0], 0.6 / 0.95)
    assert np.isclose(s["reward_enrichment"][0, 0, 0], 1.0) and s["reward_enrichment"][0, 1, 0] > 4
    rows = analysis.summarise(s)
    assert len(rows) == 1 and np.isclose(rows[0]["sink"], np.mean(s["sink"]))
    text = analysis.insights(rows)
    assert any(t.startswith("diffuse") for t in text) and len(text) == len(analysis.THRESHOLDS)
    assert np.isnan(analysis.query_stats(w)["reward_enrichment"]).all()
    with pytest.raises(InvalidInputError, match="rewards"):
        analysis.query_stats(w, np.zeros((3, 2)))
    with pytest.raises(InvalidInputError, match="attention"):
        analysis.query_stats(torch.rand(3, 4))


# --- experiment helpers and the explorer -------------------------------------------------------------

def test_regret_summary_and_random_darkroom():
    from attnbook.rl.experiment import random_darkroom, regret_summary

    r = np.tile(np.r_[np.full(10, 0.5), np.zeros(10), np.full(10, 0.1)], (4, 1))
    s = regret_summary(r)
    assert s["R(T)"] == pytest.approx(6.0) and s["R(T) se"] == 0.0
    assert s["first 10"] == pytest.approx(0.5) and s["last 10"] == pytest.approx(0.1)
    with pytest.raises(InvalidInputError, match="regret"):
        regret_summary(np.zeros((3, 5)))
    ret = random_darkroom(np.array([[4, 4], [0, 0]]), 3, seed=0)
    assert ret.shape == (2, 3) and ret[0].min() >= 0 and ret.max() <= 20


def test_compression_sweep_cost_and_memory():
    from attnbook.rl.experiment import attention_memory, compression_sweep, step_cost

    model = small_model(n_ctx=9)
    means = envs.bandit_tasks(5, 3, seed=0)
    rows = compression_sweep(model, lambda: envs.Bandits(means, seed=1), 12, ["recent", "topk"], [4, 2], random_level=10.0,
                             positions="original", progress=False)
    assert [(r["strategy"], r["K"]) for r in rows] == [("full", 8), ("recent", 4), ("recent", 2), ("topk", 4), ("topk", 2)]
    assert rows[0]["% of full"] == pytest.approx(100.0)
    window = torch.rand(3, 9, ad.token_dim(1, 3))
    for strategy, k in (("full", 8), ("recent", 4), ("topk", 4), ("h2o", 4)):
        assert 0 < step_cost(model, window, strategy, k, repeats=2) < 1000
    with capture(model) as cap, torch.no_grad():
        model(window[:, :5])
    assert attention_memory(model, 3, 4) == sum(w.nbytes for w in cap.weights())


def test_compression_explorer():
    import pandas as pd

    from attnbook.rl.explorer import CompressionExplorer, render_compression

    g = torch.Generator().manual_seed(0)
    query = torch.softmax(torch.randn(2, 3, 2, 11, generator=g), -1)
    rewards = (torch.rand(3, 10, generator=g) < 0.3).double().numpy()
    sweep = pd.DataFrame([{"strategy": s, "K": k, "performance": 1.0, "se": 0.1, "% of full": 90.0}
                          for s in compress.STRATEGIES for k in (5, 2)])
    fig, info = render_compression(query, rewards, sweep, "topk", 5)
    bars = fig.axes[0].containers
    assert len(bars[1]) == 5 and "90.0 % of full" in info
    ex = CompressionExplorer(query, rewards, sweep, [5, 2])
    assert ex.n_renders == 1
    ex.strategy.value = "recent"
    ex.K.value = 2
    ex.task.value = 2
    assert ex.n_renders == 4 and "<b>recent</b>, K = 2" in ex.info.value
    _, missing = render_compression(query, rewards, sweep.iloc[:0], "recent", 2)
    assert "not in the sweep" in missing
    with pytest.raises(InvalidInputError, match="sweep"):
        CompressionExplorer(query, rewards, pd.DataFrame(), [5])
    with pytest.raises(InvalidInputError, match="query"):
        render_compression(torch.rand(3, 4), rewards, sweep, "recent", 2)


def test_compression_view_holds_every_strategy_and_k_with_the_kept_keys():
    import pandas as pd

    from attnbook.rl.explorer import compression_view
    from attnbook.views import read

    model = small_model(n_ctx=11)
    g = torch.Generator().manual_seed(0)
    window = torch.rand(3, 11, ad.token_dim(1, 3), generator=g)
    rewards = (torch.rand(3, 10, generator=g) < 0.3).double().numpy()
    sweep = pd.DataFrame([{"strategy": s, "K": k, "performance": 1.0, "se": 0.1, "% of full": 90.0}
                          for s in compress.STRATEGIES for k in (5, 2)])
    data = read(compression_view(model, window, rewards, sweep, [5, 2], tasks=2).to_html())[0]
    strategies = [s for s in compress.STRATEGIES if s != "full"]
    assert data["facets"] == [{"name": "strategy", "values": strategies}, {"name": "K", "values": ["2", "5"]}]
    recent5 = data["entries"][[e["note"] for e in data["entries"]].index("recent, K = 5: performance 1.000 ± 0.100, 90.0 % of full")]
    assert [s["label"] for s in recent5["samples"]] == ["task 0", "task 1"]
    keys = recent5["samples"][0]["keys"]
    assert [k.rstrip("★") for k in keys] == ["t5", "t6", "t7", "t8", "t9", "query"]
    assert all((k.endswith("★")) == (rewards[0, int(k[1:].rstrip("★"))] > 0) for k in keys[:-1])
    assert recent5["weights"][0].shape == (2, 2, 6, 6) and not recent5["allowed"][0][0, 1]  # causal
    with pytest.raises(InvalidInputError, match="sweep"):
        compression_view(model, window, rewards, pd.DataFrame(), [5])
    with pytest.raises(InvalidInputError, match="ks"):
        compression_view(model, window, rewards, sweep, [])


def test_context_dropout_masks_keys_but_never_self():
    means = envs.bandit_tasks(4, 3, seed=0)
    h = sources.bandit_histories(means, 12, "random", seed=0)
    w = ad.Windows(h, ad.ADConfig(n_states=1, n_actions=3, n_ctx=6), context_dropout=1.0)
    tokens, targets, mask = w.sample(64, torch.Generator().manual_seed(0))
    assert mask.shape == (64, 6, 6) and mask.diagonal(dim1=1, dim2=2).all()
    assert (~mask).any()  # some keys hidden
    visible = torch.stack([mask[:, (j + 1) % 6, j] for j in range(6)], 1)
    assert (mask == (visible[:, None, :] | torch.eye(6, dtype=torch.bool))).all()  # a key is hidden from every query alike
    model = small_model(n_ctx=6)
    assert torch.isfinite(model.loss(tokens, targets, mask))
    with pytest.raises(InvalidInputError, match="context_dropout"):
        ad.Windows(h, ad.ADConfig(n_states=1, n_actions=3, n_ctx=6), context_dropout=1.5)


def test_train_ad_learns_caches_and_honours_precision(tmp_path, monkeypatch):
    from attnbook.train import TrainConfig

    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    means = envs.bandit_tasks(64, 3, seed=0)
    histories = sources.bandit_histories(means, 12, "ucb", seed=1)
    config = ad.ADConfig(n_states=1, n_actions=3, n_ctx=12, d_model=16, n_heads=2, n_layers=1, d_ff=32)
    train = TrainConfig(steps=40, batch_size=16, lr=3e-3, warmup=5, eval_every=20)
    model, history, loaded = ad.train_ad(histories, config, train, data_key={"test": 1}, val_batch=32, progress=False, precision="bf16")
    assert not loaded and (history.device, history.precision) == ("cpu", "bf16") and history.best_val < history.val_loss[0]
    assert next(model.parameters()).dtype == torch.float32 and not model.training
    again, history2, loaded2 = ad.train_ad(histories, config, train, data_key={"test": 1}, val_batch=32, progress=False)
    assert loaded2 and history2.val_loss == history.val_loss
    with pytest.raises(InvalidInputError, match="precision"):
        ad.train_ad(histories, config, TrainConfig(steps=3, warmup=0), data_key={"test": 2}, progress=False, precision="fp8")


def _play(ad_=(0.3, 0.1), ed=(0.35, 0.35), totals=None, tasks=4, pulls=20):
    """Per-pull regret (tasks, pulls): each player at ``first`` for the first 10 pulls and ``last`` after,
    scaled so that its cumulative regret is ``totals[name]`` (default AD 10, ED 19, UCB1 10.5, Thompson 6, random 20)."""
    totals = {"AD": 10.0, "ED": 19.0, "UCB1 (source)": 10.5, "Thompson": 6.0, "random": 20.0, **(totals or {})}
    shape = {"AD": ad_, "ED": ed, "UCB1 (source)": (0.3, 0.1), "Thompson": (0.3, 0.05), "random": (0.33, 0.33)}
    out = {}
    for name, (first, last) in shape.items():
        r = np.tile(np.r_[np.full(10, first), np.full(pulls - 10, last)], (tasks, 1))
        out[name] = r * totals[name] / r.sum(1).mean()
    return out


def test_play_findings_by_hand():
    learns, beats, matches = analysis.play_findings(_play())
    assert learns.spec.key == "ad-compression/learns-in-context"
    assert learns.measured == {"last 10 − first 10": pytest.approx(-0.2 * 10.0 / 4.0)}  # AD scaled to R(T) 10 from 4
    assert learns.control["last 10 − first 10"] == pytest.approx(0.0) and learns.verdict == "supported"
    assert beats.measured == {"R(T) ÷ random's": pytest.approx(0.5)} and beats.control == {"R(T) ÷ random's": pytest.approx(0.95)}
    assert matches.measured["|R(T) ÷ source's − 1|"] == pytest.approx(0.5 / 10.5)
    assert matches.control["|R(T) ÷ source's − 1|"] == pytest.approx(4.5 / 10.5)
    assert [f.verdict for f in (beats, matches)] == ["supported", "supported"] and "random play: " in matches.detail
    ed_learns = analysis.play_findings(_play(ed=(0.35, 0.3)))[0]  # ED improves too: the rule cannot tell them apart
    assert (ed_learns.verdict, ed_learns.reason) == ("not supported", "the control meets the rule too")
    assert analysis.play_findings(_play(ad_=(0.2, 0.25)))[0].verdict == "not supported"  # AD gets worse
    assert analysis.play_findings(_play(totals={"AD": 15.0}))[1].verdict == "not supported"  # 0.75 of random's
    thompson_close = analysis.play_findings(_play(totals={"Thompson": 11.0}))[2]  # Thompson within 15 % of UCB1 too
    assert thompson_close.verdict == "not supported"
    with pytest.raises(InvalidInputError, match="Thompson"):
        analysis.play_findings({k: v for k, v in _play().items() if k != "Thompson"})
    with pytest.raises(InvalidInputError, match="pulls"):
        analysis.play_findings({k: v[:, :15] for k, v in _play().items()})


def _head_rows(*heads):
    return [{"recency": r, "recency_no_sink": n, "entropy_norm": e} for r, n, e in heads]


def test_attention_findings_by_hand():
    rows = _head_rows((3.0, 2.5, 0.5), (3.0, 2.5, 0.8), (3.0, 1.5, 0.5), (1.0, 1.0, 0.95))
    flat = _head_rows((1.1, 1.0, 0.99), (0.9, 1.0, 0.99))
    assert analysis.recency_survival(rows) == (2, 3) and analysis.recency_survival(flat) == (0, 0)
    recency, reward = analysis.attention_findings(rows, flat, 2.0, 1.2)
    assert recency.measured == {"surviving share": pytest.approx(2 / 3)} and recency.control == {"surviving share": 0.0}
    assert recency.verdict == "supported" and recency.detail.startswith("2 of 3 heads")
    assert reward.spec.key == "ad-compression/reward-attention-bandits" and reward.verdict == "supported"
    half = _head_rows((3.0, 2.5, 0.5), (3.0, 1.5, 0.5))  # 1 of 2: not most
    assert analysis.attention_findings(half, flat, 2.0, 1.2)[0].verdict == "not supported"
    assert analysis.attention_findings(flat, flat, 2.0, 1.2)[0].measured == {"surviving share": 0.0}  # no raw-recency head
    assert analysis.attention_findings(rows, rows, 2.0, 1.2)[0].verdict == "not supported"  # the control has the bias too
    recency_only = analysis.attention_findings(rows, flat, 2.0, 1.6)[1]  # another task's rewards "enriched" as much
    assert recency_only.verdict == "not supported" and recency_only.reason == "the control meets the rule too"
    assert analysis.attention_findings(rows, flat, float("nan"), 1.0)[1].verdict == "inconclusive"  # no rewarded transition
    dark = analysis.attention_findings(rows, flat, 5.07, 1.1, darkroom=True)[1]
    assert dark.spec.key == "ad-compression/reward-attention-darkroom" and dark.measured == {"mean enrichment": 5.07}


def test_reward_enrichment_and_its_control_by_hand():
    L = 4  # query rows (1 layer, 2 tasks, 1 head, L + 1): task 0 reads position 3, task 1 position 0
    attention = torch.tensor([[[[0.0, 0.0, 0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0, 0.0, 0.0]]]], dtype=torch.float64)
    rewards = np.array([[0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]])  # each reads a rewarded transition
    assert analysis.mean_enrichment(attention, rewards) == pytest.approx((4.0 + 2.0) / 2)
    rolled = analysis.other_tasks_rewards(rewards)
    assert np.array_equal(rolled, rewards[::-1]) and analysis.mean_enrichment(attention, rolled) == pytest.approx(0.0)
    assert np.isnan(analysis.mean_enrichment(attention, np.zeros((2, L))))
    with pytest.raises(InvalidInputError, match="rewards"):
        analysis.other_tasks_rewards(np.zeros((1, L)))


def _dark_returns(first, last, ed=(1.0, 1.0), optimal=16.0):
    import pandas as pd

    return pd.DataFrame({"AD": [first] * 10 + [last] * 10, "ADε demonstrator (source, 1 stream)": [5.0] * 20,
                         "ED": [ed[0]] * 10 + [ed[1]] * 10, "random": [0.5] * 20, "optimal": [optimal] * 20})


def test_darkroom_finding_is_the_in_context_learning_bar():
    f = analysis.darkroom_finding(_dark_returns(4.0, 9.6))
    assert f.spec.key == "ad-compression/darkroom-in-context" and f.verdict == "supported"
    assert f.measured == {"last 10 − 2 × first 10": pytest.approx(1.6), "last 10 ÷ optimal": pytest.approx(0.6)}
    assert f.control == {"last 10 − 2 × first 10": pytest.approx(-1.0), "last 10 ÷ optimal": pytest.approx(1 / 16)}
    assert "ADε demonstrator (source, 1 stream): first 10 5.000, last 10 5.000" in f.detail and "optimal 16.000" in f.detail
    assert analysis.darkroom_finding(_dark_returns(5.0, 9.6)).verdict == "not supported"  # 1.92× the first 10: not twice
    assert analysis.darkroom_finding(_dark_returns(2.0, 7.9)).verdict == "not supported"  # 49 % of optimal
    assert analysis.darkroom_finding(_dark_returns(2.0, 8.0)).verdict == "supported"  # exactly both bars
    assert analysis.darkroom_finding(_dark_returns(0.0, 8.0)).verdict == "supported"  # from nothing to half the optimum
    assert analysis.darkroom_finding(_dark_returns(2.0, 8.0, ed=(0.0, 8.0))).verdict == "not supported"  # ED climbs too
    with pytest.raises(InvalidInputError, match="returns"):
        analysis.darkroom_finding(_dark_returns(1.0, 2.0).head(19))


def test_the_chapters_findings_are_the_registered_ones_for_each_profile():
    import pandas as pd

    from attnbook import registry

    sweep = pd.DataFrame([{"strategy": s, "K": k, "performance": 12.0, "% of full": 95.0, "speed-up, batched": 2.0}
                          for s in ("recent", "random", "topk") for k in (29, 14)] + [{"strategy": "full", "K": 59, "performance": 11.0,
                                                                                         "% of full": 100.0, "speed-up, batched": 1.0}])
    rows = _head_rows((3.0, 2.5, 0.5))
    common = (analysis.play_findings(_play()) + analysis.compression_findings(sweep, [29, 14], 59, {29: 12.0, 14: 12.0})
              + analysis.head_findings(_study(3.0, 3.0)) + analysis.recency_findings(1.0, {"shuffled": 0.1, "ed": 0.2, "untrained": 0.0}, 14, 59))
    quick = common + analysis.attention_findings(rows, rows, 2.0, 1.0)
    full = common + analysis.attention_findings(rows, rows, 2.0, 1.0, darkroom=True) + [analysis.darkroom_finding(_dark_returns(4.0, 9.6))]
    for profile, found in (("quick", quick), ("full", full)):
        assert sorted(f.spec.key for f in found) == sorted(s.key for s in registry.chapter_specs("ad-compression", profile))


def test_step_zero_is_ads_initial_weights_and_leaves_the_random_state():
    from attnbook.rl import experiment

    config = ad.ADConfig(n_states=1, n_actions=3, n_ctx=9, d_model=16, n_heads=2, n_layers=1, d_ff=32)
    torch.manual_seed(3)
    before = torch.random.get_rng_state()
    twin = experiment.step_zero(config, seed=1)
    assert torch.equal(torch.random.get_rng_state(), before) and not twin.training
    torch.manual_seed(1)
    reference = ad.ADTransformer(config)
    assert all(torch.equal(a, b) for a, b in zip(twin.state_dict().values(), reference.state_dict().values()))


def test_darkroom_study_runs_the_chapter_4_experiment_end_to_end(tmp_path, monkeypatch):
    from attnbook.rl.experiment import darkroom_study

    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    from attnbook.profiles import Training
    from attnbook.rl.experiment import DarkRoomSettings

    d = DarkRoomSettings(test_goals=4, episodes=2, streams=1, n_ctx=21, eval_episodes=2,
                         train=Training(steps=2, batch_size=4, lr=1e-3, warmup=1, eval_every=2))
    study = darkroom_study(d, context_dropout=0.0, k_divisors=[2, 4], seed=0)
    assert list(study.returns.columns) == ["AD", "ED", "Q-learning (source, 1 stream)", "random", "optimal"]
    assert len(study.returns) == 2 and (study.returns["optimal"] > 0).all()
    assert np.isfinite(study.enrichment) or np.isnan(study.enrichment)
    assert np.isfinite(study.enrichment_other_goals) or np.isnan(study.enrichment_other_goals)
    assert {10, 5} <= set(study.sweep.K) and "topk" in set(study.sweep.strategy)
    again = darkroom_study(d, context_dropout=0.0, k_divisors=[2, 4], seed=0)  # cached models, seeded runs: the same numbers
    timed = [c for c in study.sweep.columns if "ms/" in c]  # wall time is the one column that may differ
    assert again.returns.equals(study.returns) and again.sweep.drop(columns=timed).equals(study.sweep.drop(columns=timed))
    noisy = darkroom_study(dataclasses.replace(d, source="noisy_expert"), context_dropout=0.0, k_divisors=[2, 4], seed=0)
    assert list(noisy.returns.columns) == ["AD", "ED", "ADε demonstrator (source, 1 stream)", "random", "optimal"]
    assert not noisy.returns["AD"].equals(study.returns["AD"]) or not noisy.sweep.drop(columns=timed).equals(study.sweep.drop(columns=timed))
    with pytest.raises(InvalidInputError, match="source"):
        dataclasses.replace(d, source="ppo")


# --- does the model use it? the recency heads against every other pair of heads --------------------

def test_recency_heads_picks_the_largest_sink_corrected_ratios():
    rows = [{"layer": 0, "head": 0, "recency": 9.0, "recency_no_sink": 1.0},
            {"layer": 0, "head": 1, "recency": 1.0, "recency_no_sink": 5.0},
            {"layer": 1, "head": 0, "recency": 1.0, "recency_no_sink": 7.0},
            {"layer": 1, "head": 1, "recency": 1.0, "recency_no_sink": float("nan")},
            {"layer": 2, "head": 0, "recency": 1.0, "recency_no_sink": 5.0}]
    assert analysis.recency_heads(rows, 2) == [(1, 0), (0, 1)]  # the tie at 5.0 goes to the lower layer
    assert analysis.recency_heads(rows, 3) == [(1, 0), (0, 1), (2, 0)]
    assert analysis.recency_heads(rows, 1, stat="recency") == [(0, 0)]  # the raw ratio would pick another head
    assert analysis.head_label(2, 3) == "L2H3"
    with pytest.raises(InvalidInputError, match="top"):
        analysis.recency_heads(rows, 5)  # only 4 finite heads
    with pytest.raises(InvalidInputError, match="rows"):
        analysis.recency_heads([{"layer": 0, "head": 0}], 1)


def test_recency_heads_on_query_stats_of_hand_made_rows():
    L = 8  # quarters of 2 positions: the newest are 6, 7; the oldest without the sink 1, 2
    flat = np.r_[np.full(L, 1.0 / L), 0.0]  # the query's own weight (last) is left out anyway
    recent = np.r_[np.full(L - 2, 0.01), 0.47, 0.47, 0.0]  # ratio 0.47 / 0.01 = 47
    old = np.r_[0.0, 0.45, 0.45, np.full(L - 3, 0.02), 0.0]  # ratio 0.02 / 0.45
    attention = torch.tensor(np.stack([old, flat, recent]), dtype=torch.float64).reshape(1, 1, 3, L + 1)  # 1 layer, 3 heads
    rows = analysis.summarise(analysis.query_stats(attention))
    assert [r["recency_no_sink"] for r in rows] == pytest.approx([0.02 / 0.45, 1.0, 47.0])
    assert analysis.recency_heads(rows, 3) == [(0, 2), (0, 1), (0, 0)]


def _head_test(effect, heads=(("transformer.blocks.3.attn", 2), ("transformer.blocks.3.attn", 3))):
    """A hand-made exact test of a pair against the 119 other pairs of 16 heads, whose mean effects are 0.0, 0.02, …, 2.36;
    the pair's units: ``effect`` ± 1 over 100 episodes."""
    from attnbook import stats
    from attnbook.intervene import HeadSetTest

    units = tuple(effect + (-1.0) ** i for i in range(100))
    return HeadSetTest(tuple(heads), "unmatched", "the layer-matched space has 6 set(s)", 10.0, units,
                       stats.exact_test(effect, [0.02 * i for i in range(119)]), 0.05, 1, stats.bootstrap_interval(units), 0.1, "mean")


def _study(effect, control_effect):
    """A stand-in for a HeadStudy: its causal family (the chapter's one finding and the positive control)."""
    from types import SimpleNamespace

    from attnbook.intervene import CausalFamily
    from attnbook.rl import experiment

    family = CausalFamily({experiment.HEADS_KEY: _head_test(effect)}, _head_test(control_effect), "selection split", "test split")
    return SimpleNamespace(family=family)


def test_the_head_family_follows_the_causal_rule_with_its_positive_control():
    from attnbook import registry

    above, below, control = _study(3.0, 3.0), _study(1.0, 3.0), _study(3.0, 1.0)
    found = analysis.head_findings(above)[0]
    assert found.spec.key == "ad-compression/recency-heads-used" and found.spec.rule == registry.CAUSAL_RULE
    assert found.verdict == "supported" and found.measured[registry.CAUSAL_P] == pytest.approx(1 / 120)  # above all 119 others
    assert found.measured[registry.CAUSAL] == pytest.approx(3.0 - 0.01 * 118)  # effect − null mean
    # an effect of 1.0 is reached by the 69 pairs from 1.00 to 2.36: p = 70/120, not supported
    assert analysis.head_findings(below)[0].verdict == "not supported"
    assert below.family.tests[registry.causal_family("ad-compression")[0]].p == pytest.approx(70 / 120)
    # a positive control that is not detected (p = 70/120 ≥ α/m) makes the finding inconclusive, whatever its own p
    assert analysis.head_findings(control)[0].verdict == "inconclusive"


class _Test:
    """A stand-in for a HeadSetTest: what tokens_and_heads reads."""

    def __init__(self, effect, null_mean):
        self.effect, self.null_mean = effect, null_mean


def test_tokens_and_heads_by_hand():
    import pandas as pd

    sweep = pd.DataFrame([{"strategy": "full", "K": 59, "performance": 10.0},
                          {"strategy": "topk", "K": 29, "performance": 12.0}, {"strategy": "random", "K": 29, "performance": 11.0},
                          {"strategy": "topk", "K": 14, "performance": 13.0}, {"strategy": "random", "K": 14, "performance": 15.5}])
    table = analysis.tokens_and_heads(sweep, [29, 14], [(1, 0), (0, 1)], _Test(20.0, 9.5), 16, marks=True)
    assert table["damage, attention's choice"].tolist() == [2.0, 3.0, 20.0]
    assert table["damage, random choice"].tolist() == [1.0, 5.5, 9.5]  # the head row: the null's mean
    assert table["attention marks what matters"].tolist() == [False, True, True]
    assert table["dropped"].tolist() == ["tokens: 30 of 59 context transitions", "tokens: 45 of 59 context transitions",
                                         "heads: 2 of 16 heads (mean-ablated)"]
    assert "L1H0, L0H1" in table["attention's choice"].iloc[-1]
    # the head row follows the family's verdict, not a percentile of its own
    assert analysis.tokens_and_heads(sweep, [29], [(1, 0), (0, 1)], _Test(20.0, 9.5), 16, marks=False)["attention marks what matters"].tolist() == [False, False]


def test_cached_forward_and_bandit_rollout_equal_the_full_passes():
    from attnbook.intervene import ablate, head_means
    from attnbook.modules import KVCache

    torch.manual_seed(0)
    model = ad.ADTransformer(ad.ADConfig(n_states=1, n_actions=3, n_ctx=9)).eval()
    tokens = torch.randn(2, 7, ad.token_dim(1, 3))
    cache = KVCache()
    with torch.no_grad():
        full = model(tokens)
        stepped = torch.cat([model(tokens[:, t:t + 1], cache=cache) for t in range(7)], 1)
    assert torch.allclose(stepped, full, atol=1e-5)
    with pytest.raises(InvalidInputError, match="tokens"):
        model(tokens[:, :3], cache=cache)  # 7 cached + 3 > n_ctx = 9
    means = envs.bandit_tasks(12, 3, seed=4)
    for heads in ([], [(1, 2), (3, 0)]):  # intact, then two heads mean-ablated: the hooks act on the cached path too
        with ablate(model, heads, how="mean", reference=head_means(model, tokens)):
            fast = ad.bandit_rollout(model, means, 8, seed=5)
            slow = ad.in_context(model, envs.Bandits(means, seed=7), 8, seed=5)
        assert np.array_equal(fast.actions, slow.actions) and np.array_equal(fast.regret, slow.regret)
        assert torch.equal(fast.window, slow.window) and np.array_equal(fast.window_rewards, slow.window_rewards)
    with pytest.raises(InvalidInputError, match="steps"):
        ad.bandit_rollout(model, means, 10)  # the window would roll


def test_regret_metric_gives_one_paired_value_per_episode():
    from attnbook.rl import experiment

    model = small_model(n_ctx=13)
    means = envs.bandit_tasks(5, 3, seed=0)
    metric = experiment.regret_metric(means, 12, seed=1)
    expected = ad.in_context(model, envs.Bandits(means, seed=3), 12, seed=1).regret.sum(1)
    values = metric(model)
    assert values.shape == (5,) and np.allclose(values, expected) and np.array_equal(values, metric(model))  # seeded: the same draws
    assert np.all((0.0 <= values) & (values <= 12 * (means.max(1) - means.min(1)) + 1e-12))  # each task's own regret


def test_the_test_split_is_disjoint_from_the_selection_split_and_fixed():
    from attnbook.rl import experiment

    settings = _tiny_settings()
    data = experiment.bandit_data(settings, 0)
    split = experiment.causal_tasks(settings)
    assert split.shape == (settings.heads.tasks, settings.arms) and settings.heads.tasks >= 100
    both = envs.bandit_tasks(settings.test_tasks + settings.heads.tasks, settings.arms, seed=experiment.EVAL_SEED)
    assert np.array_equal(both[:settings.test_tasks], data.test_means)  # the selection split is the first rows of one draw
    assert np.array_equal(both[settings.test_tasks:], split)  # the test split the rows after them
    assert not {tuple(r) for r in split} & {tuple(r) for r in data.test_means}
    assert np.array_equal(split, experiment.causal_tasks(dataclasses.replace(settings, source="thompson")))
    with pytest.raises(InvalidInputError, match="tasks"):
        experiment.HeadAblationSettings(tasks=50)  # fewer than 100 independent episodes


def test_probed_metric_rolls_out_each_ablation_once():
    from attnbook.intervene import ablate, head_means
    from attnbook.rl import experiment

    model = small_model(n_ctx=9)
    means = envs.bandit_tasks(4, 3, seed=0)
    raw = experiment.regret_metric(means, 8, seed=2)
    probe = torch.randn(2, 9, ad.token_dim(1, 3), generator=torch.Generator().manual_seed(0))
    metric = experiment.ProbedMetric(raw, probe)
    reference = head_means(model, probe)
    clean = metric(model)
    with ablate(model, [(0, 1), (1, 1)], how="mean", reference=reference):
        hurt = metric(model)
        assert np.array_equal(hurt, raw(model))
    with ablate(model, [(1, 1), (0, 1)], how="mean", reference=reference):
        again = metric(model)  # the same set: no second rollout
    with ablate(model, [(0, 1), (1, 0)], how="mean", reference=reference):
        metric(model)
    assert np.array_equal(metric(model), clean) and np.array_equal(again, hurt)
    assert metric.calls == 5 and metric.rollouts == 3


def test_recency_head_study_matches_hand_run_ablations(tmp_path, monkeypatch):
    from attnbook import registry
    from attnbook.intervene import ablate, head_means
    from attnbook.rl import experiment

    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    settings = _tiny_settings(horizon=12)
    data = experiment.bandit_data(settings, seed=0)
    model = experiment.train_bandit_models(settings, data, seed=0).ad  # 4 layers × 4 heads: C(16, 2) = 120 pairs
    rows = [{"layer": l, "head": h, "recency_no_sink": float(4 * l + h)} for l in range(4) for h in range(4)]
    study = experiment.recency_head_study(model, data, settings, rows, seed=0, progress=False)
    assert study.heads == [(3, 3), (3, 2)] and study.tasks == settings.heads.tasks and study.selection_tasks == settings.test_tasks
    means = head_means(model, experiment.reference_windows(data, settings, seed=0))
    # the positive control: the two largest single-head rises of the mean regret on the selection split
    select = experiment.regret_metric(data.test_means, 12, seed=0)
    base = select(model).mean()
    single = {}
    for l in range(4):
        for h in range(4):
            with ablate(model, [(l, h)], how="mean", reference=means):
                single[(l, h)] = select(model).mean() - base
    ranked = sorted(single, key=lambda k: -single[k])
    assert study.control_heads == ranked[:2]
    assert study.per_layer["transformer.blocks.0.attn"] == pytest.approx(np.mean([single[(0, h)] for h in range(4)]))
    # the family: one test (the registry's), sized for m = 1, exact over the 120 pairs of the unmatched null
    assert tuple(study.family.tests) == registry.causal_family("ad-compression") == (experiment.HEADS_KEY,)
    t = study.test
    assert t.family == 1 and t.null == "unmatched" and "layer-matched space has 6" in t.null_note
    assert t.result.exact and t.result.space == 120 and t.result.draws == 119 and t.smallest_p == pytest.approx(1 / 120)
    # the units: one damage per test-split episode, paired with the intact model's on the same task and draws
    test = experiment.regret_metric(experiment.causal_tasks(settings), 12, seed=0)
    clean = test(model)
    with ablate(model, [(3, 2), (3, 3)], how="mean", reference=means):
        assert np.allclose(t.unit_effects, test(model) - clean)
    assert t.units == settings.heads.tasks and t.effect == pytest.approx(np.mean(t.unit_effects))
    assert study.family.control.result.space == 120
    assert list(study.family.control.heads) == [(f"transformer.blocks.{l}.attn", h) for l, h in sorted(ranked[:2])]
    # cost: the null of the two tests is the same 120 pairs, rolled out once (+ the clean run, + 17 on the selection split)
    cost = study.cost(0)
    assert cost["forwards"] == 17 + 121 and cost["draws"] == 2 * 119 and cost["metric_calls"] == 17 + 2 * 121 and cost["seconds"] > 0
    found = analysis.head_findings(study)
    assert [f.spec.key for f in found] == [experiment.HEADS_KEY] and found[0].spec.rule == registry.CAUSAL_RULE
    records = analysis.head_records(study, 12, seed=0)
    assert [r["role"] for r in records] == ["finding", "positive control"] and all(r["seed"] == 0 for r in records)
    assert f"{settings.test_tasks} held-out tasks" in records[0]["selection"] and f"{settings.heads.tasks} other" in records[0]["test_split"]
    assert records[0]["p_adjusted"] == pytest.approx(t.p) and set(records[0]["per_layer_single_head_effect"]) == set(study.per_layer)


# --- seeds: the chapter's trainings as runs, evaluation fixed across seeds -----------------------------

def _tiny_settings(**changes):
    from attnbook import profiles
    from attnbook.profiles import Training
    from attnbook.rl import experiment

    fields = dict(arms=3, horizon=20, train_tasks=8, test_tasks=6, train=Training(steps=2, batch_size=4, lr=1e-3, warmup=0, eval_every=1),
                  ed_steps=2, k_divisors=(2, 4), timing_repeats=1, heads=experiment.HeadAblationSettings(top=2, tasks=100, reference=8))
    return dataclasses.replace(profiles.get("ad-compression", "quick"), **{**fields, **changes})


def test_bandit_data_keeps_the_held_out_tasks_fixed_across_training_seeds():
    from attnbook.rl import experiment

    settings = _tiny_settings()
    a, b = experiment.bandit_data(settings, 0), experiment.bandit_data(settings, 1)
    assert np.array_equal(a.test_means, b.test_means)  # evaluation: EVAL_SEED, whatever the training seed
    assert np.array_equal(a.test_means, envs.bandit_tasks(6, 3, seed=experiment.EVAL_SEED))
    assert not np.array_equal(a.train_means, b.train_means) and not np.array_equal(a.histories.actions, b.histories.actions)
    with pytest.raises(InvalidInputError, match="seed"):
        experiment.bandit_data(settings, experiment.EVAL_SEED)


def test_chapter_runs_fill_the_entries_the_chapter_loads(tmp_path, monkeypatch):
    from attnbook import runs
    from attnbook.rl import experiment

    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    monkeypatch.setenv("ATTNBOOK_RAY", "0")
    settings = _tiny_settings()
    chapter = experiment.chapter_runs(settings, (0, 1))
    assert [r.label for r in chapter] == ["bandits AD seed 0", "bandits AD seed 1", "bandits ED seed 0", "bandits ED seed 1",
                                          "bandits AD, shuffled histories seed 0", "bandits AD, shuffled histories seed 1"]
    assert all(r.chapter == "ad-compression" and not r.cached for r in chapter)
    timings = runs.execute(chapter, progress=False)
    assert all(not t.cached and t.where == "in process" for t in timings) and all(r.cached for r in chapter)
    models = experiment.train_bandit_models(settings, None, seed=1)  # the chapter's loads: every entry is a run's
    assert models.loaded and models.shuffled is not None and models.shuffled_history is not None
    assert not torch.equal(models.ad.embed.weight, models.shuffled.embed.weight)  # same init, other data
    assert [c["finding"].split("/")[1] for c in experiment.trained_controls(settings, (0, 1))] == [
        "learns-in-context", "beats-random", "recency-vs-ed", "recency-vs-shuffled", "recency-survives"]
    assert not torch.equal(models.ad.embed.weight, experiment.train_bandit_models(settings, None, seed=0).ad.embed.weight)
    assert all(t.cached for t in runs.execute(chapter, progress=False))
    with pytest.raises(InvalidInputError, match="seed"):
        experiment.chapter_runs(settings, (experiment.EVAL_SEED,))


def test_darkroom_models_are_runs_in_the_full_profile(tmp_path, monkeypatch):
    from attnbook import runs
    from attnbook.profiles import Training
    from attnbook.rl import experiment

    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    monkeypatch.setenv("ATTNBOOK_RAY", "0")
    d = experiment.DarkRoomSettings(test_goals=4, episodes=2, streams=1, n_ctx=21, eval_episodes=2,
                                    train=Training(steps=2, batch_size=4, lr=1e-3, warmup=1, eval_every=2))
    chapter = experiment.chapter_runs(_tiny_settings(darkroom=d), (3,))
    assert [r.label for r in chapter][:2] == ["Dark Room AD seed 3", "Dark Room ED seed 3"]  # the long runs first
    runs.execute(chapter, progress=False)
    assert experiment.train_darkroom_model(d, 3, "ad", 0.3)[2] and experiment.train_darkroom_model(d, 3, "ed", 0.3)[2]  # loaded


def test_a_bandit_study_per_seed_gives_every_finding_and_the_tables_across_seeds(tmp_path, monkeypatch):
    from attnbook.claims import across_seeds
    from attnbook.registry import chapter_specs
    from attnbook.rl import experiment

    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    settings = _tiny_settings()
    studies, timing = experiment.bandit_studies(settings, (0, 1), progress=False)
    assert set(studies) == {0, 1} and studies[1].timing is timing  # timed once, on the first seed
    for name in ("UCB1 (source)", "Thompson", "random"):  # fixed evaluation: the baselines are the same on every seed
        assert np.array_equal(studies[0].held.regret[name], studies[1].held.regret[name])
    L = settings.horizon - 1
    found = across_seeds({s: analysis.seed_findings(st, settings.ks, L) for s, st in studies.items()})
    assert sorted(f.spec.key for f in found) == sorted(s.key for s in chapter_specs("ad-compression", "quick"))
    assert all(f.seeds == (0, 1) and len(f.per_seed) == 2 for f in found)
    study = studies[0]
    assert set(study.control_rows) == {"shuffled", "ed", "untrained"} and study.twin_rows is study.control_rows["untrained"]
    assert study.recency_k == analysis.recency_k(L) and set(study.recency) == {"AD", "shuffled", "ed", "untrained"}
    assert study.recency["AD"] == pytest.approx(analysis.model_recency(study.query, study.recency_k))
    assert set(study.redrawn) == set(settings.ks) and {"held-out play", "compression sweep", "head ablation"} <= set(study.seconds)
    table = analysis.regret_by_seed({s: st.held.table for s, st in studies.items()})
    assert list(table.columns) == ["R(T), mean over seeds", "R(T), seed 0", "R(T), seed 1"]
    assert table.loc["AD", "R(T), mean over seeds"] == pytest.approx((table.loc["AD", "R(T), seed 0"] + table.loc["AD", "R(T), seed 1"]) / 2)
    sweeps = analysis.sweep_by_seed({s: st.sweep for s, st in studies.items()})
    assert len(sweeps) == len(studies[0].sweep) and {"% of full, seed 0", "% of full, seed 1", "speed-up, batched"} <= set(sweeps.columns)
    tops = {s: analysis.best_compression(st.sweep, L) for s, st in studies.items()}
    checks = analysis.chapter_checks(torch.softmax(torch.randn(1, 1, 1, 3, 3), -1).tril(), tops)
    assert [c.text.split(" (")[0] for c in checks[2:]] == ["best compression of seed 0", "best compression of seed 1"]
    from attnbook.rl import figures
    assert "mean of 2 training seeds" in figures.compression_bars({s: st.sweep for s, st in studies.items()}, settings.ks).axes[0].get_title()


# --- issue 31: recency as a defined quantity, its controls, recency heads vs sharp heads -------------


def test_recency_k_is_the_newest_quarter():
    assert analysis.recency_k(59) == 14 and analysis.recency_k(80) == 20 and analysis.recency_k(3) == 1
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InvalidInputError, match="L"):
            analysis.recency_k(bad)


def test_recency_log_ratio_equals_a_hand_computation():
    # one layer, two tasks, one head; L = 4 context transitions + the query (its own weight is left out)
    w = torch.tensor([[[[0.1, 0.1, 0.2, 0.4, 0.2]], [[0.2, 0.2, 0.2, 0.2, 0.2]]]], dtype=torch.float64)
    ratio = analysis.recency_log_ratio(w, k=1)
    # task 0: p = (0.1, 0.1, 0.2, 0.4) / 0.8, mass on the newest 1 = 0.5, uniform share 1/4 -> log 2
    # task 1: uniform -> mass 1/4 -> log 1 = 0
    assert ratio.shape == (1, 2, 1) and ratio[0, 0, 0] == pytest.approx(np.log(2.0)) and ratio[0, 1, 0] == pytest.approx(0.0)
    # k = 2: task 0 mass (0.2 + 0.4) / 0.8 = 0.75 over 2/4 -> log 1.5
    assert analysis.recency_log_ratio(w, k=2)[0, 0, 0] == pytest.approx(np.log(1.5))
    # default k = L // 4 = 1; all mass on the newest transitions: log(L / k), the largest value
    assert np.allclose(analysis.recency_log_ratio(w), ratio)
    top = torch.tensor([[[[0.0, 0.0, 0.0, 0.7, 0.3]]]], dtype=torch.float64)
    assert analysis.recency_log_ratio(top, k=1)[0, 0, 0] == pytest.approx(np.log(4.0))
    assert analysis.recency_log_ratio(torch.tensor([[[[1.0, 0.0, 0.0, 0.0, 0.0]]]]), k=1)[0, 0, 0] == -np.inf
    # the model's value: the mean mass over tasks (0.5 and 0.25), then the log
    assert analysis.model_recency(w, k=1) == pytest.approx(np.log(0.375 / 0.25))
    for bad in (0, 5, 1.5):
        with pytest.raises(InvalidInputError, match="k"):
            analysis.recency_log_ratio(w, k=bad)
    with pytest.raises(InvalidInputError, match="attention"):
        analysis.recency_log_ratio(torch.ones(2, 3, 4))


def test_sharpness_is_one_minus_normalised_entropy():
    L = 4
    w = torch.tensor([[[[0.25, 0.25, 0.25, 0.25, 0.0]], [[0.0, 0.0, 1.0, 0.0, 0.0]], [[0.5, 0.5, 0.0, 0.0, 0.0]]]], dtype=torch.float64)
    s = analysis.sharpness(w)[0, :, 0]
    assert s[0] == pytest.approx(0.0) and s[1] == pytest.approx(1.0) and s[2] == pytest.approx(1 - np.log(2) / np.log(L))
    stats = analysis.query_stats(w)
    assert np.allclose(analysis.sharpness(w), 1 - stats["entropy_norm"])


def test_head_profile_and_the_chosen_heads_by_hand():
    # two layers, two tasks, two heads, L = 4: L0H0 recent and sharp, L0H1 uniform, L1H0 old and sharp, L1H1 recent and broad
    recent_sharp, uniform = [0.0, 0.0, 0.0, 1.0, 0.0], [0.25, 0.25, 0.25, 0.25, 0.0]
    old_sharp, recent_broad = [1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.2, 0.3, 0.5, 0.0]
    w = torch.tensor([[[recent_sharp, uniform]] * 2, [[old_sharp, recent_broad]] * 2], dtype=torch.float64)  # (2, 2, 2, 5)
    rows = analysis.head_profile(w, k=1)
    by = {(r["layer"], r["head"]): r for r in rows}
    assert by[(0, 0)]["recency_log_ratio"] == pytest.approx(np.log(4.0)) and by[(0, 0)]["sharpness"] == pytest.approx(1.0)
    assert by[(0, 1)]["recency_log_ratio"] == pytest.approx(0.0) and by[(0, 1)]["sharpness"] == pytest.approx(0.0)
    assert by[(1, 0)]["recency_log_ratio"] == -np.inf and by[(1, 0)]["sharp_head"] and not by[(1, 0)]["recency_head"]
    assert by[(1, 1)]["recency_log_ratio"] == pytest.approx(np.log(2.0)) and not by[(1, 1)]["recency_head"]  # log 2 is not above log 2
    assert by[(0, 0)]["recency_head"] and by[(0, 0)]["sharp_head"] and all(r["k"] == 1 and r["L"] == 4 for r in rows)
    chosen = analysis.chosen_heads_profile(rows, [(0, 0), (1, 1)])
    assert [c["head"] for c in chosen] == ["L0H0", "L1H1"]
    assert [c["recency rank"] for c in chosen] == [1, 2] and [c["sharpness rank"] for c in chosen] == [1, 3]
    with pytest.raises(InvalidInputError, match="heads"):
        analysis.chosen_heads_profile(rows, [(2, 0)])
    summary = analysis.recency_vs_sharpness({0: rows, 1: rows})
    assert (summary["heads"], summary["recency_heads"], summary["sharp_heads"], summary["both"]) == (8, 2, 4, 2)
    assert summary["pooled"]["n"] == 6  # the -inf heads have no rank on the recency scale


def test_spearman_matches_scipy_and_the_fisher_interval_by_hand():
    from scipy import stats as st

    x = np.array([0.1, 0.5, 0.3, 0.9, 0.7, 0.2, 0.6, 0.8])
    y = np.array([1.0, 2.5, 2.0, 3.5, 2.2, 0.5, 3.0, 4.0])
    out = analysis.spearman(x, y)
    ref = st.spearmanr(x, y)
    assert out["rho"] == pytest.approx(ref.statistic) and out["p"] == pytest.approx(ref.pvalue) and out["n"] == 8
    half = 1.959963984540054 * np.sqrt(1.06 / (8 - 3))
    assert out["low"] == pytest.approx(np.tanh(np.arctanh(ref.statistic) - half))
    assert out["high"] == pytest.approx(np.tanh(np.arctanh(ref.statistic) + half))
    ranks = lambda v: np.argsort(np.argsort(v)).astype(float)  # noqa: E731  (no ties: Pearson of the ranks)
    assert out["rho"] == pytest.approx(np.corrcoef(ranks(x), ranks(y))[0, 1])
    perfect = analysis.spearman([1, 2, 3, 4], [2, 4, 6, 8])
    assert perfect["rho"] == pytest.approx(1.0) and np.isnan(perfect["low"])
    for bad in (([1, 2], [1, 2]), ([1, 2, 3], [1, 2]), ([1, 2, np.nan], [1, 2, 3])):
        with pytest.raises(InvalidInputError, match="x, y"):
            analysis.spearman(*bad)


def test_shuffled_histories_are_a_seeded_permutation_of_each_history():
    means = envs.bandit_tasks(20, 4, seed=0)
    h = sources.bandit_histories(means, 30, "ucb", seed=0)
    s = sources.shuffle_histories(h, seed=3)
    assert s.actions.shape == h.actions.shape
    for i in range(h.n):  # each history keeps its own transitions (action and reward together), in another order
        assert sorted(zip(h.actions[i], h.rewards[i])) == sorted(zip(s.actions[i], s.rewards[i]))
    assert not np.array_equal(s.actions, h.actions)
    again, other = sources.shuffle_histories(h, seed=3), sources.shuffle_histories(h, seed=4)
    assert np.array_equal(again.actions, s.actions) and not np.array_equal(other.actions, s.actions)
    d = sources.noisy_expert_histories(np.array([[1, 1], [7, 7]]), 2, streams=1, seed=0)
    ds = sources.shuffle_histories(d, seed=0)
    for i in range(d.n):  # every field of a transition moves with it
        pairs = lambda x: sorted(zip(x.obs[i], x.actions[i], x.rewards[i], x.next_obs[i], x.done[i]))  # noqa: E731
        assert pairs(d) == pairs(ds)
    with pytest.raises(InvalidInputError, match="histories"):
        sources.shuffle_histories(h.actions, seed=0)
    with pytest.raises(InvalidInputError, match="seed"):
        sources.shuffle_histories(h, seed=-1)


def test_ed_trains_for_ads_steps():
    from attnbook import profiles
    from attnbook.rl import experiment

    for profile in ("quick", "full"):
        s = profiles.get("ad-compression", profile)
        assert s.ed_training().steps == s.train.steps
    with pytest.raises(InvalidInputError, match="ed_steps"):
        _tiny_settings(ed_steps=3)
    assert experiment.BANDIT_MODELS == ("ad", "ed", "shuffled")


def test_recency_findings_apply_one_rule_to_every_control():
    found = analysis.recency_findings(1.0, {"shuffled": 0.1, "ed": 0.9, "untrained": 0.0}, 14, 59)
    assert [f.spec.key.split("/")[1] for f in found] == ["recency-vs-shuffled", "recency-vs-ed", "recency-vs-untrained"]
    assert [f.verdict for f in found] == ["supported", "not supported", "supported"]  # ED is recency-biased too
    assert found[1].reason == "the control meets the rule too" and "k = 14 of L = 59" in found[0].detail
    assert all(f.measured == {"recency log-ratio": 1.0} for f in found) and found[0].control == {"recency log-ratio": 0.1}
    assert [f.verdict for f in analysis.recency_findings(0.5, {"shuffled": 0.0, "ed": 0.0, "untrained": 0.0}, 14, 59)] == ["not supported"] * 3
    assert analysis.recency_findings(np.log(2), {"shuffled": 0.0, "ed": 0.0, "untrained": 0.0}, 14, 59)[0].verdict == "not supported"
    with pytest.raises(InvalidInputError, match="controls"):
        analysis.recency_findings(1.0, {"shuffled": 0.1}, 14, 59)


def test_random_k_drawn_again_changes_only_the_kept_transitions():
    config = ad.ADConfig(n_states=1, n_actions=3, n_ctx=16)
    torch.manual_seed(0)
    model = ad.ADTransformer(config).eval()
    means = envs.bandit_tasks(6, 3, seed=1)
    run = lambda **kw: ad.in_context(model, envs.Bandits(means, seed=2), 15, strategy="random", K=4, positions="original", seed=5, **kw)  # noqa: E731
    assert np.array_equal(run().actions, run(selection_seed=5).actions)  # the default selection seed is the seed
    assert not np.array_equal(run().actions, run(selection_seed=6).actions)
    full = lambda **kw: ad.in_context(model, envs.Bandits(means, seed=2), 15, seed=5, **kw)  # noqa: E731
    assert np.array_equal(full().actions, full(selection_seed=6).actions)  # the full context draws nothing: only actions' draws
    with pytest.raises(InvalidInputError, match="selection_seed"):
        run(selection_seed=-1)
