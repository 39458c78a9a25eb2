"""RealTS-style synthetic pretraining data and the pretraining loop of the mini ViTime.

The official RealTS generator bodies and their spectrum statistics are unpublished (design note
§3.1), so this is an approximation with the note's shares (§5.1):

- **periodic** (``periodic`` share, 0.6): a sum of 1–``max_components`` waves (sine, square,
  triangle, sawtooth) with log-uniform periods in ``[min_period, max_period]`` samples, random
  phases and amplitudes; or (``ifft_share`` of them) a sparse random spectrum turned into a
  series by an inverse real FFT (a stand-in for IFFTB);
- **trend** (``trend`` share, 0.2): a random walk, a logistic curve, a piecewise-linear path or
  a quadratic;
- **mixed** (the rest): a periodic series plus a trend scaled to ``U(0.2, 1)`` of its spread.

Every series gets Gaussian noise of ``U(0, noise)`` of its std, is reversed in time with
probability ``reverse_p`` and flipped in sign with probability ``flip_p``. No wave has a period
in ``held_out_bands`` (drawn again until it has not; the sparse spectra skip those frequencies),
so a test series built on those periods was never seen in pretraining. Series are generated
at canvas resolution (``history_len + future_len`` samples, one per column), normalised with the
history's statistics as at inference, and mapped to images by :func:`batch_images`, which equals
:func:`attnbook.vitime.mapping.series_to_image` applied to each series (tested).

Loss (:func:`pretraining_loss`), per column ``c`` with true row ``j*`` and predicted
distribution ``p = softmax(logits)`` over the ``h`` rows::

    q_j   ∝ exp(−(j − j*)² / 2 s²)                      (Gaussian-smoothed one-hot, s = 1 bin)
    CE_c  = −Σ_j q_j log p_j
    EMD_c = Σ_j p_j |j − j*|                            (Wasserstein-1 to the one-hot truth, in bins)
    loss  = Σ_c w_c (CE_c + λ · EMD_c) / Σ_c w_c          (w = 1 on future columns, 0.2 on history; λ = 0.02)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from numbers import Real
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .. import checks
from ..errors import InvalidInputError, bad_argument
from ..train import History, TrainConfig, cached_fit, fit, model_device
from .mapping import MappingConfig, future_draft, gaussian_kernel, to_bins
from .model import ViTime, ViTimeConfig

__all__ = [
    "RealTSConfig",
    "LossConfig",
    "KINDS",
    "WAVES",
    "generate",
    "batch_images",
    "column_terms",
    "pretraining_loss",
    "future_emd",
    "pretrain_key",
    "pretrain",
]

KINDS = ("periodic", "trend", "mixed")
WAVES = ("sine", "square", "triangle", "sawtooth")
TRENDS = ("random_walk", "logistic", "piecewise_linear", "quadratic")


@dataclass(frozen=True)
class RealTSConfig:
    """What the synthetic series look like (see the module docstring)."""

    length: int = 1232
    periodic: float = 0.6
    trend: float = 0.2
    ifft_share: float = 0.3
    max_components: int = 3
    min_period: float = 6.0
    max_period: float = 400.0
    noise: float = 0.1
    reverse_p: float = 0.5
    flip_p: float = 0.5
    held_out_bands: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        checks.integer("length", self.length, minimum=8)
        bands = tuple(tuple(float(v) for v in b) for b in self.held_out_bands) if isinstance(self.held_out_bands, (tuple, list)) else None
        if bands is None or any(len(b) != 2 or not b[0] < b[1] for b in bands):
            raise bad_argument(InvalidInputError, "held_out_bands", "a tuple of (low, high) periods with low < high", self.held_out_bands)
        object.__setattr__(self, "held_out_bands", bands)
        for name in ("periodic", "trend", "ifft_share", "noise", "reverse_p", "flip_p"):
            checks.probability(name, getattr(self, name))
        if self.periodic + self.trend > 1.0 + 1e-12:
            raise bad_argument(InvalidInputError, "periodic + trend", "shares summing to at most 1 (the rest is mixed)", self.periodic + self.trend)
        checks.positive_int("max_components", self.max_components)
        lo, hi = self.min_period, self.max_period
        if any(isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) for v in (lo, hi)) or not 2.0 <= lo < hi:
            raise bad_argument(InvalidInputError, "min_period/max_period", "periods with 2 <= min_period < max_period", (lo, hi))
        if bands and self.held_out(np.exp(np.linspace(np.log(lo), np.log(hi), 4097))).all():
            raise bad_argument(InvalidInputError, "held_out_bands", f"bands leaving some of [{lo:g}, {hi:g}] for pretraining", bands)

    def held_out(self, period: Any) -> Any:
        """Whether ``period`` (samples; scalar or array) lies in one of ``held_out_bands``."""
        p = np.asarray(period, dtype=np.float64)
        out = np.zeros(p.shape, dtype=bool)
        for lo, hi in self.held_out_bands:
            out |= (p >= lo) & (p <= hi)
        return out if out.ndim else bool(out)

    @property
    def mixed(self) -> float:
        return max(0.0, 1.0 - self.periodic - self.trend)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LossConfig:
    """Weights of :func:`pretraining_loss`: target smoothing ``sigma`` (bins), ``emd`` (λ),
    ``history_weight`` (w on history columns; future columns weigh 1)."""

    sigma: float = 1.0
    emd: float = 0.02
    history_weight: float = 0.2

    def __post_init__(self) -> None:
        checks.positive("sigma", self.sigma)
        for name in ("emd", "history_weight"):
            checks.non_negative(name, getattr(self, name))

    def to_dict(self) -> dict:
        return asdict(self)


# -- generators --------------------------------------------------------------------------------

def _wave(kind: str, phase: np.ndarray) -> np.ndarray:
    """Unit-amplitude periodic wave of ``phase`` (in cycles)."""
    frac = phase - np.floor(phase)
    if kind == "sine":
        return np.sin(2 * np.pi * phase)
    if kind == "square":
        return np.where(frac < 0.5, 1.0, -1.0)
    if kind == "triangle":
        return 4.0 * np.abs(frac - 0.5) - 1.0
    return 2.0 * frac - 1.0  # sawtooth


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, size: Any = None) -> Any:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def _periodic(rng: np.random.Generator, cfg: RealTSConfig) -> np.ndarray:
    n = cfg.length
    t = np.arange(n, dtype=np.float64)
    if rng.random() < cfg.ifft_share:  # sparse random spectrum
        freqs = np.fft.rfftfreq(n)
        with np.errstate(divide="ignore"):
            periods = 1.0 / freqs
        allowed = np.flatnonzero((freqs >= 1.0 / cfg.max_period) & (freqs <= 1.0 / cfg.min_period) & ~cfg.held_out(periods))
        k = int(rng.integers(1, 6))
        chosen = rng.choice(allowed, size=min(k, len(allowed)), replace=False)
        spectrum = np.zeros(len(freqs), dtype=np.complex128)
        spectrum[chosen] = rng.lognormal(0.0, 0.5, len(chosen)) * np.exp(2j * np.pi * rng.random(len(chosen)))
        return np.fft.irfft(spectrum, n) * n
    out = np.zeros(n)
    for _ in range(int(rng.integers(1, cfg.max_components + 1))):
        period = _log_uniform(rng, cfg.min_period, cfg.max_period)
        while cfg.held_out(period):  # never a period in a held-out band
            period = _log_uniform(rng, cfg.min_period, cfg.max_period)
        kind = WAVES[int(rng.integers(0, len(WAVES)))] if rng.random() < 0.5 else "sine"
        out += rng.uniform(0.2, 1.0) * _wave(kind, t / period + rng.random())
    return out


def _trend(rng: np.random.Generator, cfg: RealTSConfig) -> np.ndarray:
    n = cfg.length
    t = np.linspace(0.0, 1.0, n)
    kind = TRENDS[int(rng.integers(0, len(TRENDS)))]
    if kind == "random_walk":
        return np.cumsum(rng.normal(0.0, 1.0, n))
    if kind == "logistic":
        return 1.0 / (1.0 + np.exp(-rng.uniform(5, 40) * (t - rng.uniform(0.2, 0.9))))
    if kind == "piecewise_linear":
        knots = np.sort(rng.uniform(0, 1, int(rng.integers(1, 4))))
        xs = np.concatenate([[0.0], knots, [1.0]])
        ys = np.cumsum(np.concatenate([[0.0], rng.normal(0.0, 1.0, len(xs) - 1)]))
        return np.interp(t, xs, ys)
    a, b = rng.normal(0.0, 1.0, 2)
    return a * t**2 + b * t


def _one(rng: np.random.Generator, cfg: RealTSConfig) -> np.ndarray:
    u = rng.random()
    if u < cfg.periodic:
        x = _periodic(rng, cfg)
    elif u < cfg.periodic + cfg.trend:
        x = _trend(rng, cfg)
    else:
        p = _periodic(rng, cfg)
        tr = _trend(rng, cfg)
        tr = tr / (np.ptp(tr) + 1e-12) * np.ptp(p) * rng.uniform(0.2, 1.0)
        x = p + tr
    scale = float(np.std(x)) or 1.0
    x = x + rng.normal(0.0, 1.0, cfg.length) * scale * rng.uniform(0.0, cfg.noise)
    if rng.random() < cfg.reverse_p:
        x = x[::-1]
    if rng.random() < cfg.flip_p:
        x = -x
    return np.ascontiguousarray(x)


def generate(n: int, config: RealTSConfig | None = None, *, seed: int | np.random.Generator = 0) -> np.ndarray:
    """``n`` synthetic series ``(n, config.length)`` float64, reproducible from ``seed``."""
    config = RealTSConfig() if config is None else config
    if not isinstance(config, RealTSConfig):
        raise bad_argument(InvalidInputError, "config", "a RealTSConfig", type(config).__name__, raw=True)
    n = checks.positive_int("n", n)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return np.stack([_one(rng, config) for _ in range(n)])


# -- images ------------------------------------------------------------------------------------

def batch_images(series: Any, mapping: MappingConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, W)`` series at canvas resolution → (model input ``(B, 1, W, h)`` float32, true rows
    ``(B, W)`` int64).

    Column ``c`` holds sample ``c``; the first ``history_len`` columns are the history, whose
    mean and std normalise the whole series. Equals ``series_to_image(x[:T], H, mapping,
    future=x[T:])`` (``.image``, ``.rows``) for each row, computed for the batch at once (the
    blur as a table lookup along the value axis and one 1-D correlation along time, float32).
    """
    if not isinstance(mapping, MappingConfig):
        raise bad_argument(InvalidInputError, "mapping", "a MappingConfig", type(mapping).__name__, raw=True)
    x = torch.as_tensor(np.asarray(series, dtype=np.float64))
    if x.dim() != 2 or x.shape[1] != mapping.width or x.shape[0] < 1:
        raise bad_argument(InvalidInputError, "series", f"an array (batch, W={mapping.width})", tuple(x.shape), raw=True)
    if not torch.isfinite(x).all():
        raise bad_argument(InvalidInputError, "series", "finite values", "non-finite entries", raw=True)
    n = mapping.history_len
    hist = x[:, :n]
    if mapping.mu_norm is None:
        mu = hist.mean(1, keepdim=True)
    else:
        m = (torch.sign(hist) * hist.abs() ** mapping.mu_norm).mean(1, keepdim=True) + 1e-7
        mu = torch.sign(m) * m.abs().sqrt()
    sigma = (hist.std(1, unbiased=False, keepdim=True) + mapping.std_eps) * mapping.std_factor
    z = (x - mu) / sigma
    ms = mapping.max_scal
    rows = torch.floor((z.clamp(-ms, ms) + ms) / mapping.bin_width).long().clamp(0, mapping.bins - 1)
    # Blur along the value axis first: a one-hot column blurs to row ``rows[c]`` of the table
    # ``columns`` (the 1-D blur of each one-hot, reflect-101 edges); then along time (float32).
    k = gaussian_kernel(mapping.blur_kernel)
    columns = ndimage.correlate1d(np.eye(mapping.bins), k, axis=-1, mode="mirror").astype(np.float32)
    image = columns[rows.numpy()]  # (B, W, h)
    image[:, n:] = 0.0
    if mapping.future_fill != "blank":  # the draft forecast, binned with the history's μ, σ
        hist_np, mu_np, sigma_np = hist.numpy(), mu.numpy(), sigma.numpy()
        drafts = np.stack([future_draft(h, mapping.width - n, mapping) for h in hist_np])
        image[:, n:] = columns[to_bins((drafts - mu_np) / sigma_np, mapping)]
    image = ndimage.correlate1d(image, k.astype(np.float32), axis=1, mode="mirror")
    image *= np.float32(mapping.blur_gain)
    return torch.from_numpy(image).unsqueeze(1), rows


