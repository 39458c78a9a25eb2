"""ViTime's series ↔ image mapping ("visual space"), step for step as the released inference does it.

Series → image (``series_to_image``), for a history of ``T`` samples and a horizon ``H`` on a
canvas of ``W = history_len + future_len`` columns and ``h = bins`` value rows:

1. **Resample** the history linearly onto ``n = int(T / (T + H) · W)`` columns, end points
   aligned (column ``c`` ↦ sample ``c · (T − 1)/(n − 1)``). The time stretch is ≈ ``W / (T + H)``,
   so one patch of ``pw`` columns holds ``pw · (T + H) / W`` samples (``samples_per_patch``).
2. **Normalise** with the statistics of the *resampled history only*: ``μ`` = its mean (or, with
   ``mu_norm = p``, the signed square root of ``mean(sign(x) · x^p) + 1e-7``),
   ``σ = (std + std_eps) · std_factor``; ``z = (x − μ) / σ``.
3. **Bin**: clip ``z`` to ``[−MS, MS]`` (``MS = max_scal``), bin width ``r = 2 · MS / (h − 1)``,
   row ``= clip(floor((z + MS) / r), 0, h − 1)`` (row 0 is the most negative value), one-hot
   image ``(W, h)``. The future columns hold the history mean (or a given true future): that
   one-hot is the *target*; the model *input* has the future columns zeroed (``future_fill =
   "blank"``, the release) or holding the one-hot of a draft forecast (``"seasonal average"``:
   :func:`attnbook.vitime.seasonal.seasonal_average` of the resampled history, binned with the
   same ``μ``, ``σ``), then
4. **Blur**: OpenCV ``GaussianBlur(k × k, sigma 0)`` on the ``(W, h)`` image, i.e. the normalised
   1-D kernel ``exp(−i² / 2σ²)`` with ``σ = 0.3 · ((k − 1)/2 − 1) + 0.8`` on both axes, reflect-101
   borders, then multiplied by ``k`` (``blur_scale``). It leaks ``(k − 1)/2`` columns of history
   into the zeroed future and leaves each blurred column with mass ≈ ``k``, not 1.

Image → series (``image_to_series``): per column the ``argmax`` row (the current release; the
row's lower edge, a −r/2 bias on average) or the ``expectation`` ``Σ p_i · i / Σ p_i`` (V1 and the
paper), then ``z = row · r − MS``, ``x = z · σ + μ``, and the ``W`` decoded columns (history
reconstruction + forecast) are resampled linearly back to ``T + H`` samples; the forecast is
``[T:]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from .. import checks
from ..errors import InvalidInputError, bad_argument
from .seasonal import seasonal_average

Decoding = Literal["argmax", "expectation"]
DECODINGS: tuple[str, ...] = ("argmax", "expectation")
FUTURE_FILLS: tuple[str, ...] = ("blank", "seasonal average")

# OpenCV's fixed kernels for ksize 1, 3, 5, 7, 9 when sigma <= 0 (getGaussianKernel, checked
# against opencv-python 5.0; every other odd size uses the sigma formula).
_SMALL_GAUSSIAN: dict[int, tuple[float, ...]] = {
    1: (1.0,),
    3: (0.25, 0.5, 0.25),
    5: (0.0625, 0.25, 0.375, 0.25, 0.0625),
    7: (0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125),
    9: tuple(v / 256 for v in (4, 13, 30, 51, 60, 51, 30, 13, 4)),
}


# -- argument checks ---------------------------------------------------------------------------
def _series(name: str, value: Any, min_len: int = 1) -> np.ndarray:
    arr = checks.array(name, value, finite=False)
    if arr.ndim != 1:
        raise bad_argument(
            InvalidInputError, name, "a 1-D array (T,) (map a multivariate series one channel at a time)", f"shape {arr.shape}", raw=True
        )
    if len(arr) < min_len:
        raise bad_argument(InvalidInputError, name, f"at least {min_len} values", f"{len(arr)} values", raw=True)
    checks.array(name, arr)
    return arr


def _image(name: str, value: Any, config: MappingConfig) -> np.ndarray:
    arr = checks.array(name, value, finite=False)
    if arr.ndim < 2 or arr.shape[-1] != config.bins:
        raise bad_argument(
            InvalidInputError, name, f"an array (..., W, h) with h = bins = {config.bins} rows last", f"shape {arr.shape}", raw=True
        )
    checks.array(name, arr)
    return arr


def _config(config: Any) -> MappingConfig:
    if config is None:
        return DEFAULT
    if not isinstance(config, MappingConfig):
        raise bad_argument(InvalidInputError, "config", "a MappingConfig", config)
    return config


def _method(method: Any, config: MappingConfig) -> str:
    method = config.decode if method is None else method
    if method not in DECODINGS:
        raise bad_argument(InvalidInputError, "method", f"one of {DECODINGS}", method)
    return method


# -- config ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MappingConfig:
    """The parameters of the series ↔ image mapping. Defaults: the note's CPU "mini-strip" preset.

    - ``history_len``, ``future_len`` (512, 720): the canvas columns of history and future the
      model was trained with (official ``args.size[0]``, ``args.size[2]``, times ``expandData``);
      the canvas width is ``W = history_len + future_len`` = 1232, a 1× canvas for the blog's
      512 + 720 task (the official 2× canvas is 1024 + 1440 = 2464).
    - ``bins`` (64): ``h``, the value rows; with ``max_scal`` 3.5 the bin width is
      ``r = 2 · 3.5 / 63 ≈ 0.11 σ``.
    - ``patch`` (64, 16): ``(ph, pw)``, value rows × time columns per token. ``ph = h`` is the
      "strip" layout (every token a pure time slice); ``pw = 16`` keeps 16 samples per patch
      on the 512 + 720 task, as the blog (the official 2× canvas uses pw = 32).
      ``ph`` must divide ``bins`` and ``pw`` must divide ``W``.
    - ``max_scal`` (3.5): ``MS``, normalised values are clipped to ``[−MS, MS]`` (paper value
      recalled as ≈ 3.5, unverified).
    - ``blur_kernel`` (15): odd ``k`` of the ``k × k`` Gaussian blur with OpenCV's sigma-0 rule,
      ``σ = 0.3 · ((k − 1)/2 − 1) + 0.8`` = 2.6 px, close to the official 2.5 samples
      (31 × 31, σ = 5 px on a 2× canvas).
    - ``blur_scale`` (None → ``k``): the factor the blurred input is multiplied by (official ×31).
    - ``mu_norm`` (None): ``p`` of the signed root-mean-power location; None = the plain mean
      (the official value, if any, lives in ``checkpoint['args']``).
    - ``std_factor`` (1.0): ``σ`` multiplier (the older dataset path used 1.2).
    - ``std_eps`` (1e-7): added to the history's standard deviation, as the release does.
    - ``decode`` ("argmax"): the default decoding, ``"argmax"`` (current release) or
      ``"expectation"`` (V1 / paper).
    - ``future_fill`` ("blank"): what the model input's future columns hold: ``"blank"`` (zeros,
      the release) or ``"seasonal average"`` (the one-hot of the history's seasonal average, a
      draft for the model to correct; :func:`future_draft`).
    """

    history_len: int = 512
    future_len: int = 720
    bins: int = 64
    patch: tuple[int, int] = (64, 16)
    max_scal: float = 3.5
    blur_kernel: int = 15
    blur_scale: float | None = None
    mu_norm: float | None = None
    std_factor: float = 1.0
    std_eps: float = 1e-7
    decode: str = "argmax"
    future_fill: str = "blank"

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("history_len", checks.positive_int("history_len", self.history_len))
        put("future_len", checks.positive_int("future_len", self.future_len))
        put("bins", checks.integer("bins", self.bins, minimum=2))
        patch = self.patch
        if (
            isinstance(patch, (str, bytes))
            or not hasattr(patch, "__len__")
            or len(patch) != 2
            or any(isinstance(p, bool) or not isinstance(p, Integral) or p < 1 for p in patch)
        ):
            raise bad_argument(InvalidInputError, "patch", "two positive integers (ph, pw)", patch)
        ph, pw = int(patch[0]), int(patch[1])
        width = self.history_len + self.future_len
        if self.bins % ph:
            raise bad_argument(InvalidInputError, "patch", f"a patch height ph dividing bins = {self.bins}", (ph, pw))
        if width % pw:
            raise bad_argument(
                InvalidInputError, "patch", f"a patch width pw dividing the canvas width W = history_len + future_len = {width}", (ph, pw)
            )
        put("patch", (ph, pw))
        put("max_scal", checks.positive("max_scal", self.max_scal))
        put("blur_kernel", checks.odd_positive_int("blur_kernel", self.blur_kernel))
        if self.blur_scale is not None:
            put("blur_scale", checks.positive("blur_scale", self.blur_scale))
        if self.mu_norm is not None:
            put("mu_norm", checks.positive("mu_norm", self.mu_norm))
        put("std_factor", checks.positive("std_factor", self.std_factor))
        put("std_eps", checks.positive("std_eps", self.std_eps))
        if self.decode not in DECODINGS:
            raise bad_argument(InvalidInputError, "decode", f"one of {DECODINGS}", self.decode)
        if self.future_fill not in FUTURE_FILLS:
            raise bad_argument(InvalidInputError, "future_fill", f"one of {FUTURE_FILLS}", self.future_fill)

    # derived sizes
    @property
    def width(self) -> int:
        """Canvas width ``W = history_len + future_len`` (time columns)."""
        return self.history_len + self.future_len

    @property
    def grid_h(self) -> int:
        """Token rows ``h / ph``."""
        return self.bins // self.patch[0]

    @property
    def grid_w(self) -> int:
        """Token columns ``W / pw``."""
        return self.width // self.patch[1]

    @property
    def n_tokens(self) -> int:
        """Patch tokens ``N = grid_h · grid_w`` (CLS not counted)."""
        return self.grid_h * self.grid_w

    @property
    def bin_width(self) -> float:
        """``r = 2 · MS / (h − 1)``, one bin in normalised units (σ of the history)."""
        return 2.0 * self.max_scal / (self.bins - 1)

    @property
    def blur_sigma(self) -> float:
        """OpenCV's sigma for ``sigma = 0``: ``0.3 · ((k − 1)/2 − 1) + 0.8`` (fixed kernels for k ≤ 9)."""
        return 0.3 * ((self.blur_kernel - 1) * 0.5 - 1.0) + 0.8

    @property
    def blur_gain(self) -> float:
        """The factor the blurred input is multiplied by: ``blur_scale``, or ``k`` when None."""
        return float(self.blur_kernel) if self.blur_scale is None else float(self.blur_scale)

    @classmethod
    def from_args(cls, args: Any) -> MappingConfig:
        """The mapping of an official checkpoint's ``args`` (an ``argparse.Namespace`` or a dict).

        Reads ``h``, ``maxScal``, ``size`` (``[history, ·, future]``), ``patch_size`` and the
        optional ``expandData`` (columns ×) and ``muNorm``. The blur is the current release's
        hard-coded 31 × 31 × 31 (``args.ks`` is used only by the dataset paths).
        """

        def get(name: str, default: Any = ...) -> Any:
            if isinstance(args, Mapping):
                value = args.get(name, default)
            else:
                value = getattr(args, name, default)
            if value is ...:
                raise bad_argument(InvalidInputError, "args", f"checkpoint args with a field {name!r}", args)
            return value

        size = get("size")
        if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 3:
            raise bad_argument(InvalidInputError, "args", "args.size of three integers [history, label, future]", size)
        expand = get("expandData", 1)
        expand = checks.positive_int("args.expandData", expand)
        history = checks.positive_int("args.size[0]", size[0]) * expand
        future = checks.positive_int("args.size[2]", size[2]) * expand
        patch = get("patch_size")
        if isinstance(patch, Integral) and not isinstance(patch, bool):
            patch = (patch, patch)
        return cls(
            history_len=history,
            future_len=future,
            bins=get("h"),
            patch=patch,
            max_scal=get("maxScal"),
            blur_kernel=31,
            blur_scale=31.0,
            mu_norm=get("muNorm", None),
        )


