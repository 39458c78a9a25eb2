"""Chapter 4 (ad-compression): Algorithm Distillation — environments, source algorithms, the AD transformer, context compression.

Rooms (as in every chapter folder): ``model``, ``experiment``, ``analysis``, ``figures``, ``explorer``;
here also ``envs`` and ``sources`` (the data) and ``compress``.
"""

from . import analysis, compress, envs, experiment, explorer, figures, model, sources  # noqa: F401 - the rooms, as submodules

__all__ = ["analysis", "compress", "envs", "experiment", "explorer", "figures", "model", "sources"]
