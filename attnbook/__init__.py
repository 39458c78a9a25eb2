"""attnbook."""

from . import provenance as _provenance  # noqa: F401  (starts the clock of every summary's run record)
