"""Compression explorer: strategy and K sliders → the kept positions over the query's attention
row, and the regret (or return) that strategy reached at that K."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import torch

from .. import plots
from ..errors import InvalidInputError, bad_argument
from ..explore import redraw
from ..maps import AttentionMaps
from ..views import AttentionView
from . import compress

__all__ = ["render_compression", "CompressionExplorer", "compression_explorer", "compression_view"]


def render_compression(query: Any, rewards: Any, sweep: pd.DataFrame, strategy: str, K: int, task: int = 0) -> tuple[Any, str]:
    """Figure of one task's query row (mean over layers and heads, full context) with the
    positions ``strategy`` keeps at ``K`` marked, and an HTML line with the sweep's result.

    ``query`` ``(layers, tasks, heads, L + 1)`` (query last), ``rewards`` ``(tasks, L)``; ``topk``
    ranks by this row; ``h2o`` is shown with the row as a stand-in for its accumulated scores."""
    q = torch.as_tensor(query, dtype=torch.float64)
    if q.dim() != 4:
        raise bad_argument(InvalidInputError, "query", "query rows (layers, tasks, heads, L + 1)", tuple(q.shape), raw=True)
    L = q.shape[-1] - 1
    r = np.asarray(rewards, dtype=np.float64)
    row = q[:, task, :, :L].mean((0, 1)).numpy()
    kept = compress.select(strategy, 1, L, K, scores=row[None], rewards=r[task:task + 1], rng=np.random.default_rng(0))[0]
    fig = plots.BookFigure(figsize=(plots.BOOK_WIDTH_IN, 3.4), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(np.arange(L), row, color="lightgrey", label="dropped")
    ax.bar(kept, row[kept], color="#377eb8", label=f"kept ({len(kept)})")
    hits = np.flatnonzero(r[task] > 0)
    ax.plot(hits, np.zeros(len(hits)), "|", color="#e41a1c", markersize=10, label="rewarded transition")
    ax.set_xlabel("context position (0 = oldest, query after the last)")
    ax.set_ylabel("query attention (mean over layers, heads)")
    ax.set_title(f"{strategy}, K = {K}: what the model keeps on task {task}")
    ax.legend(fontsize=plots.MIN_FONT_PT)
    match = sweep[(sweep.strategy == strategy) & (sweep.K == K)]
    result = "not in the sweep" if match.empty else (
        f"performance {match['performance'].iloc[0]:.3f} ± {match['se'].iloc[0]:.3f}, {match['% of full'].iloc[0]:.1f} % of full")
    return fig, f"<b>{html.escape(strategy)}</b>, K = {K}: {html.escape(result)}"


class CompressionExplorer:
    """A strategy dropdown and a K slider (the sweep's values) over :func:`render_compression`."""

    def __init__(self, query: Any, rewards: Any, sweep: pd.DataFrame, ks: Sequence[int]) -> None:
        if not isinstance(sweep, pd.DataFrame) or not {"strategy", "K", "performance", "se", "% of full"} <= set(sweep.columns):
            raise bad_argument(InvalidInputError, "sweep", "the DataFrame of compression_sweep", type(sweep).__name__, raw=True)
        if not ks:
            raise bad_argument(InvalidInputError, "ks", "at least one K", ks)
        self.query, self.rewards, self.sweep = query, rewards, sweep
        self.n_renders = 0
        self.strategy = widgets.Dropdown(options=[s for s in compress.STRATEGIES if s != "full"], value="topk", description="strategy")
        self.K = widgets.SelectionSlider(options=sorted(int(k) for k in ks), value=max(int(k) for k in ks), description="K",
                                         continuous_update=False)
        self.task = widgets.IntSlider(value=0, min=0, max=np.asarray(rewards).shape[0] - 1, description="task", continuous_update=False)
        self.output = widgets.Output()
        self.info = widgets.HTML()
        self.widget = widgets.VBox([widgets.HBox([self.strategy, self.K, self.task]), self.output, self.info])
        for w in (self.strategy, self.K, self.task):
            w.observe(lambda _change: self.update(), names="value")
        self.update()

    def update(self) -> None:
        draw = lambda: render_compression(self.query, self.rewards, self.sweep, self.strategy.value, self.K.value, self.task.value)  # noqa: E731
        if redraw(self.output, self.info, draw):
            self.n_renders += 1

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def compression_explorer(query: Any, rewards: Any, sweep: pd.DataFrame, ks: Sequence[int]) -> CompressionExplorer:
    """Explorer: strategy and K → the kept positions over the query's attention row and the result."""
    return CompressionExplorer(query, rewards, sweep, ks)


def compression_view(model: Any, window: torch.Tensor, rewards: Any, sweep: pd.DataFrame, ks: Sequence[int], *, tasks: int = 4,
                     seed: int = 0, title: str = "", caption: str = "") -> AttentionView:
    """The static view of AD's attention on compressed contexts: facets ``strategy`` × ``K`` (the
    sweep's), every layer and head, ``tasks`` held-out tasks as samples. Keys are the kept context
    positions (``t<position>``, ★ where the transition was rewarded) and the query. ``topk`` ranks
    by the query row (mean over layers and heads) of a full pass; ``h2o`` is shown with that row as
    a stand-in for its accumulated scores; ``random`` draws with ``seed``. Each entry's note is the
    sweep's result at that strategy and K. Positions are the original ones, as in the sweep."""
    from ..capture import capture
    from .model import query_attention

    if not isinstance(sweep, pd.DataFrame) or not {"strategy", "K", "performance", "se", "% of full"} <= set(sweep.columns):
        raise bad_argument(InvalidInputError, "sweep", "the DataFrame of compression_sweep", type(sweep).__name__, raw=True)
    if not ks:
        raise bad_argument(InvalidInputError, "ks", "at least one K", ks)
    n = min(int(tasks), window.shape[0])
    win, r = window[:n], np.asarray(rewards, dtype=np.float64)[:n]
    L = win.shape[1] - 1
    _, query = query_attention(model, win)
    row = query.mean((0, 2))[:, :L].double().numpy()
    view = AttentionView(title, caption=caption, facets=("strategy", "K"))
    for strategy in (s for s in compress.STRATEGIES if s != "full"):
        for K in sorted(int(k) for k in ks):
            kept = compress.select(strategy, n, L, K, scores=row, rewards=r, rng=np.random.default_rng(seed))
            tokens, pos = compress.gather_window(win, kept), compress.positions_for(kept, L, "original")
            with capture(model) as cap, torch.no_grad():
                model(tokens, pos)
            m = cap.maps
            labels = [[f"t{p}" + ("★" if r[b, p] > 0 else "") for p in kept[b]] + ["query"] for b in range(n)]
            causal = torch.ones(n, K + 1, K + 1, dtype=torch.bool).tril()  # AD is causal: the upper triangle is masked
            maps = AttentionMaps(m.weights, m.layer_names, labels, labels, causal if m.mask is None else m.mask, dict(m.meta))
            match = sweep[(sweep.strategy == strategy) & (sweep.K == K)]
            result = "not in the sweep" if match.empty else (
                f"performance {match['performance'].iloc[0]:.3f} ± {match['se'].iloc[0]:.3f}, {match['% of full'].iloc[0]:.1f} % of full")
            view.add(maps, note=f"{strategy}, K = {K}: {result}", sample_labels=[f"task {b}" for b in range(n)], strategy=strategy, K=K)
    return view