DEFAULT = MappingConfig()

PRESETS: dict[str, MappingConfig] = {
    # 1× canvas 1232 × 64, one token row of (64, 16): 77 tokens, 16 samples per patch on 512 + 720.
    "strip": DEFAULT,
    # the same canvas with (16, 16) patches: 4 × 77 = 308 tokens, exercises height-averaging.
    "grid": MappingConfig(patch=(16, 16)),
    # the official 2× canvas 2464 × 128 (h = 128 and MS = 3.5 unverified), patch (4, 32), blur 31.
    "official": MappingConfig(history_len=1024, future_len=1440, bins=128, patch=(4, 32), blur_kernel=31),
}


# -- geometry ----------------------------------------------------------------------------------
def history_columns(input_len: int, horizon: int, config: MappingConfig | None = None) -> int:
    """``n = int(T / (T + H) · W)``, the canvas columns the history is resampled onto.

    Computed in floating point as the release does (so for the rare ``T · W / (T + H)`` that is
    an exact integer it can come out one column lower than integer division would).
    """
    config = _config(config)
    input_len = checks.positive_int("input_len", input_len)
    horizon = checks.positive_int("horizon", horizon)
    return int(input_len / (input_len + horizon) * config.width)


def samples_per_column(input_len: int, horizon: int, config: MappingConfig | None = None) -> float:
    """``(T + H) / W`` series samples per canvas column (the inverse of the time stretch)."""
    config = _config(config)
    input_len = checks.positive_int("input_len", input_len)
    horizon = checks.positive_int("horizon", horizon)
    return (input_len + horizon) / config.width


