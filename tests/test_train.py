"""The shared training loop: schedule, learning, early stop, callbacks, train-or-load."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attnbook.errors import InvalidInputError
from attnbook import train as train_module
from attnbook.train import History, RunCache, TrainConfig, cached_fit, cpu_has_bf16, fit, model_device, select_device, select_precision


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
    entry = RunCache.of("demo", {"k": 1})
    (entry.folder / "history.json").write_text("{not json")  # corrupt record: retrain
    assert cached_fit("demo", {"k": 1}, lambda: nn.Sequential(nn.Linear(3, 1)), train_fn)[2] is False and len(trained) == 3


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.head = nn.Linear(3, 5, bias=False)
        self.head.weight = self.embed.weight  # shared, as a GPT ties its output head


def test_run_cache_keeps_extras_and_tied_weights(tmp_path, monkeypatch):
    from attnbook.errors import CheckpointError

    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    entry = RunCache.of("extras", {"k": 2})
    assert entry.folder.parent.name == "extras" and entry == RunCache.of("extras", {"k": 2}) != RunCache.of("extras", {"k": 3})
    assert not entry.complete()
    model, history = Tied(), History(steps=[0, 5], val_loss=[2.0, 1.0], best_val=1.0)
    maps = torch.rand(2, 3)
    entry.save(model, history, {"k": 2}, record={"samples": ["abc"]}, tensors={"maps.safetensors": {"maps": maps}}, tied=["head.weight"])
    assert entry.complete() and entry.complete("maps.safetensors") and not entry.complete("other.safetensors")
    read, record = entry.read()
    assert read == history and record == {"config": {"k": 2}, "samples": ["abc"]}
    assert torch.equal(entry.read_tensors("maps.safetensors")["maps"], maps)
    fresh = entry.load_weights(Tied(), tied=["head.weight"])
    assert torch.equal(fresh.embed.weight, model.embed.weight) and fresh.head.weight is fresh.embed.weight
    with pytest.raises(CheckpointError, match="missing"):
        entry.load_weights(Tied())  # the tied weight is not stored: say so unless the caller names it


# --- device and precision ------------------------------------------------------------------------


def test_select_precision(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert select_precision(cpu, "fp32") is None and select_precision(cpu, "bf16") is torch.bfloat16
    assert select_precision(cpu, "auto") is (torch.bfloat16 if cpu_has_bf16() else None)
    monkeypatch.setattr(train_module, "cpu_has_bf16", lambda: False)  # a CPU without bf16 instructions: autocast would only add casts
    assert select_precision(cpu, "auto") is None
    monkeypatch.setattr(train_module, "cpu_has_bf16", lambda: True)  # AVX512-BF16 / AMX
    assert select_precision(cpu, "auto") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert select_precision(cuda, "auto") is torch.bfloat16 and select_precision(cuda, "fp32") is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # e.g. a V100: no bf16 units
    assert select_precision(cuda, "auto") is None
    with pytest.raises(InvalidInputError, match=r"precision: expected one of \['auto', 'fp32', 'bf16'\]"):
        select_precision(cpu, "fp16")
    with pytest.raises(InvalidInputError, match="precision"):
        fit(nn.Linear(3, 1), mse_loss, get_batch_of(*regression()), lambda m: 1.0, TrainConfig(steps=2, warmup=0), precision="half", progress=False)


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_fit_trains_in_the_precision_asked_and_evaluates_in_fp32(precision, dtype):
    x, y = regression()
    seen = {"train": set(), "eval": set()}

    def loss_fn(model, batch):
        out = model(batch[0])
        seen["train"].add(out.dtype)
        return nn.functional.mse_loss(out.float(), batch[1])

    def evaluate(model):
        out = model(x)
        seen["eval"].add(out.dtype)
        return float(nn.functional.mse_loss(out, y))

    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    h = fit(model, loss_fn, get_batch_of(x, y), evaluate, TrainConfig(steps=150, lr=0.05, warmup=10, eval_every=50), precision=precision, progress=False)
    assert seen == {"train": {dtype}, "eval": {torch.float32}}
    assert (h.device, h.precision) == ("cpu", "bf16" if dtype == torch.bfloat16 else "fp32")
    assert model.weight.dtype == torch.float32  # autocast leaves the weights (and the optimiser) in fp32
    assert h.best_val < 0.02 * h.val_loss[0]  # bf16 steps still learn the regression
    assert History.from_dict(h.to_dict()) == h


def test_cached_fit_trains_on_the_device_asked_and_returns_a_cpu_model(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    x, y = regression()
    where = []

    def train_fn(model):
        where.append(model_device(model).type)
        return fit(model, mse_loss, get_batch_of(x, y), lambda m: float(mse_loss(m, (x, y))), TrainConfig(steps=5, warmup=0), progress=False)

    model, history, _ = cached_fit("demo", {"k": 2}, lambda: nn.Linear(3, 1), train_fn, device="auto")
    assert where == [select_device("auto").type] and model_device(model).type == "cpu" and history.device == where[0]
    assert model_device(nn.Module()).type == "cpu"  # no parameters: the CPU
    with pytest.raises(InvalidInputError, match="prefer"):
        cached_fit("demo", {"k": 3}, lambda: nn.Linear(3, 1), train_fn, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="CUDA"):
            cached_fit("demo", {"k": 3}, lambda: nn.Linear(3, 1), train_fn, device="cuda")
    assert len(where) == 1  # neither bad request trained anything


def test_old_cache_records_read_as_cpu_fp32():
    record = History(steps=[0], train_loss=[math.nan], val_loss=[1.0]).to_dict()
    del record["device"], record["precision"]  # a history cached before these fields existed
    h = History.from_dict(record)
    assert (h.device, h.precision) == ("cpu", "fp32")


def test_monitors_are_recorded_at_every_validation_and_never_choose_the_best_step():
    x, y = regression()
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    seen = []

    def weight_norm(m):  # a curve that rises as the fit improves: it must not pull the kept step
        seen.append(m.training)
        return float(m.weight.norm())

    h = fit(model, mse_loss, get_batch_of(x, y), lambda m: float(mse_loss(m, (x, y))),
            TrainConfig(steps=60, lr=0.05, warmup=0, eval_every=20), monitors={"norm": weight_norm}, progress=False)
    assert list(h.monitors) == ["norm"] and len(h.monitors["norm"]) == len(h.steps) == 4
    assert not any(seen)  # measured in eval mode
    assert h.best_val == min(h.val_loss)  # selection still by validation loss
    with torch.no_grad():
        kept = float(model.weight.norm())  # the restored best weights: their value is the curve's at the best step
    assert h.monitors["norm"][h.steps.index(h.best_step)] == pytest.approx(kept, rel=1e-6)
    assert History.from_dict(h.to_dict()).monitors == h.monitors
    with pytest.raises(InvalidInputError, match="monitors"):
        fit(nn.Linear(3, 1), mse_loss, get_batch_of(x, y), lambda m: 1.0, TrainConfig(steps=5, warmup=0), monitors={"n": 3.0}, progress=False)


def test_histories_cached_before_monitors_read_with_none():
    record = History(steps=[0], train_loss=[math.nan], val_loss=[1.0]).to_dict()
    del record["monitors"]
    assert History.from_dict(record).monitors == {}
