"""Every page of the built site, as a reader at phone and desktop width, in light and dark mode, sees it.

- no console error and no request to another host, at 390 px (light) and, on the chapters and the
  findings page, at 1366 px (dark);
- no horizontal page scroll at 390 px;
- no progress-bar text (bars belong to JupyterLab, not to the page);
- in dark mode, the attention view's text and controls meet WCAG AA contrast (4.5:1), computed from
  the rendered colours (:func:`test_browser.contrast_failures`);
- in the HTML: no script, style, font or image address to another host; every script and stylesheet
  included once; MathJax only on a page with maths; every image has alt text that is words, not a hash.

Uses the site, browser and request routing of ``test_browser`` (skips as it does without Chromium or a
built site, unless ``ATTNBOOK_BROWSER_TESTS=require``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_browser import SITE, _offline, _pages, browser, site_url  # noqa: F401 - fixtures used by name

from attnbook.__main__ import READS_RESULTS
from attnbook.chapters import EXPERIMENTS

#: a tqdm bar as text: "99%|█████████▉| 71/72" or "99% ██████████ 71/72" or a run of block characters
PROGRESS = re.compile(r"\d+%\s*\|?[█▏▎▍▌▋▊▉ ]{3,}\|?\s*\d+/\d+|[█▉]{4,}")
#: XML namespace names are identifiers, never fetched
NAMESPACE = re.compile(r"https?://www\.w3\.org/[0-9]{4}/(?:svg|xlink|xhtml|XML)[^\"' ]*")
OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.I)
RESOURCE = re.compile(r"<(script|link|img|source|iframe)\b[^>]*>", re.I)
CHAPTERS = {c.notebook.stem for c in EXPERIMENTS}


def _console(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    return errors


@pytest.mark.parametrize("page_name", _pages())
def test_page_reads_at_phone_width_and_in_dark_mode_without_errors(browser, site_url, page_name):  # noqa: F811
    phone = browser.new_page(viewport={"width": 390, "height": 844}, color_scheme="light")
    errors, (outside, _, _) = _console(phone), _offline(phone, site_url)
    phone.goto(f"{site_url}/{page_name}", wait_until="networkidle")
    phone.wait_for_timeout(300)
    assert errors == [], f"{page_name} at 390 px: console errors {errors[:3]}"
    assert outside == [], f"{page_name}: requests to other hosts {outside[:3]}"
    width = phone.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"{page_name} scrolls sideways at 390 px: {width[0]} px of content in {width[1]} px"
    text = phone.evaluate("document.body.innerText")
    bars = PROGRESS.findall(text)
    assert bars == [], f"{page_name} shows progress-bar text: {bars[:3]}"
    phone.close()
    if Path(page_name).stem not in CHAPTERS | set(READS_RESULTS):
        return  # the theme's own pages: dark mode is the theme's; the chapters and the findings page carry our drawings and tables
    desk = browser.new_page(viewport={"width": 1366, "height": 900}, color_scheme="dark")
    errors, (outside, _, _) = _console(desk), _offline(desk, site_url)
    desk.goto(f"{site_url}/{page_name}", wait_until="networkidle")
    desk.wait_for_timeout(300)
    assert desk.evaluate("document.documentElement.dataset.theme") == "dark", "the site did not follow the reader's dark mode"
    assert errors == [] and outside == [], f"{page_name} in dark mode: errors {errors[:3]}, outside {outside[:3]}"
    if Path(page_name).stem in CHAPTERS:
        from test_browser import contrast_failures

        views = desk.locator(".attnbook-view")
        assert views.count() >= 1
        for k in range(views.count()):
            root = views.nth(k)
            root.scroll_into_view_if_needed()
            desk.wait_for_function("el => el.getAttribute('data-drawn') || el.getAttribute('data-error')", arg=root.element_handle(), timeout=30_000)
            assert root.get_attribute("data-error") is None
            failures = contrast_failures(desk, f".attnbook-view >> nth={k}")
            assert failures == [], f"{page_name}: dark-mode contrast below 4.5:1: {failures[:5]}"
    desk.close()


def _html_pages() -> list[Path]:
    return [SITE / p for p in _pages()] if SITE.is_dir() else []


@pytest.mark.parametrize("path", _html_pages(), ids=lambda p: p.relative_to(SITE).as_posix())
def test_page_html_loads_each_local_asset_once_and_mathjax_only_with_maths(path):
    page = path.read_text(encoding="utf-8")
    resources = [m.group(0) for m in RESOURCE.finditer(page)]
    outside = [r for r in resources if OUTSIDE.search(r)]
    assert outside == [], f"{path.name}: resources from another host {outside[:3]}"
    inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", page, re.S)
    addresses = [u for body in inline for u in re.findall(r"https?://[^\s\"'<>)]+", NAMESPACE.sub("", body))]
    assert addresses == [], f"{path.name}: an inline script names another host {addresses[:3]}"
    styles = re.findall(r"url\(\s*['\"]?((?:https?:)?//[^)'\"]+)", " ".join(re.findall(r"<style[^>]*>(.*?)</style>", page, re.S)))
    assert styles == [], f"{path.name}: a style loads from another host {styles[:3]}"
    files = [re.sub(r"[?#].*$", "", m) for m in re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", page)]
    files += [re.sub(r"[?#].*$", "", m) for m in re.findall(r"<link[^>]*rel=\"stylesheet\"[^>]*href=\"([^\"]+)\"", page)]
    twice = sorted({f for f in files if files.count(f) > 1})
    assert twice == [], f"{path.name}: included more than once: {twice}"
    marked = re.findall(r'<(?:style|script) class="(attnbook-[a-z0-9-]+-(?:style|script))">', page)
    assert len(marked) == len(set(marked)), f"{path.name}: a shared inline script or style more than once: {sorted(marked)}"
    mathjax = any("mathjax" in f.lower() for f in files)
    maths = 'class="math' in page
    assert mathjax == maths, f"{path.name}: MathJax {'loaded without maths' if mathjax else 'missing for its maths'}"


@pytest.mark.parametrize("path", [p for p in _html_pages() if p.stem in CHAPTERS], ids=lambda p: p.stem)
def test_chapter_images_have_alt_text_in_words(path):
    page = path.read_text(encoding="utf-8")
    alts = re.findall(r"<img\b[^>]*?\balt=\"([^\"]*)\"", page)
    images = re.findall(r"<img\b", page)
    assert images and len(alts) == len(images), f"{path.name}: {len(images) - len(alts)} images without alt text"
    bad = [a for a in alts if len(a.split()) < 3 or re.fullmatch(r"[0-9a-f]{16,}", a)]
    assert bad == [], f"{path.name}: alt text that is not a description: {bad[:3]}"


@pytest.mark.parametrize("page_name", [p for p in _pages() if Path(p).stem in CHAPTERS], ids=lambda p: Path(p).stem)
def test_chapter_figures_text_reads_at_desktop_width(browser, site_url, page_name):  # noqa: F811
    """Every figure of a chapter, as the page shows it at 1366 px: its smallest text (the height the
    PNG records, :data:`attnbook.plots.legibility.PNG_TEXT_KEY`, times displayed ÷ natural width) is at
    least :data:`~attnbook.plots.legibility.MIN_TEXT_PX` CSS px, the floor of the attention views' labels,
    and no text runs past the figure's edge (:data:`~attnbook.plots.legibility.PNG_CUT_KEY`)."""
    import json

    from PIL import Image

    from attnbook.plots.legibility import COLUMN_PX, MIN_TEXT_PX, PNG_CUT_KEY, PNG_TEXT_KEY

    desk = browser.new_page(viewport={"width": 1366, "height": 900}, color_scheme="light")
    _offline(desk, site_url)
    desk.goto(f"{site_url}/{page_name}", wait_until="networkidle")
    desk.wait_for_function("[...document.querySelectorAll('article img')].every(i => i.complete && i.naturalWidth > 0)")
    shown = desk.evaluate("""[...document.querySelectorAll('article img')].map(i => ({
        src: new URL(i.src).pathname, alt: i.alt, natural: i.naturalWidth, width: i.getBoundingClientRect().width}))""")
    desk.close()
    assert shown, f"{page_name}: no figure"
    small, unmeasured, cut = [], [], []
    for img in shown:
        with Image.open(SITE / img["src"].lstrip("/")) as png:  # the site is served from its root
            entries = getattr(png, "text", {})
        measured = entries.get(PNG_TEXT_KEY)
        cut += [f"{text!r} in {img['alt'][:40]}" for text in json.loads(entries.get(PNG_CUT_KEY, "[]"))]
        if measured is None:
            unmeasured.append(img["alt"][:60])
            continue
        width = img["width"] or min(img["natural"], COLUMN_PX)  # an image in a closed box: as wide as it would show
        px = float(measured) * width / img["natural"]
        if px < MIN_TEXT_PX:
            small.append(f"{px:.1f} px ({img['natural']} px shown at {img['width']:.0f}): {img['alt'][:60]}")
    assert unmeasured == [], f"{page_name}: figures that record no text size (not drawn as a BookFigure): {unmeasured}"
    assert small == [], f"{page_name}: figure text below {MIN_TEXT_PX} px on the page: {small}"
    assert cut == [], f"{page_name}: figure text cut at the figure's edge: {cut}"