def samples_per_patch(input_len: int, horizon: int, config: MappingConfig | None = None) -> float:
    """``pw · (T + H) / W`` series samples per patch column: 16 for 512 + 720 on the default
    (pw = 16, W = 1232) and on the official 2× canvas (pw = 32, W = 2464); 10.6 for 96 + 720 there.

    Depends on ``T + H``: never assume a constant.
    """
    config = _config(config)
    return config.patch[1] * samples_per_column(input_len, horizon, config)


def resample(values: Any, length: int) -> np.ndarray:
    """Linear interpolation of ``values`` (``n ≥ 2`` samples) onto ``length`` points with the end
    points aligned: output ``j`` is ``values`` at position ``j · (n − 1)/(length − 1)``."""
    x = _series("values", values, min_len=2)
    length = checks.positive_int("length", length)
    if length == len(x):
        return x.copy()
    return np.interp(np.linspace(0.0, len(x) - 1.0, length), np.arange(len(x), dtype=np.float64), x)


def crop_lookback(history: Any, horizon: int, ratio: float | None = None) -> np.ndarray:
    """The history ``ViTimePrediction(lookbackRatio=ratio)`` feeds on: its last
    ``min(T, int(H · ratio))`` samples; ``None`` keeps all of it (the blog; the release's default is 1)."""
    x = _series("history", history)
    horizon = checks.positive_int("horizon", horizon)
    if ratio is None:
        return x.copy()
    ratio = checks.positive("ratio", ratio)
    keep = min(len(x), int(horizon * ratio))
    if keep < 2:
        raise bad_argument(InvalidInputError, "ratio", f"a ratio keeping at least 2 samples (int(H · ratio) with H = {horizon})", ratio)
    return x[-keep:].copy()


