"""The seed study's result files, one folder per generator (``results/distribution-effects/<profile>/<generator>/``)."""

from __future__ import annotations

from pathlib import Path

from .. import metrics, plots
from ..store import save_figure, write_json
from .experiment import GeneratorRun


def write_generator_results(run: GeneratorRun, folder: Path, samples: int, heads: int | None, answers: dict) -> list[str]:
    """Write training curves, attention summary, entropy analysis, per-head heatmaps of the first
    ``samples`` windows and ``heads`` heads (None: all), ``attention_metrics.json`` and
    ``summary.json``; return the file names."""
    name = run.name
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def figure(filename: str, fig) -> None:
        save_figure(folder / filename, fig)
        written.append(filename)

    figure("training_curves.png", plots.training_curves({name: run.history}, title=f"{name}: training and validation loss"))
    figure(f"attention_summary_{name}.png", plots.model_view(run.maps, sample=0, title=f"{name}: every layer and head, window 0"))
    entropy = metrics.entropy(run.maps, normalized=True).nanmean(1)
    figure("entropy_analysis.png", plots.layer_head_grid(entropy, title=f"{name}: normalised entropy per head", cbar_label="H / log n"))
    heads = heads or run.maps.n_heads
    for s in range(min(samples, run.maps.batch_size)):
        for layer in range(run.maps.n_layers):
            for head in range(min(heads, run.maps.n_heads)):
                figure(f"attention_L{layer}_H{head}_S{s}.png", plots.head_map(run.maps, layer, head, s, title=f"{name} L{layer} H{head} window {s}"))
    write_json(folder / "attention_metrics.json", metrics.head_summary(run.maps))
    written.append("attention_metrics.json")
    base_name, base = run.best_baseline
    write_json(folder / "summary.json", {
        "generator": name, "family": run.data.series.family, "config": run.config.to_dict(),
        "losses": {"val_at_step_0": run.history.val_loss[0], "best_val": run.history.best_val, "best_step": run.history.best_step,
                   "train_seconds": run.history.seconds, "loaded_from_cache": run.loaded},
        "mse": run.mse, "baselines": run.baselines, "best_baseline": base_name, "mse_over_best_baseline": run.mse / base,
        "answers": answers,
    })
    written.append("summary.json")
    return written
