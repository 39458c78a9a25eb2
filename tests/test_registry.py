"""The one registry of findings: well-formed, one chapter's declarations per slug, on the API page."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnbook import registry
from attnbook.chapters import EXPERIMENTS
from attnbook.claims import FindingSpec
from attnbook.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[1]


def test_every_declaration_is_well_formed_and_belongs_to_a_chapter():
    slugs = {c.slug for c in EXPERIMENTS}
    assert registry.FINDINGS and all(isinstance(s, FindingSpec) for s in registry.FINDINGS)
    assert {s.chapter for s in registry.FINDINGS} <= slugs
    assert len({s.key for s in registry.FINDINGS}) == len(registry.FINDINGS)
    assert all(s.declared in ("pre-registered", "post hoc") for s in registry.FINDINGS)
    frame = registry.frame()
    assert list(frame.index) == [s.key for s in registry.FINDINGS] and frame.loc["vitime-harmonics/period-head", "rule"] == \
        "period contrast >= 2.000 and peak error (samples) <= 8.000"


def test_lookups_and_their_errors():
    assert registry.spec("vitime-harmonics/period-head").chapter == "vitime-harmonics"
    quick = registry.chapter_specs("vitime-harmonics", "quick")
    assert "vitime-harmonics/forecasts-held-out-series-full" not in {s.key for s in quick}
    assert len(registry.chapter_specs("vitime-harmonics")) == len(quick) + 1
    with pytest.raises(InvalidInputError, match="key"):
        registry.spec("vitime-harmonics/nope")
    with pytest.raises(InvalidInputError, match="chapter"):
        registry.chapter_specs("nope")


def test_the_registry_is_on_the_api_page():
    assert "attnbook.registry" in (ROOT / "book" / "api.md").read_text()