# -- series -> image ---------------------------------------------------------------------------
def normalisation(history: Any, config: MappingConfig | None = None) -> tuple[float, float]:
    """``(μ, σ)`` of the (resampled) history: ``μ = mean(x)``, or with ``mu_norm = p``
    ``m = mean(sign(x) · x^p) + 1e-7``, ``μ = sign(m) · √|m|``; ``σ = (std(x) + std_eps) · std_factor``
    (population std). Only history values enter, never the future."""
    config = _config(config)
    x = _series("history", history)
    if config.mu_norm is None:
        mu = float(np.mean(x))
    else:
        with np.errstate(invalid="ignore"):
            m = float(np.mean(np.sign(x) * x**config.mu_norm)) + 1e-7
        if not math.isfinite(m):
            raise bad_argument(
                InvalidInputError, "mu_norm", "a power defined for the history's negative values (an integer)", config.mu_norm
            )
        mu = math.copysign(math.sqrt(abs(m)), m)
    sigma = (float(np.std(x)) + config.std_eps) * config.std_factor
    return mu, sigma


def to_bins(z: Any, config: MappingConfig | None = None) -> np.ndarray:
    """Value rows of normalised values: ``clip(floor((clip(z, ±MS) + MS) / r), 0, h − 1)`` (int64)."""
    config = _config(config)
    arr = checks.array("z", z)
    ms = config.max_scal
    idx = np.floor((np.clip(arr, -ms, ms) + ms) / config.bin_width).astype(np.int64)
    return np.clip(idx, 0, config.bins - 1)


def one_hot(z: Any, config: MappingConfig | None = None) -> np.ndarray:
    """One lit row per value: shape ``z.shape + (h,)``, float64, 1 at ``to_bins(z)``."""
    config = _config(config)
    idx = to_bins(z, config)
    out = np.zeros(idx.shape + (config.bins,), dtype=np.float64)
    np.put_along_axis(out, idx[..., None], 1.0, axis=-1)
    return out


