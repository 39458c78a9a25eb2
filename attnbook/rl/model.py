"""The Algorithm Distillation transformer: per-transition tokens, trained on every position.

**Tokens.** A learning history becomes the stream ``[BOS, tr_0, tr_1, …, tr_{T−1}]`` where
transition token ``tr_i = [onehot(s_i), onehot(a_i), r_i, onehot(s'_i), done_i, 0]`` — the seed's
``[s, a, r, s']`` per context transition — and ``BOS = [0, …, 0, 1]``. Stream position ``j``
predicts action ``a_j``: its token holds the previous transition, whose next state ``s'_{j−1}``
(or, after ``done``, the reset state) is where ``a_j`` is taken, so the last token of a window is
the seed's *query* token folded into the last transition. Training windows are ``n_ctx``
consecutive stream tokens with a cross-entropy loss on every position (GPT-style).

**Model.** Linear token embedding + learned absolute positions, our pre-norm causal
:class:`attnbook.modules.Transformer` (4 layers, 4 heads, d 64, feed-forward 256 by default, a
final LayerNorm), linear action head. ``forward(tokens, positions=None)`` accepts explicit
position ids, which context compression uses (:mod:`attnbook.rl.compress`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..errors import InvalidInputError, bad_argument
from ..modules import BlockConfig, KVCache, Transformer
from ..train import History, TrainConfig
from .sources import Histories

__all__ = ["ADConfig", "ADTransformer", "token_dim", "encode", "Windows", "ad_key", "train_ad", "Rollout", "in_context", "compressed_step", "query_attention", "sample_actions",
           "bandit_rollout"]


@dataclass(frozen=True)
class ADConfig:
    """Shape of the AD transformer and its token space."""

    n_states: int = 1
    n_actions: int = 5
    n_ctx: int = 61
    d_model: int = 64
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 256
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("n_states", "n_actions", "n_ctx", "d_model", "n_layers", "n_heads", "d_ff"):
            checks.positive_int(name, getattr(self, name))
        if self.n_actions < 2:
            raise bad_argument(InvalidInputError, "n_actions", "at least 2 actions (arms)", self.n_actions)
        if self.n_ctx < 2:
            raise bad_argument(InvalidInputError, "n_ctx", "a context of at least 2 tokens", self.n_ctx)
        if self.d_model % self.n_heads:
            raise bad_argument(InvalidInputError, "n_heads", f"a divisor of d_model={self.d_model}", self.n_heads)
        if not 0.0 <= self.dropout < 1.0:
            raise bad_argument(InvalidInputError, "dropout", "a probability in [0, 1)", self.dropout)

    def to_dict(self) -> dict:
        return asdict(self)


def token_dim(n_states: int, n_actions: int) -> int:
    """``2·S + A + 3``: s and s' one-hot, a one-hot, reward, done flag, BOS flag."""
    return 2 * n_states + n_actions + 3


def encode(histories: Histories, n_states: int, n_actions: int) -> torch.Tensor:
    """The token streams ``(n, T + 1, token_dim)`` float32 of ``histories`` (BOS first)."""
    if not isinstance(histories, Histories):
        raise bad_argument(InvalidInputError, "histories", "Histories", type(histories).__name__, raw=True)
    n, T = histories.n, histories.steps
    S, A = n_states, n_actions
    if histories.obs.max(initial=0) >= S or histories.next_obs.max(initial=0) >= S:
        raise bad_argument(InvalidInputError, "n_states", f"more than the largest observation {int(max(histories.obs.max(), histories.next_obs.max()))}", S)
    if histories.actions.max(initial=0) >= A:
        raise bad_argument(InvalidInputError, "n_actions", f"more than the largest action {int(histories.actions.max())}", A)
    out = torch.zeros(n, T + 1, token_dim(S, A))
    out[:, 0, -1] = 1.0
    rows = torch.arange(n)[:, None]
    cols = torch.arange(1, T + 1)[None, :]
    out[rows, cols, torch.as_tensor(histories.obs)] = 1.0
    out[rows, cols, S + torch.as_tensor(histories.actions)] = 1.0
    out[:, 1:, S + A] = torch.as_tensor(histories.rewards, dtype=torch.float32)
    out[rows, cols, S + A + 1 + torch.as_tensor(histories.next_obs)] = 1.0
    out[:, 1:, 2 * S + A + 1] = torch.as_tensor(histories.done, dtype=torch.float32)
    return out


