"""The self-contained attention view for notebooks and the static site (no network, no CDN).

:class:`AttentionView` (in :mod:`attnbook.views.view`) renders maps under facets as one HTML block
that JupyterLab and the built book show alike; :mod:`attnbook.views.encode` packs the weights.
"""

from .encode import ENCODINGS
from .view import MAX_BYTES, VIEWS, AttentionView, LiveControl, read, strip_assets

__all__ = ["AttentionView", "LiveControl", "ENCODINGS", "MAX_BYTES", "VIEWS", "read", "strip_assets"]