def future_draft(history: Any, columns: int, config: MappingConfig | None = None) -> np.ndarray | None:
    """The draft the input's ``columns`` future columns hold, in the units of the canvas ``history``
    (the resampled history, ``n`` columns): None for ``future_fill = "blank"``; for ``"seasonal
    average"``, :func:`~attnbook.vitime.seasonal.seasonal_average` of the history (period from its
    ACF), or its mean when ``n < 8`` columns are too few to estimate a period."""
    config = _config(config)
    if config.future_fill == "blank":
        return None
    x = _series("history", history, min_len=2)
    columns = checks.positive_int("columns", columns)
    if len(x) < 8:
        return np.full(columns, float(np.mean(x)))
    return seasonal_average(x, columns)


def gaussian_kernel(ksize: int) -> np.ndarray:
    """OpenCV's ``getGaussianKernel(ksize, 0)``: the fixed kernels for k ≤ 9, otherwise
    ``exp(−i² / 2σ²)``, ``i = −(k−1)/2 … (k−1)/2``, ``σ = 0.3 · ((k − 1)/2 − 1) + 0.8``, normalised to sum 1."""
    ksize = checks.odd_positive_int("ksize", ksize)
    if ksize in _SMALL_GAUSSIAN:
        return np.array(_SMALL_GAUSSIAN[ksize], dtype=np.float64)
    sigma = 0.3 * ((ksize - 1) * 0.5 - 1.0) + 0.8
    i = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2
    kernel = np.exp(-(i**2) / (2.0 * sigma**2))
    return kernel / kernel.sum()


def blur(image: Any, config: MappingConfig | None = None) -> np.ndarray:
    """``blur_gain · G ∗ image`` over the last two axes ``(W, h)`` (time and value together):
    the separable ``blur_kernel``² Gaussian of ``gaussian_kernel``, reflect-101 borders
    (``… c b | a b c … | … b c``), as ``cv2.GaussianBlur(img, (k, k), 0) · k``."""
    config = _config(config)
    arr = checks.array("image", image, finite=False)
    if arr.ndim < 2:
        raise bad_argument(InvalidInputError, "image", "an array (..., W, h)", f"shape {arr.shape}", raw=True)
    checks.array("image", arr)
    kernel = gaussian_kernel(config.blur_kernel)
    out = ndimage.correlate1d(arr, kernel, axis=-1, mode="mirror")
    out = ndimage.correlate1d(out, kernel, axis=-2, mode="mirror")
    return out * config.blur_gain


@dataclass(frozen=True, eq=False)
class Mapped:
    """A series on the canvas: the model ``image`` and everything needed to map back.

    ``image`` (W, h): the blurred input (history one-hot, future zeroed or holding the draft of
    ``config.future_fill``, blurred, × blur_gain);
    ``target`` (W, h): the unblurred one-hot of the whole canvas (future = history mean, or the
    true future when one was given); ``canvas`` (W,) the canvas values in series units, ``z``
    (W,) normalised (unclipped), ``rows`` (W,) their value rows; ``mu``, ``sigma`` the history
    statistics; ``history_columns`` = n, the first future column.
    """

    config: MappingConfig
    input_len: int
    horizon: int
    history_columns: int
    mu: float
    sigma: float
    canvas: np.ndarray
    z: np.ndarray
    rows: np.ndarray
    target: np.ndarray
    image: np.ndarray

    @property
    def samples_per_column(self) -> float:
        """``(T + H) / W``."""
        return (self.input_len + self.horizon) / self.config.width

    @property
    def samples_per_patch(self) -> float:
        """``pw · (T + H) / W``."""
        return self.config.patch[1] * self.samples_per_column