class Windows:
    """Training windows over encoded histories: ``n_ctx`` consecutive stream tokens and the
    action each position predicts (stream position ``j`` → ``a_j``)."""

    def __init__(self, histories: Histories, config: ADConfig, context_dropout: float = 0.0) -> None:
        if not 0.0 <= context_dropout <= 1.0:
            raise bad_argument(InvalidInputError, "context_dropout", "a probability in [0, 1]", context_dropout)
        self.context_dropout = float(context_dropout)
        self.tokens = encode(histories, config.n_states, config.n_actions)
        self.actions = torch.as_tensor(histories.actions, dtype=torch.long)
        self.n_ctx = config.n_ctx
        T = histories.steps
        if T < config.n_ctx:
            raise bad_argument(InvalidInputError, "histories", f"at least n_ctx={config.n_ctx} steps per history", T)
        self.max_offset = T - config.n_ctx  # window [o, o + n_ctx) of the stream needs targets a_o … a_{o+n_ctx−1}

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """``(tokens (B, n_ctx, dim), targets (B, n_ctx))``, uniform over histories and offsets;
        with ``context_dropout`` also a key mask ``(B, n_ctx, n_ctx)``: in that share of the
        windows each token is hidden from all later positions with a probability drawn from
        ``U(0, 0.9)`` (the AD paper's sequence masking; compressed contexts with original
        positions are then in distribution)."""
        h = torch.randint(0, self.tokens.shape[0], (batch,), generator=generator)
        o = torch.randint(0, self.max_offset + 1, (batch,), generator=generator)
        idx = o[:, None] + torch.arange(self.n_ctx)[None]
        out = (self.tokens[h[:, None], idx], self.actions[h[:, None], idx])
        if self.context_dropout == 0.0:
            return out
        masked = torch.rand(batch, generator=generator) < self.context_dropout
        rate = torch.rand(batch, 1, generator=generator) * 0.9 * masked[:, None]
        visible = torch.rand(batch, self.n_ctx, generator=generator) >= rate  # (B, keys)
        mask = visible[:, None, :].expand(batch, self.n_ctx, self.n_ctx) | torch.eye(self.n_ctx, dtype=torch.bool)[None]
        return out + (mask,)


