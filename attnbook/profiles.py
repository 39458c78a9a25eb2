"""``quick`` and ``full`` settings for every chapter.

``quick`` runs each chapter on a 2-core CPU within the budgets of DESIGN.md; ``full`` is the
seed-scale run for a GPU or a patient CPU. Both are real experiments, ``quick`` is smaller.
"""

from __future__ import annotations

from copy import deepcopy

from .errors import UnknownProfileError, bad_argument

PROFILE_NAMES = ("quick", "full")

PROFILES: dict[str, dict[str, dict]] = {
    "reading-attention": {
        # sentences: how many of the chapter's corpus sentences the statistics run over
        "quick": {"sentences": 24},
        "full": {"sentences": 64},
    },
}


def get(chapter: str, profile: str) -> dict:
    """A copy of the settings of ``chapter`` under ``profile``."""
    if chapter not in PROFILES:
        raise bad_argument(UnknownProfileError, "chapter", f"one of {sorted(PROFILES)}", chapter)
    if profile not in PROFILES[chapter]:
        raise bad_argument(UnknownProfileError, "profile", f"one of {list(PROFILE_NAMES)}", profile)
    return deepcopy(PROFILES[chapter][profile])
