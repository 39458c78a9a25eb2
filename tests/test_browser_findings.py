"""The findings and compatibility pages in a real browser (the built site, ``_build/html``): every
finding's verdict badge inside the viewport with no sideways page scroll at desktop (1366 × 900) and
phone (390 × 844) width, the chapter and verdict filters hide and show rows and the count follows,
and the compatibility grid causes no sideways page scroll at 390 px. Skips like ``test_browser``
(console errors of the whole page are ``test_browser``'s; here the filters' script must have run)."""

from __future__ import annotations

import pytest

from test_browser import SITE, _offline, browser, site_url  # noqa: F401

FINDINGS = "book/06-findings.html"
COMPAT = "book/07-capture-compatibility.html"
SIZES = [(1366, 900), (390, 844)]


def _open(browser, site_url, name: str, width: int, height: int):  # noqa: F811
    if not (SITE / name).is_file():
        pytest.skip(f"{name} is not in the built site")
    page = browser.new_page(viewport={"width": width, "height": height})
    outside, _, _ = _offline(page, site_url)
    page.goto(f"{site_url}/{name}", wait_until="networkidle")
    return page, outside


def _inner_scroll(page, selector: str) -> tuple[int, int]:
    """(the table's scroll width, the width of the block that holds it): the table must not scroll inside its output either."""
    return tuple(page.evaluate(f"""() => {{ const t = document.querySelector('{selector}');
        return [t.scrollWidth, t.closest('.attnbook-fv').clientWidth]; }}"""))


def _overflow(page) -> dict:
    return page.evaluate("""() => ({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
        body: document.body.scrollWidth})""")


@pytest.mark.parametrize("width, height", SIZES, ids=[f"{w}px" for w, _ in SIZES])
def test_every_verdict_is_visible_without_sideways_scroll(browser, site_url, width, height):  # noqa: F811
    page, outside = _open(browser, site_url, FINDINGS, width, height)
    root = page.locator("#attnbook-findings")
    assert root.count() == 1, "no findings table on the page"
    rows = root.locator("tbody tr")
    n = rows.count()
    assert n > 0
    boxes = page.evaluate("""() => Array.from(document.querySelectorAll('#attnbook-findings tbody tr')).map(r => {
        const b = r.querySelector('td:first-child .ab-badge'); const box = b && b.getBoundingClientRect();
        return box ? [box.left, box.right, box.width, b.textContent.trim()] : null; })""")
    assert all(b is not None for b in boxes), "a row without a badge in its first cell"
    inner = page.evaluate("window.innerWidth")
    for left, right, w, text in boxes:
        assert w > 0 and left >= 0 and right <= inner, f"{text!r} badge at {left:.0f}–{right:.0f} px, viewport {inner} px"
    o = _overflow(page)
    assert o["scroll"] <= o["client"], f"the page scrolls sideways at {width} px: {o}"
    table, holder = _inner_scroll(page, "#attnbook-findings table")
    assert table <= holder, f"the findings table is {table} px in a {holder} px block at {width} px"
    if width < 720:  # cards: the header row is hidden, each row a block
        assert page.evaluate("getComputedStyle(document.querySelector('#attnbook-findings tbody tr')).display") == "block"
    assert outside == [], outside
    page.close()


def test_the_filters_hide_and_show_rows_and_the_count_follows(browser, site_url):  # noqa: F811
    page, _ = _open(browser, site_url, FINDINGS, 390, 844)
    root = page.locator("#attnbook-findings")
    box = root.locator(".ab-filters")
    assert root.get_attribute("data-ready") == "" and box.is_visible(), "the filters' script did not run (they stay hidden)"
    rows = root.locator("tbody tr")
    total = rows.count()
    count = root.locator(".ab-count")
    assert count.inner_text() == f"{total} of {total} findings shown"

    def shown() -> int:
        return page.evaluate("() => Array.from(document.querySelectorAll('#attnbook-findings tbody tr')).filter(r => !r.hidden && r.offsetHeight > 0).length")

    chapters = page.evaluate("() => Array.from(document.querySelectorAll('#attnbook-findings-chapter option')).map(o => o.value).filter(v => v)")
    verdicts = page.evaluate("() => Array.from(document.querySelectorAll('#attnbook-findings-verdict option')).map(o => o.value).filter(v => v)")
    assert len(chapters) >= 2 and len(verdicts) >= 2
    chapter_of = page.evaluate("() => Array.from(document.querySelectorAll('#attnbook-findings tbody tr')).map(r => r.dataset.chapter)")
    verdict_of = page.evaluate("() => Array.from(document.querySelectorAll('#attnbook-findings tbody tr')).map(r => r.dataset.verdict)")
    page.select_option("#attnbook-findings-chapter", chapters[0])
    want = chapter_of.count(chapters[0])
    assert 0 < shown() == want < total and count.inner_text() == f"{want} of {total} findings shown"
    page.select_option("#attnbook-findings-chapter", "")
    assert shown() == total
    page.focus("#attnbook-findings-verdict")  # by keyboard: the select takes focus and arrow keys change it
    page.keyboard.press("ArrowDown")
    picked = page.eval_on_selector("#attnbook-findings-verdict", "s => s.value")
    assert picked == verdicts[0]
    want = verdict_of.count(picked)
    assert 0 < shown() == want and count.inner_text() == f"{want} of {total} findings shown"
    both = sum(c == chapters[0] and v == picked for c, v in zip(chapter_of, verdict_of))
    page.select_option("#attnbook-findings-chapter", chapters[0])
    assert shown() == both
    box.locator("button.ab-reset").click()
    assert shown() == total and count.inner_text() == f"{total} of {total} findings shown"
    page.close()


def test_the_compatibility_grid_fits_a_phone(browser, site_url):  # noqa: F811
    page, outside = _open(browser, site_url, COMPAT, 390, 844)
    grid = page.locator(".attnbook-compat table.ab-grid")
    assert grid.count() == 1, "no tick grid on the compatibility page"
    o = _overflow(page)
    assert o["scroll"] <= o["client"], f"the compatibility page scrolls sideways at 390 px: {o}"
    table, holder = _inner_scroll(page, ".attnbook-compat table.ab-grid")
    assert table <= holder, f"the grid is {table} px in a {holder} px block"
    right = page.evaluate("document.querySelector('.attnbook-compat table.ab-grid').getBoundingClientRect().right")
    assert right <= page.evaluate("window.innerWidth")
    ticks = page.evaluate("() => Array.from(document.querySelectorAll('.attnbook-compat .ab-tick[title]')).map(t => t.textContent)")
    assert ticks and set(ticks) <= {"✓", "✗", "–"}
    assert outside == [], outside
    page.close()