# -- loss ----------------------------------------------------------------------------------------

def _column_weights(mapping: MappingConfig, history_weight: float, device: torch.device) -> torch.Tensor:
    w = torch.ones(mapping.width, device=device)
    w[: mapping.history_len] = history_weight
    return w


def column_terms(logits: torch.Tensor, rows: torch.Tensor, mapping: MappingConfig, loss: LossConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per column ``(B, W)``: ``CE_c``, ``EMD_c`` (module docstring) and the smoothed target ``q`` ``(B, W, h)``."""
    logp = F.log_softmax(logits[:, 0].float(), dim=-1)  # (B, W, h)
    j = torch.arange(mapping.bins, device=logits.device, dtype=torch.float32)
    dist = (j[None, None, :] - rows[..., None].float()).abs()  # (B, W, h)
    q = torch.exp(-0.5 * (dist / loss.sigma) ** 2)
    q = q / q.sum(-1, keepdim=True)
    return -(q * logp).sum(-1), (logp.exp() * dist).sum(-1), q


def pretraining_loss(logits: torch.Tensor, rows: torch.Tensor, mapping: MappingConfig, loss: LossConfig | None = None) -> torch.Tensor:
    """Weighted CE against a Gaussian-smoothed one-hot plus λ·EMD (module docstring).

    ``logits`` ``(B, 1, W, h)`` (``ViTime.logits``), ``rows`` ``(B, W)`` true rows."""
    loss = LossConfig() if loss is None else loss
    ce, emd, _ = column_terms(logits, rows, mapping, loss)
    w = _column_weights(mapping, loss.history_weight, logits.device)
    per_column = ce + loss.emd * emd
    return (per_column * w).sum(-1).div(w.sum()).mean()


def future_emd(probs: torch.Tensor, rows: torch.Tensor, mapping: MappingConfig) -> torch.Tensor:
    """Mean over future columns of ``Σ_j p_j |j − j*|`` per sample ``(B,)``, in bins."""
    j = torch.arange(mapping.bins, device=probs.device, dtype=probs.dtype)
    dist = (j[None, None, :] - rows[..., None].to(probs.dtype)).abs()
    emd = (probs[:, 0] * dist).sum(-1)
    return emd[:, mapping.history_len:].mean(-1)


# -- pretraining --------------------------------------------------------------------------------

def _check_pair(model_config: ViTimeConfig, mapping: MappingConfig, data: RealTSConfig) -> None:
    if not isinstance(model_config, ViTimeConfig):
        raise bad_argument(InvalidInputError, "model_config", "a ViTimeConfig", type(model_config).__name__, raw=True)
    if not isinstance(mapping, MappingConfig):
        raise bad_argument(InvalidInputError, "mapping", "a MappingConfig", type(mapping).__name__, raw=True)
    if not isinstance(data, RealTSConfig):
        raise bad_argument(InvalidInputError, "data", "a RealTSConfig", type(data).__name__, raw=True)
    model_config.mapping(mapping)
    if data.length != mapping.width:
        raise bad_argument(InvalidInputError, "data.length", f"the canvas width W = {mapping.width}", data.length)


def pretrain_key(model_config: ViTimeConfig, mapping: MappingConfig, data: RealTSConfig, train: TrainConfig, *,
                 loss: LossConfig | None = None, val_size: int = 64, monitors: Sequence[str] = (), monitor_key: Any = None,
                 val_seed: int | None = None) -> dict:
    """The run-cache key of :func:`pretrain` with these arguments (``monitors``: the monitors' names):
    everything that determines the result. The entry is ``RunCache.of("vitime-realts", key)``."""
    _check_pair(model_config, mapping, data)
    loss = LossConfig() if loss is None else loss
    checks.positive_int("val_size", val_size)
    key = {
        "version": 1,
        "model": model_config.to_dict(),
        "mapping": asdict(mapping),
        "data": data.to_dict(),
        "train": asdict(train),
        "loss": loss.to_dict(),
        "val_size": int(val_size),
    }
    if val_seed is not None:  # absent: train.seed + 10_000, as before (the keys of existing entries stay)
        key["val_seed"] = checks.integer("val_seed", val_seed, minimum=0)
    if monitors:
        if monitor_key is None:
            raise bad_argument(InvalidInputError, "monitor_key", "a JSON description of the monitors (their cache key)", None, raw=True)
        key["monitors"] = {"names": sorted(monitors), "key": monitor_key}
    return key


def pretrain(
    model_config: ViTimeConfig,
    mapping: MappingConfig,
    data: RealTSConfig,
    train: TrainConfig,
    *,
    loss: LossConfig | None = None,
    val_size: int = 64,
    monitors: Mapping[str, Callable[[ViTime], float]] | None = None,
    monitor_key: Any = None,
    name: str = "vitime-realts",
    val_seed: int | None = None,
    progress: bool = True,
    device: str = "cpu",
    precision: str = "fp32",
) -> tuple[ViTime, History, bool]:
    """Train a :class:`ViTime` on fresh RealTS batches (train-or-load, cached by config hash).

    Each step draws ``train.batch_size`` new series (seeded from ``train.seed``); validation is
    the loss on ``val_size`` fixed series (seed ``val_seed``, by default ``train.seed + 10_000``;
    give one ``val_seed`` to validate every training seed on the same series), and the best weights
    are kept. Training runs on ``device`` with ``precision`` (:func:`attnbook.train.select_precision`);
    the model comes back on the CPU. ``monitors`` (:func:`attnbook.train.fit`) are measured at
    every validation into ``history.monitors``; ``monitor_key`` (JSON) names them in the cache key,
    since the cache cannot hash functions. Returns ``(model, history, loaded_from_cache)``.
    """
    loss = LossConfig() if loss is None else loss
    key = pretrain_key(model_config, mapping, data, train, loss=loss, val_size=val_size, monitors=sorted(monitors or ()),
                       monitor_key=monitor_key, val_seed=val_seed)
    val_seed = train.seed + 10_000 if val_seed is None else val_seed

    def build() -> ViTime:
        torch.manual_seed(train.seed)
        return ViTime(model_config)

    def train_fn(model: ViTime) -> History:
        rng = np.random.default_rng(train.seed)
        val_x, val_rows = batch_images(generate(val_size, data, seed=val_seed), mapping)

        def get_batch(_: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            return batch_images(generate(train.batch_size, data, seed=rng), mapping)

        def loss_fn(m: ViTime, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            return pretraining_loss(m.logits(batch[0]), batch[1], mapping, loss)

        def evaluate(m: ViTime) -> float:
            dev = model_device(m)
            return float(pretraining_loss(m.logits(val_x.to(dev)), val_rows.to(dev), mapping, loss))

        return fit(model, loss_fn, get_batch, evaluate, train, monitors=monitors, precision=precision, progress=progress, desc="pretraining")

    return cached_fit(name, key, build, train_fn, device=device)