class ADTransformer(nn.Module):
    """Causal transformer over transition tokens → action logits at every position."""

    def __init__(self, config: ADConfig) -> None:
        super().__init__()
        if not isinstance(config, ADConfig):
            raise bad_argument(InvalidInputError, "config", "an ADConfig", type(config).__name__, raw=True)
        self.config = config
        self.embed = nn.Linear(token_dim(config.n_states, config.n_actions), config.d_model)
        self.pos = nn.Embedding(config.n_ctx, config.d_model)
        block = BlockConfig(d_model=config.d_model, n_heads=config.n_heads, d_ff=config.d_ff, dropout=config.dropout, causal=True)
        self.transformer = Transformer(block, config.n_layers)  # ends with a LayerNorm
        self.head = nn.Linear(config.d_model, config.n_actions)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        """``tokens (B, L, dim)`` with ``L ≤ n_ctx`` → logits ``(B, L, n_actions)``;
        ``positions (B, L)`` or ``(L,)`` position ids in ``[0, n_ctx)`` (default ``0 … L−1``, after
        the cached positions with ``cache``); ``attn_mask`` (bool, True = may attend) ``(B, L, L)``,
        combined with causality. ``cache``: a :class:`~attnbook.modules.KVCache` holding the keys and
        values of the positions before ``tokens`` (generation one transition at a time; no ``attn_mask``)."""
        if tokens.dim() != 3 or tokens.shape[-1] != self.embed.in_features:
            raise bad_argument(InvalidInputError, "tokens", f"(batch, length, {self.embed.in_features})", tuple(tokens.shape), raw=True)
        L = tokens.shape[1]
        past = 0 if cache is None else cache.length
        if not 1 <= past + L <= self.config.n_ctx:
            raise bad_argument(InvalidInputError, "tokens", f"1 to n_ctx={self.config.n_ctx} tokens (cached ones included)", past + L)
        if cache is not None and attn_mask is not None:
            raise bad_argument(InvalidInputError, "attn_mask", "None with a cache", type(attn_mask).__name__, raw=True)
        if positions is None:
            positions = torch.arange(past, past + L, device=tokens.device)
        elif positions.shape[-1] != L or positions.min() < 0 or positions.max() >= self.config.n_ctx:
            raise bad_argument(InvalidInputError, "positions", f"{L} position ids in [0, {self.config.n_ctx})", positions, raw=True)
        x = self.embed(tokens) + self.pos(positions)
        if cache is None:
            return self.head(self.transformer(x, attn_mask))
        for block in self.transformer.blocks:
            x = block(x, None, cache)
        return self.head(self.transformer.ln_f(x))

    def loss(self, tokens: torch.Tensor, targets: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy of every position's action."""
        logits = self(tokens, attn_mask=attn_mask)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def ad_key(config: ADConfig, train: TrainConfig, *, data_key: dict, val_batch: int = 256, context_dropout: float = 0.0) -> dict:
    """The run-cache key of :func:`train_ad` with these arguments (``RunCache.of(name, ad_key(…))`` is
    its entry, known before training: what a :class:`~attnbook.runs.Run` declares it fills)."""
    if not isinstance(data_key, dict):
        raise bad_argument(InvalidInputError, "data_key", "a dict describing the histories", data_key)
    return {"version": 1, "model": config.to_dict(), "train": asdict(train), "data": data_key, "val_batch": val_batch,
            "context_dropout": context_dropout}


def train_ad(
    histories: Histories,
    config: ADConfig,
    train: TrainConfig,
    *,
    data_key: dict,
    val_histories: Histories | None = None,
    val_batch: int = 256,
    context_dropout: float = 0.0,
    name: str = "ad",
    progress: bool = True,
    device: str = "cpu",
    precision: str = "fp32",
) -> tuple["ADTransformer", History, bool]:
    """Train (or load from the cache) an AD transformer on windows of ``histories``.

    ``data_key`` must describe the histories (source, tasks, seeds) — with the model and
    training settings it forms the cache key. Validation: the loss on ``val_batch`` fixed windows
    of ``val_histories`` (default: the training histories), unmasked. ``context_dropout``: see
    :meth:`Windows.sample`. Training runs on ``device`` with ``precision``
    (:func:`attnbook.train.select_precision`); the model comes back on the CPU."""
    from ..train import cached_fit, fit, model_device

    key = ad_key(config, train, data_key=data_key, val_batch=val_batch, context_dropout=context_dropout)
    windows = Windows(histories, config, context_dropout)
    val_windows = Windows(histories if val_histories is None else val_histories, config)
    val = val_windows.sample(val_batch, torch.Generator().manual_seed(train.seed + 1))

    def build() -> ADTransformer:
        torch.manual_seed(train.seed)
        return ADTransformer(config)

    def train_fn(model: ADTransformer) -> History:
        def evaluate(m: ADTransformer) -> float:
            return float(m.loss(*(t.to(model_device(m)) for t in val)))

        return fit(model, lambda m, b: m.loss(*b), lambda g: windows.sample(train.batch_size, g), evaluate,
                   train, precision=precision, progress=progress, desc=name)

    return cached_fit(name, key, build, train_fn, device=device)


def sample_actions(logits: torch.Tensor, generator: torch.Generator, greedy: bool = False) -> np.ndarray:
    """Actions from the last position's logits ``(B, L, A)``: sampled (or argmax with ``greedy``)."""
    last = logits[:, -1].float()
    if greedy:
        return last.argmax(-1).numpy()
    return torch.multinomial(torch.softmax(last, -1), 1, generator=generator)[:, 0].numpy()


# -- in-context evaluation --------------------------------------------------------------------------

@dataclass
class Rollout:
    """One in-context run on ``N`` tasks: ``rewards``, ``actions`` ``(N, steps)``, ``regret``
    ``(N, steps)`` for bandits (None in Dark Room), ``seconds`` of model forwards per step
    (compression's selection and any extra full pass included), ``kept`` the context size used
    at the last step; ``window`` the last uncompressed window ``(N, L + 1, dim)`` (query last)
    and ``window_rewards`` its context transitions' rewards ``(N, L)`` — for the attention analysis."""

    rewards: np.ndarray
    actions: np.ndarray
    regret: np.ndarray | None
    seconds: list[float]
    kept: int
    window: torch.Tensor | None = None
    window_rewards: np.ndarray | None = None

    @property
    def ms_per_step(self) -> float:
        """Median forward time per environment step, in ms (steps with a full window only)."""
        return 1000.0 * float(np.median(self.seconds)) if self.seconds else float("nan")


def _transition_tokens(s: np.ndarray, a: np.ndarray, r: np.ndarray, s2: np.ndarray, done: np.ndarray, S: int, A: int) -> torch.Tensor:
    n = len(a)
    out = torch.zeros(n, token_dim(S, A))
    rows = torch.arange(n)
    out[rows, torch.as_tensor(s, dtype=torch.long)] = 1.0
    out[rows, S + torch.as_tensor(a, dtype=torch.long)] = 1.0
    out[:, S + A] = torch.as_tensor(r, dtype=torch.float32)
    out[rows, S + A + 1 + torch.as_tensor(s2, dtype=torch.long)] = 1.0
    out[:, 2 * S + A + 1] = torch.as_tensor(np.array(np.broadcast_to(done, (n,)), dtype=np.float32))
    return out


def query_attention(model: "ADTransformer", tokens: torch.Tensor, positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, attention)``: one forward with capture; ``attention`` ``(layers, B, heads, L)``
    is the last (query) row of every map."""
    from ..capture import capture

    with capture(model) as cap, torch.no_grad():
        logits = model(tokens, positions)
    return logits, cap.weights()[..., -1, :]


def compressed_step(
    model: "ADTransformer",
    window: torch.Tensor,
    strategy: str,
    K: int,
    *,
    rewards: np.ndarray,
    accumulated: np.ndarray | None = None,
    positions: str = "reindex",
    n_sink: int = 1,
    rng: np.random.Generator | None = None,
) -> tuple[torch.Tensor, np.ndarray, torch.Tensor | None]:
    """One decision on ``window`` ``(B, L + 1, dim)`` (query last), without gradients: keep ``K``
    context tokens by ``strategy`` when ``L > K`` (``topk`` pays a full pass for its scores,
    ``h2o`` ranks by ``accumulated`` ``(B, L)``), then forward. Returns ``(logits, kept
    positions (B, K'), query attention of that forward)`` — the attention only for ``h2o``,
    which accumulates it; None otherwise."""
    from . import compress

    b, n, _ = window.shape
    L = n - 1
    with torch.no_grad():
        if L <= K:
            tokens, pos, kept = window, None, np.broadcast_to(np.arange(L), (b, L))
        else:
            scores = None
            if strategy == "topk":
                _, att = query_attention(model, window)
                scores = att.mean((0, 2))[:, :L]
            elif strategy == "h2o":
                scores = accumulated
            kept = compress.select(strategy, b, L, K, scores=scores, rewards=rewards, n_sink=n_sink, rng=rng)
            tokens, pos = compress.gather_window(window, kept), compress.positions_for(kept, L, positions)
        if strategy == "h2o":
            logits, att = query_attention(model, tokens, pos)
            return logits, kept, att
        return model(tokens, pos), kept, None


def in_context(
    model: "ADTransformer",
    env: Any,
    steps: int,
    *,
    strategy: str = "full",
    K: int | None = None,
    positions: str = "reindex",
    n_sink: int = 1,
    greedy: bool = False,
    seed: int = 0,
    selection_seed: int | None = None,
) -> Rollout:
    """Run ``model`` in context on every task of ``env`` (a :class:`~attnbook.rl.envs.Bandits` or
    :class:`~attnbook.rl.envs.DarkRoom`, reset here) for ``steps`` steps, with a rolling window
    of the last ``n_ctx`` stream tokens, compressed to ``K`` context tokens + the query by
    ``strategy`` (:mod:`attnbook.rl.compress`) whenever it holds more than ``K``. ``seed`` seeds the
    sampled actions and the strategies' own draws (random-K's choice); ``selection_seed`` (default
    ``seed``) seeds the strategies' draws alone, so that random-K can be drawn again with the same
    actions' draws (the control of ``topk-beats-random``)."""
    from . import compress
    from .envs import Bandits, DarkRoom

    steps = checks.integer("steps", steps, 1)
    c = model.config
    L_max = c.n_ctx - 1
    K = L_max if K is None else K
    compress._check(strategy, L_max, K)
    if positions not in compress.POSITIONS:
        raise bad_argument(InvalidInputError, "positions", f"one of {list(compress.POSITIONS)}", positions)
    if isinstance(env, Bandits):
        if env.n_arms != c.n_actions or c.n_states != 1:
            raise bad_argument(InvalidInputError, "env", f"bandits with {c.n_actions} arms for this model", env.n_arms)
        s = np.zeros(env.n_tasks, dtype=np.int64)
    elif isinstance(env, DarkRoom):
        if env.n_states != c.n_states or c.n_actions != 5:
            raise bad_argument(InvalidInputError, "env", f"a Dark Room with {c.n_states} cells for this model", env.n_states)
        s = env.reset()
    else:
        raise bad_argument(InvalidInputError, "env", "Bandits or DarkRoom", type(env).__name__, raw=True)
    n = env.n_tasks
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed if selection_seed is None else checks.integer("selection_seed", selection_seed, 0))
    stream = torch.zeros(n, steps + 1, token_dim(c.n_states, c.n_actions))
    stream[:, 0, -1] = 1.0
    stream_rewards = np.zeros((n, steps + 1))
    accumulated = np.zeros((n, steps + 1))
    rewards = np.zeros((n, steps))
    actions = np.zeros((n, steps), dtype=np.int64)
    regret = np.zeros((n, steps)) if isinstance(env, Bandits) else None
    seconds: list[float] = []
    kept_now = 0
    for t in range(steps):
        lo = max(0, t + 1 - c.n_ctx)
        window = stream[:, lo:t + 1]
        L = window.shape[1] - 1
        start = time.perf_counter()
        logits, kept, att = compressed_step(model, window, strategy, K, rewards=stream_rewards[:, lo:lo + L],
                                            accumulated=accumulated[:, lo:lo + L], positions=positions, n_sink=n_sink, rng=rng)
        if att is not None:  # h2o: the query's attention accumulates on the tokens it saw
            q = att.mean((0, 2)).numpy()  # (n, len(kept) + 1)
            np.add.at(accumulated, (np.arange(n)[:, None], lo + kept), q[:, :-1])
        a = sample_actions(logits, generator, greedy)
        if L == L_max:
            seconds.append(time.perf_counter() - start)
        kept_now = kept.shape[1]
        if regret is not None:
            regret[:, t] = env.regret(a)
            r = env.pull(a)
            s2, done = s, np.ones(n, dtype=bool)
        else:
            s2, r, end = env.step(a)
            done = np.full(n, end)
        stream[:, t + 1] = _transition_tokens(s, a, r, s2, done, c.n_states, c.n_actions)
        stream_rewards[:, t + 1] = r
        rewards[:, t], actions[:, t] = r, a
        s = env.reset() if regret is None and done[0] else s2
    lo = max(0, steps + 1 - c.n_ctx)
    return Rollout(rewards, actions, regret, seconds, kept_now, stream[:, lo:].clone(), stream_rewards[:, lo:steps].copy())


class _Preallocated(KVCache):
    """A :class:`~attnbook.modules.KVCache` that writes each new position into buffers sized for
    ``capacity`` positions and returns views of the filled part (no copy of the past per step)."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self._buffers: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def update(self, layer: nn.Module, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key, t = id(layer), k.shape[-2]
        if key not in self._buffers:
            shape = (*k.shape[:-2], self.capacity, k.shape[-1])
            self._buffers[key] = (k.new_empty(shape), v.new_empty(shape))
        past = self.length_of(layer)
        if past + t > self.capacity:
            raise bad_argument(InvalidInputError, "cache", f"at most {self.capacity} positions", past + t)
        kb, vb = self._buffers[key]
        kb[..., past:past + t, :], vb[..., past:past + t, :] = k, v
        self._kv[key] = (kb[..., :past + t, :], vb[..., :past + t, :])
        return self._kv[key]


def _one_position(model: "ADTransformer", token: torch.Tensor, cache: _Preallocated) -> torch.Tensor:
    """``model(token, cache=cache)`` for one new position ``(B, 1, dim)``: the same blocks, with the
    attention of the single query written out (``softmax(q·Kᵀ / √d) · V`` over every cached position,
    causality being trivial for the last position) instead of the generic masked pass; each layer's
    output projection is still called as a module, so head ablations on it
    (:func:`attnbook.intervene.ablate`'s ``zero`` and ``mean``) act as in a full forward. Falls back to
    ``model(token, cache=cache)`` while any layer records its attention (capture, pattern ablations)."""
    blocks = model.transformer.blocks
    if any(b.attn.record_attention for b in blocks):
        return model(token, cache=cache)
    past = cache.length
    if past + 1 > model.config.n_ctx:
        raise bad_argument(InvalidInputError, "token", f"at most n_ctx={model.config.n_ctx} positions", past + 1)
    x = model.embed(token) + model.pos.weight[past]
    B = x.shape[0]
    for block in blocks:
        attn = block.attn
        H, d = attn.n_heads, attn.head_dim
        q, k, v = attn.qkv(block.ln1(x)).view(B, 1, 3, H, d).permute(2, 0, 3, 1, 4)  # each (B, H, 1, d)
        keys, values = cache.update(attn, k, v)  # (B, H, past + 1, d)
        weights = torch.softmax((q @ keys.transpose(-2, -1)) * (1.0 / math.sqrt(d)), dim=-1)
        y = (weights @ values).transpose(1, 2).reshape(B, 1, H * d)
        x = x + block.drop(attn.proj(y))
        x = x + block.mlp(block.ln2(x))
    return model.head(model.transformer.ln_f(x))


def bandit_rollout(model: "ADTransformer", means: Any, steps: int, *, seed: int = 0) -> Rollout:
    """:func:`in_context` on ``Bandits(means, seed=seed + 2)`` with the full context and actions sampled
    with ``seed``, one transition per forward through a :class:`~attnbook.modules.KVCache` (the keys
    and values of earlier positions are kept, not recomputed): the same decisions as ``in_context(model,
    Bandits(means, seed=seed + 2), steps, seed=seed)`` up to float rounding, for ``steps ≤ n_ctx`` (the
    window never rolls), at about ``1 / steps`` of its cost. Head ablations (:func:`attnbook.intervene.ablate`)
    apply as in a full forward. ``seconds`` is empty; ``window`` holds the whole history."""
    from .envs import Bandits

    c = model.config
    steps = checks.integer("steps", steps, 1, c.n_ctx)
    env = Bandits(means, seed=seed + 2)
    if env.n_arms != c.n_actions or c.n_states != 1:
        raise bad_argument(InvalidInputError, "means", f"bandits with {c.n_actions} arms for this model", env.n_arms)
    n = env.n_tasks
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    stream = torch.zeros(n, steps + 1, token_dim(c.n_states, c.n_actions))
    stream[:, 0, -1] = 1.0
    stream_rewards = np.zeros((n, steps + 1))
    rewards, regret = np.zeros((n, steps)), np.zeros((n, steps))
    actions = np.zeros((n, steps), dtype=np.int64)
    s, done = np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    cache = _Preallocated(steps)
    with torch.no_grad():
        for t in range(steps):
            a = sample_actions(_one_position(model, stream[:, t:t + 1], cache), generator)
            regret[:, t] = env.regret(a)
            r = env.pull(a)
            stream[:, t + 1] = _transition_tokens(s, a, r, s, done, c.n_states, c.n_actions)
            stream_rewards[:, t + 1] = r
            rewards[:, t], actions[:, t] = r, a
    lo = max(0, steps + 1 - c.n_ctx)
    return Rollout(rewards, actions, regret, [], steps - 1, stream[:, lo:].clone(), stream_rewards[:, lo:steps].copy())
