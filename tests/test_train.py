"""The shared training loop: schedule, learning, early stop, callbacks, train-or-load."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attnbook.errors import InvalidInputError
from attnbook.train import History, TrainConfig, cached_fit, fit


def regression():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    return x, y


def get_batch_of(x, y, n=32):
    return lambda g: (x[i := torch.randint(0, len(x), (n,), generator=g)], y[i])


def mse_loss(model, batch):
    return nn.functional.mse_loss(model(batch[0]), batch[1])


def test_schedule_by_hand():
    c = TrainConfig(steps=110, lr=1.0, warmup=10, min_lr_ratio=0.0)
    assert c.lr_at(0) == pytest.approx(0.1) and c.lr_at(9) == pytest.approx(1.0)
    assert c.lr_at(10) == pytest.approx(1.0)
    assert c.lr_at(60) == pytest.approx(0.5)  # halfway through the cosine
    assert c.lr_at(110) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, "steps"), ({"batch_size": -1}, "batch_size"), ({"lr": 0.0}, "lr"), ({"warmup": 5, "steps": 5}, "warmup"),
    ({"min_lr_ratio": 2.0}, "min_lr_ratio"), ({"grad_clip": 0.0}, "grad_clip"), ({"patience": 0}, "patience"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        TrainConfig(**kwargs)


def test_fit_learns_and_keeps_best():
    x, y = regression()
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    calls = []
    h = fit(model, mse_loss, get_batch_of(x, y), lambda m: float(mse_loss(m, (x, y))),
            TrainConfig(steps=200, lr=0.05, warmup=10, eval_every=20), callbacks=[(50, lambda s, m: calls.append((s, m.training)))], progress=False)
    assert h.steps[0] == 0 and h.steps[-1] == 200 and math.isnan(h.train_loss[0])
    assert h.best_val < 0.01 * h.val_loss[0]
    assert h.best_val == min(h.val_loss) and h.val_loss[h.steps.index(h.best_step)] == h.best_val
    with torch.no_grad():
        assert float(mse_loss(model, (x, y))) == pytest.approx(h.best_val, rel=1e-5)  # best weights restored
    assert [s for s, _ in calls] == [0, 50, 100, 150, 200] and not any(t for _, t in calls)  # eval mode in callbacks


def test_early_stop():
    x, y = regression()
    model = nn.Linear(3, 1)
    h = fit(model, mse_loss, get_batch_of(x, y), lambda m: 1.0, TrainConfig(steps=500, warmup=0, eval_every=10, patience=3), progress=False)
    assert h.stopped_early and h.steps[-1] == 30


def test_non_finite_loss_raises():
    x, y = regression()
    with pytest.raises(InvalidInputError, match="loss"):
        fit(nn.Linear(3, 1), lambda m, b: torch.tensor(float("nan"), requires_grad=True), get_batch_of(x, y), lambda m: 1.0,
            TrainConfig(steps=5, warmup=0), progress=False)


def test_fit_is_deterministic():
    x, y = regression()
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.2), nn.Linear(8, 1))
        runs.append(fit(model, mse_loss, get_batch_of(x, y), lambda m: float(mse_loss(m, (x, y))), TrainConfig(steps=30, warmup=0, eval_every=10, seed=3), progress=False).val_loss)
    assert runs[0] == runs[1]


def test_cached_fit(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    x, y = regression()
    trained = []

    def train_fn(model):
        trained.append(1)
        return fit(model, mse_loss, get_batch_of(x, y), lambda m: float(mse_loss(m, (x, y))), TrainConfig(steps=20, warmup=0, eval_every=10), progress=False)

    m1, h1, loaded1 = cached_fit("demo", {"k": 1}, lambda: nn.Linear(3, 1), train_fn)
    m2, h2, loaded2 = cached_fit("demo", {"k": 1}, lambda: nn.Linear(3, 1), train_fn)
    assert (loaded1, loaded2) == (False, True) and len(trained) == 1
    assert h2.val_loss == h1.val_loss and torch.equal(m1.weight, m2.weight)
    assert isinstance(h2, History)
    _, _, loaded3 = cached_fit("demo", {"k": 1}, lambda: nn.Sequential(nn.Linear(3, 1)), train_fn)  # mismatched model: retrain
    assert not loaded3 and len(trained) == 2