def series_to_image(history: Any, horizon: int, config: MappingConfig | None = None, *, future: Any | None = None) -> Mapped:
    """Map a history of ``T`` samples and a horizon ``H`` onto the canvas (steps 1–4 above).

    ``future`` (``H`` samples, optional) is the true continuation: it fills the future columns
    of ``target`` (resampled as ``image_to_series`` reads them back: column ``c`` ↦ sample
    ``c · (T + H − 1)/(W − 1)``) instead of the history mean. It changes nothing else — the
    statistics, ``image`` and the history columns come from the history alone.
    """
    config = _config(config)
    x = _series("history", history, min_len=2)
    horizon = checks.positive_int("horizon", horizon)
    n = history_columns(len(x), horizon, config)
    if n < 2:
        raise bad_argument(
            InvalidInputError,
            "history",
            f"enough values to cover at least 2 of the W = {config.width} canvas columns (int(T/(T+H)·W) >= 2)",
            f"{len(x)} values with horizon {horizon} ({n} column{'s' if n != 1 else ''})",
            raw=True,
        )
    width = config.width
    hist = resample(x, n)
    mu, sigma = normalisation(hist, config)
    canvas = np.empty(width, dtype=np.float64)
    canvas[:n] = hist
    if future is None:
        canvas[n:] = np.mean(hist)
    else:
        y = _series("future", future)
        if len(y) != horizon:
            raise bad_argument(InvalidInputError, "future", f"horizon = {horizon} values", f"{len(y)} values", raw=True)
        full = np.concatenate([x, y])
        total = len(full)
        positions = np.arange(n, width, dtype=np.float64) * ((total - 1) / (width - 1))
        canvas[n:] = np.interp(positions, np.arange(total, dtype=np.float64), full)
    z = (canvas - mu) / sigma
    rows = to_bins(z, config)
    target = np.zeros((width, config.bins), dtype=np.float64)
    target[np.arange(width), rows] = 1.0
    inp = target.copy()
    inp[n:] = 0.0
    draft = future_draft(hist, width - n, config)
    if draft is not None:
        inp[n:] = one_hot((draft - mu) / sigma, config)
    return Mapped(
        config=config,
        input_len=len(x),
        horizon=horizon,
        history_columns=n,
        mu=mu,
        sigma=sigma,
        canvas=canvas,
        z=z,
        rows=rows,
        target=target,
        image=blur(inp, config),
    )


# -- image -> series ---------------------------------------------------------------------------
def decode(image: Any, config: MappingConfig | None = None, *, method: Decoding | None = None) -> np.ndarray:
    """Normalised values of each column of ``image`` (..., W, h) → (..., W): ``row · r − MS`` with
    ``row`` the ``argmax`` (ties: the lowest row) or the ``expectation`` ``Σ p_i · i / (Σ p_i + 1e-8)``
    (non-negative images; an all-zero column gives row 0). ``method`` None uses ``config.decode``."""
    config = _config(config)
    method = _method(method, config)
    arr = _image("image", image, config)
    if method == "argmax":
        row = np.argmax(arr, axis=-1).astype(np.float64)
    else:
        if (arr < 0).any():
            raise bad_argument(
                InvalidInputError,
                "image",
                "non-negative column weights for expectation decoding (probabilities, not logits)",
                f"minimum {float(arr.min()):.4g}",
                raw=True,
            )
        row = (arr @ np.arange(config.bins, dtype=np.float64)) / (arr.sum(axis=-1) + 1e-8)
    return row * config.bin_width - config.max_scal


def image_to_series(image: Any, mapped: Mapped, *, method: Decoding | None = None) -> np.ndarray:
    """The ``T + H`` samples an image decodes to: ``decode`` each column, ``· σ + μ`` with the
    history statistics of ``mapped``, resample the ``W`` columns linearly to ``T + H`` samples
    (end points aligned). ``[:T]`` reconstructs the history, ``[T:]`` is the forecast.

    ``image``: ``(W, h)``, ``(C, W, h)`` or ``(1, C, W, h)`` (the model's output; as in the
    release only channel 0 is decoded), numpy or torch.
    """
    if not isinstance(mapped, Mapped):
        raise bad_argument(InvalidInputError, "mapped", "the Mapped returned by series_to_image", mapped)
    config = mapped.config
    arr = checks.array("image", image, finite=False)
    shape = (config.width, config.bins)
    if arr.ndim not in (2, 3, 4) or arr.shape[-2:] != shape or (arr.ndim == 4 and arr.shape[0] != 1):
        raise bad_argument(InvalidInputError, "image", f"shape (W, h) = {shape}, (C, W, h) or (1, C, W, h)", f"shape {arr.shape}", raw=True)
    while arr.ndim > 2:
        arr = arr[0]
    z = decode(arr, config, method=method)
    return resample(z * mapped.sigma + mapped.mu, mapped.input_len + mapped.horizon)


__all__ = [
    "DECODINGS",
    "FUTURE_FILLS",
    "DEFAULT",
    "PRESETS",
    "Decoding",
    "Mapped",
    "MappingConfig",
    "blur",
    "crop_lookback",
    "decode",
    "future_draft",
    "gaussian_kernel",
    "history_columns",
    "image_to_series",
    "normalisation",
    "one_hot",
    "resample",
    "samples_per_column",
    "samples_per_patch",
    "series_to_image",
    "to_bins",
]
