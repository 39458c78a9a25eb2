"""Chapter 3's forecast test with a blank canvas (the release's input) against the seasonal-average draft.

The diagnosis behind chapter 3's one change to ViTime's input: pretrain the chapter's model with
the profile's settings twice per seed — the future columns of the input blank (``future_fill =
"blank"``, as the release) and holding the history's seasonal average (the chapter's setting) —
and score both on the chapter's 64 held-out series. Prints, per seed and canvas, the model's mean
squared error as a ratio to the history mean's and to repeat-last-period's, the draft's own ratio,
and last one line per seed ``draft_over_blank_seed<S>: <MSE with draft / MSE blank>`` (< 1: the
draft helps). Pretraining is cached like the chapter's, so a second run only evaluates.
"""

from __future__ import annotations

import argparse
import dataclasses

from attnbook import profiles
from attnbook.train import set_threads
from attnbook.vitime import forecasting, realts
from attnbook.vitime.experiment import pretrained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=("quick", "full"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    set_threads()
    settings = profiles.get("vitime-harmonics", args.profile)
    test = forecasting.HeldOutConfig()
    data = realts.RealTSConfig(held_out_bands=test.bands)
    series, _ = forecasting.held_out_series(test)
    truth = series[:, settings.model.history_len:]
    baselines = forecasting.errors(forecasting.baseline_forecasts(series, settings.model.history_len), truth)
    hm, rlp = baselines["history mean"].mean(), baselines["repeat last period"].mean()
    print(f"seasonal average (the draft alone): {baselines['seasonal average'].mean() / hm:.3f} x history mean, "
          f"{baselines['seasonal average'].mean() / rlp:.3f} x repeat last period")
    ratios = {}
    for seed in args.seeds:
        mse = {}
        for fill in ("blank", "seasonal average"):
            s = dataclasses.replace(settings, future_fill=fill)
            model, history, _ = pretrained(s, data, seed, progress=False)
            err = forecasting.errors(forecasting.model_forecasts(model, series, s.mapping), truth)["model (expectation)"].mean()
            mse[fill] = err
            print(f"seed {seed}, {fill} canvas: model {err / hm:.3f} x history mean, {err / rlp:.3f} x repeat last period "
                  f"(best validation loss {history.best_val:.3f})")
        ratios[seed] = mse["seasonal average"] / mse["blank"]
    for seed, r in ratios.items():
        print(f"draft_over_blank_seed{seed}: {r:.3f}")


if __name__ == "__main__":
    main()
