"""Chapter 3's experiment: its settings, and the pretrained mini ViTime they describe.

The harmonic experiments themselves are a few forwards of the pretrained model
(:mod:`attnbook.vitime.harmonics`); what takes time is pretraining on fresh RealTS batches
(:func:`attnbook.vitime.realts.pretrain`, cached), which :func:`pretrained` runs from a profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import checks
from ..profiles import CPU_FP32, Hardware, Training
from ..train import History
from .mapping import MappingConfig
from .model import PRESETS, ViTime, ViTimeConfig, preset
from .realts import LossConfig, RealTSConfig, pretrain

__all__ = ["Settings", "PROFILES", "pretrained"]


@dataclass(frozen=True)
class Settings:
    """Chapter 3's profile: the model ``preset``, its pretraining (``train``; ``val_size`` fixed
    validation series; ``emd``, the weight λ of the loss's earth mover's term) and ``hardware``."""

    preset: str
    train: Training
    val_size: int
    emd: float
    hardware: Hardware

    def __post_init__(self) -> None:
        checks.choice("preset", self.preset, PRESETS)
        checks.positive_int("val_size", self.val_size)
        checks.non_negative("emd", self.emd)

    @property
    def model(self) -> ViTimeConfig:
        """The :class:`~attnbook.vitime.model.ViTimeConfig` of ``preset``."""
        return preset(self.preset)

    @property
    def mapping(self) -> MappingConfig:
        """The canvas mapping the model's preset was built for."""
        return MappingConfig(**self.model.mapping_kwargs())


PROFILES: dict[str, Settings] = {
    # full: the strip preset pretrained 7.5× longer. The grid4 preset (16 × 16 patches) at the same 3,000 steps
    # formed no period head at all (best contrast 1.11, the chapter's claims ask >= 2): see the README's profile table.
    "quick": Settings(preset="strip", train=Training(steps=400, batch_size=32, lr=2e-3, weight_decay=0.05, warmup=10, eval_every=50),
                      val_size=64, emd=0.2, hardware=CPU_FP32),
    "full": Settings(preset="strip", train=Training(steps=3000, batch_size=32, lr=1e-3, weight_decay=0.05, warmup=50, eval_every=100),
                     val_size=128, emd=0.2, hardware=Hardware("auto", "auto")),
}


def pretrained(settings: Settings, data: RealTSConfig, seed: int = 0, *, progress: bool = True) -> tuple[ViTime, History, bool]:
    """The mini ViTime of ``settings`` pretrained on ``data`` (cached): ``(model, history, loaded)``."""
    return pretrain(settings.model, settings.mapping, data, settings.train.config(seed), loss=LossConfig(emd=settings.emd),
                    val_size=settings.val_size, progress=progress, **settings.hardware.where())
