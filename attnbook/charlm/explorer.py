"""Evolution explorer: dataset, snapshot, layer and head → the head's map on the stored window and
its metrics at that step."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np

from .. import plots
from ..errors import InvalidInputError, bad_argument
from ..explore import redraw
from ..maps import check_index
from ..views import AttentionView
from .analysis import by_dataset, stored_window, window_maps
from .experiment import RunResult
from .tracking import HEAD_METRICS

__all__ = ["window_labels", "render_snapshot", "EvolutionExplorer", "evolution_view"]


def window_labels(run: RunResult) -> list[str]:
    """The characters of the run's stored window, with space and newline made visible (␣, ⏎)."""
    return [{" ": "␣", "\n": "⏎"}.get(c, c) for c in run.window]


def render_snapshot(run: RunResult, snapshot: int, layer: int, head: int) -> tuple[Any, str]:
    """Heatmap of one head at one snapshot (the run's first seed window) and an HTML table of
    that head's metrics, with the layer's diversity and the step's validation loss."""
    k = check_index("snapshot", snapshot, len(run.steps))
    l = check_index("layer", layer, run.maps.shape[1])
    h = check_index("head", head, run.maps.shape[2])
    chars = window_labels(run) or None
    fig = plots.heatmap(run.maps[k, l, h].astype(np.float32), query_labels=chars, key_labels=chars,
                        title=f"{run.spec.name} · step {run.steps[k]} · layer {l} head {h}")
    cells = [(m, run.snapshots[m][k, l, h]) for m in HEAD_METRICS] + [("diversity (layer)", run.snapshots["diversity"][k, l])]
    if run.steps[k] in run.history.steps:
        cells.append(("validation loss", run.history.val_loss[run.history.steps.index(run.steps[k])]))
    body = "".join(f"<tr><td>{html.escape(name)}</td><td>{value:.3f}</td></tr>" for name, value in cells)
    return fig, f"<table><thead><tr><th>metric</th><th>value</th></tr></thead><tbody>{body}</tbody></table>"


class EvolutionExplorer:
    """Dropdown of datasets (first seed of each), a snapshot slider (steps), layer and head sliders."""

    def __init__(self, results: Sequence[RunResult]) -> None:
        if not results or not all(isinstance(r, RunResult) for r in results):
            raise bad_argument(InvalidInputError, "results", "a non-empty list of RunResult", results)
        self.runs = {name: runs[0] for name, runs in by_dataset(results).items()}
        first = next(iter(self.runs.values()))
        self.n_renders = 0
        self.dataset = widgets.Dropdown(options=list(self.runs), description="dataset")
        self.snapshot = widgets.SelectionSlider(options=[(str(s), k) for k, s in enumerate(first.steps)], value=len(first.steps) - 1,
                                                description="step", continuous_update=False)
        self.layer = widgets.IntSlider(value=0, min=0, max=first.maps.shape[1] - 1, description="layer", continuous_update=False)
        self.head = widgets.IntSlider(value=0, min=0, max=first.maps.shape[2] - 1, description="head", continuous_update=False)
        self.output = widgets.Output()
        self.info = widgets.HTML()
        self.widget = widgets.VBox([widgets.HBox([self.dataset, self.snapshot]), widgets.HBox([self.layer, self.head]), self.output, self.info])
        self.dataset.observe(self._on_dataset, names="value")
        for w in (self.snapshot, self.layer, self.head):
            w.observe(lambda _change: self.update(), names="value")
        self.update()

    @property
    def run(self) -> RunResult:
        return self.runs[self.dataset.value]

    def _on_dataset(self, _change: Any) -> None:
        steps = self.run.steps
        with self.snapshot.hold_trait_notifications():
            self.snapshot.options = [(str(s), k) for k, s in enumerate(steps)]
            self.snapshot.value = min(self.snapshot.value, len(steps) - 1)
        self.update()

    def update(self) -> None:
        draw = lambda: render_snapshot(self.run, self.snapshot.value, self.layer.value, self.head.value)  # noqa: E731
        if redraw(self.output, self.info, draw):
            self.n_renders += 1

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


def evolution_view(results: Sequence[RunResult], *, title: str = "", caption: str = "") -> AttentionView:
    """The static view of every recorded snapshot: facets ``dataset`` (first seed of each) ×
    ``snapshot`` (the last shown first), every layer and head on the run's stored window (causal). Each entry's note is the
    step and its validation loss; each head's note its tracked metrics at that step. Rows are
    renormalised to sum to 1 (the run cache keeps the maps in half precision)."""
    if not results or not all(isinstance(r, RunResult) for r in results):
        raise bad_argument(InvalidInputError, "results", "a non-empty list of RunResult", results)
    runs = {name: runs[0] for name, runs in by_dataset(results).items()}
    same = len({tuple(r.steps) for r in runs.values()}) == 1
    snapshot = lambda k, steps: f"step {steps[k]}" if same else f"{k + 1} of {len(steps)} (step {steps[k]})"  # noqa: E731
    first = next(iter(runs.values()))
    view = AttentionView(title, caption=caption, facets=("dataset", "snapshot"),
                         start={"snapshot": snapshot(len(first.steps) - 1, first.steps)})  # trained maps first
    for name, run in runs.items():
        _, L, H, T, _ = run.maps.shape
        chars = window_labels(run)[:T] or [str(t) for t in range(T)]
        for k, step in enumerate(run.steps):
            maps = window_maps(stored_window(run, k).astype(np.float32), chars)
            loss = run.history.val_loss[run.history.steps.index(step)] if step in run.history.steps else None
            notes = [[", ".join(f"{m} {run.snapshots[m][k, l, h]:.3f}" for m in HEAD_METRICS) for h in range(H)] for l in range(L)]
            note = f"{name}, step {step}" + ("" if loss is None else f": validation loss {loss:.3f}")
            view.add(maps, note=note, head_notes=notes, dataset=name, snapshot=snapshot(k, run.steps))
    return view
