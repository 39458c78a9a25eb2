"""Real-browser tests (Playwright driving the system's Chromium).

1. Every page of the built site (``_build/html``, from ``python -m attnbook build``), served on
   127.0.0.1, loads with no failed request and no request to any other address; its images
   decode, a chapter page has figures, and no page carries an ipywidget (it would need a kernel).
2. Every chapter page holds attention views (:mod:`attnbook.views`) that work without a kernel:
   changing the layer, the head, every facet, the sample, the gamma and the view changes the
   drawing; hovering a cell shows the weight the page embeds (checked against
   :func:`attnbook.views.read`); the SVG and PNG exports are real images; kernel-only controls are
   disabled and marked; no other form control in a cell output is live (copy buttons aside). Every
   page, with everything it loads, stays under :data:`PAGE_BUDGET`. The same view checks run on a
   standalone page of a small view.
3. JupyterLab, started headless on 127.0.0.1 over a copy of chapter 1: run all cells, see the
   attention view render in a notebook output and react, type new text into the explorer, press
   *Analyse*, and see its heatmap and statistics change.

All need Chromium (``$ATTNBOOK_CHROMIUM`` or ``chromium`` on PATH), the site tests the built site.
Without them the tests skip — unless ``ATTNBOOK_BROWSER_TESTS=require`` (CI sets it), where a
missing piece fails. Servers a test starts are stopped by their process id.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import torch

from attnbook.__main__ import READS_RESULTS
from attnbook.chapters import EXPERIMENTS
from attnbook.maps import AttentionMaps
from attnbook.store import project_root
from attnbook.views import AttentionView, LiveControl, read

SITE = project_root() / "_build" / "html"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
REQUIRED = os.environ.get("ATTNBOOK_BROWSER_TESTS") == "require"
PAGE_BUDGET = 5_000_000  # bytes: a chapter page with everything it loads (DESIGN.md's budget)


def _missing(why: str):
    if REQUIRED:
        pytest.fail(f"{why} (ATTNBOOK_BROWSER_TESTS=require)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    exe = os.environ.get("ATTNBOOK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        _missing("no Chromium (apt-get install chromium, or set ATTNBOOK_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop a server we started (its whole process group) by its process id."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_http(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"no answer from {url}")


@contextlib.contextmanager
def _serve(directory: Path, first: str):
    """An http.server on 127.0.0.1 over ``directory``; yields its base URL once ``first`` answers."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(directory)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/{first}", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def site_url():
    if not (SITE / "index.html").is_file():
        _missing("the site is not built (python -m attnbook build)")
    with _serve(SITE, "index.html") as url:
        yield url


def _offline(page, base: str) -> tuple[list[str], list[str], list[str]]:
    """Refuse (and count) every request that is not to ``base``; return (outside, failed, requested)."""
    failed, outside, requested = [], [], []
    page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))

    def route(r):
        url = r.request.url
        if url.startswith(base + "/") or url.startswith("data:"):
            requested.append(url)
            r.continue_()
        else:  # nothing leaves the machine: count it and refuse it
            outside.append(url)
            r.abort()

    page.route("**/*", route)
    return outside, failed, requested


def _pages() -> list[str]:
    if not SITE.is_dir():
        return ["index.html"]
    return sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html") if not p.relative_to(SITE).parts[0].startswith("_"))


@pytest.mark.parametrize("page_name", _pages())
def test_page_loads_offline_within_budget_with_figures_and_no_widgets(browser, site_url, page_name):
    page = browser.new_page()
    outside, failed, requested = _offline(page, site_url)
    page.goto(f"{site_url}/{page_name}", wait_until="networkidle")
    page.wait_for_timeout(500)
    files = {SITE / urllib.parse.unquote(urllib.parse.urlsplit(u).path).lstrip("/") for u in requested if not u.startswith("data:")}
    size = sum(f.stat().st_size for f in files if f.is_file())
    assert size <= PAGE_BUDGET, f"{page_name}: {size / 1e6:.2f} MB with what it loads (budget {PAGE_BUDGET / 1e6:.0f} MB)"
    assert outside == [], f"{page_name} asked outside addresses: {outside[:5]}"
    assert [f for f in failed if not any(o in f for o in outside)] == [], f"{page_name}: failed requests {failed[:5]}"
    images = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src').slice(0, 60), i.complete && i.naturalWidth > 0])")
    assert all(ok for _, ok in images), f"{page_name}: images that did not decode: {[s for s, ok in images if not ok][:5]}"
    stem = Path(page_name).stem
    if stem[:2].isdigit() and stem not in READS_RESULTS:  # an experiment chapter (not the findings table)
        assert images, f"{page_name}: a chapter without figures"
    widgets = page.evaluate("document.querySelectorAll('script[type^=\"application/vnd.jupyter.widget\"]').length")
    assert widgets == 0, f"{page_name}: an ipywidget in the page (it needs a kernel; the chapter's views do its job)"
    page.close()


# -- the attention views -----------------------------------------------------------------------
def _drawing(root) -> str:
    return root.locator(".attnbook-drawing").inner_html()


def _redrawn(page, root, action) -> str:
    """Do ``action``, wait for the view to draw again, return the new drawing."""
    n = int(root.get_attribute("data-drawn") or 0)
    action()
    page.wait_for_function("([el, n]) => +el.getAttribute('data-drawn') > n", arg=[root.element_handle(), n], timeout=20_000)
    return _drawing(root)


def _shown_weight(text: str) -> float:
    match = re.search(r"weight (\S+)$", text)
    assert match, f"the readout shows no weight: {text!r}"
    return float(match.group(1))


def _exercise_view(page, root, data: dict, tmp_path: Path) -> list[str]:
    """Every check of one mounted view (module docstring, part 2); returns what it exercised."""
    done = []
    root.scroll_into_view_if_needed()
    page.wait_for_function("el => el.getAttribute('data-drawn') || el.getAttribute('data-error')", arg=root.element_handle(), timeout=30_000)
    assert root.get_attribute("data-error") is None, root.get_attribute("data-error")
    unlabelled = root.evaluate("""r => Array.from(r.querySelectorAll('select, input, textarea, button')).filter(c =>
        !(c.id && r.querySelector('label[for="' + c.id + '"]')) && !c.getAttribute('aria-label') && !c.textContent.trim()).length""")
    assert unlabelled == 0, "a control without a label"
    live = root.locator(".attnbook-live")
    if data["live"]:  # kernel-only controls: one line naming them, no dead control
        assert live.count() == 1 and live.inner_text().startswith("Live in JupyterLab: "), live.all_inner_texts()
        assert all(c["label"] in live.inner_text() for c in data["live"]) and data["live_hint"].rstrip(".") in live.inner_text()
        assert live.locator("input, textarea, select, button").count() == 0, "a form control in the live line"
    else:
        assert live.count() == 0
    single = root.evaluate("""r => Array.from(r.querySelectorAll('select')).filter(s => s.options.length < 2 && s.offsetParent !== null).length""")
    assert single == 0, "a visible select with a single option"
    start = data["initial"]["facets"]
    entry = next(e for e in data["entries"] if e["key"] == start)
    layer, head = min(1, len(entry["layers"]) - 1), min(1, entry["heads"] - 1)
    before = _drawing(root)
    options = root.locator("select.attnbook-layer option")
    assert [options.nth(k).inner_text() for k in range(options.count())] == [f"L{k}" for k in range(len(entry["layers"]))]
    assert [options.nth(k).get_attribute("title") for k in range(options.count())] == entry["layers"]
    if layer:
        before, after = before, _redrawn(page, root, lambda: root.locator("select.attnbook-layer").select_option(str(layer)))
        assert after != before, "changing the layer did not change the drawing"
        before = after
        done.append("layer")
    if head:
        after = _redrawn(page, root, lambda: root.locator("input.attnbook-head").fill(str(head)))
        assert after != before, "changing the head did not change the drawing"
        done.append("head")
    # hover: the weight shown is the one embedded (decoded independently in Python)
    cells = root.locator("image.attnbook-cells")
    box, nq, nk = cells.bounding_box(), int(cells.get_attribute("data-queries")), int(cells.get_attribute("data-keys"))
    w, allowed = entry["weights"][0][layer, head], entry["allowed"][0]
    for i, j in {(nq - 1, 0), (nq // 2, min(nk - 1, nq // 2)), tuple(int(x) for x in divmod(int((w * allowed).argmax()), nk))}:
        if not allowed[i, j]:
            continue
        # hover scrolls the cell into the viewport first (a tall map's last row can lie below it)
        cells.hover(position={"x": (j + 0.5) * box["width"] / nk, "y": (i + 0.5) * box["height"] / nq}, force=True)
        readout = root.locator(".attnbook-value")
        assert readout.get_attribute("data-query") == str(i) and readout.get_attribute("data-key") == str(j)
        shown = _shown_weight(readout.inner_text())
        assert abs(shown - float(w[i, j])) <= 5e-4 + 0.05 * float(w[i, j]), (i, j, shown, float(w[i, j]))
    done.append("hover")
    for facet in range(len(data["facets"])):
        select = root.locator("select.attnbook-facet").nth(facet)
        if len(data["facets"][facet]["values"]) > 1:
            now, other = _drawing(root), str(1 if start[facet] == 0 else 0)
            assert _redrawn(page, root, lambda: select.select_option(other)) != now, f"facet {data['facets'][facet]['name']} did nothing"
            _redrawn(page, root, lambda: select.select_option(str(start[facet])))
            done.append(data["facets"][facet]["name"])
    if root.locator("select.attnbook-sample").is_visible():
        now = _drawing(root)
        assert _redrawn(page, root, lambda: root.locator("select.attnbook-sample").select_option("1")) != now, "the sample did nothing"
        done.append("sample")
    now = _drawing(root)
    assert _redrawn(page, root, lambda: root.locator("input.attnbook-gamma").fill("0.5")) != now, "the gamma did nothing"
    with page.expect_download() as svg_download:
        root.get_by_role("button", name="export SVG").click()
    exported = Path(svg_download.value.path()).read_text()
    assert exported.lstrip().startswith("<?xml") and "<svg" in exported and "<image" in exported, exported[:200]
    assert "var(" not in exported and "class=" not in exported, "the export leans on the page's styles"
    assert re.search(r'<svg[^>]*>\s*<rect x="0" y="0" width="[\d.]+" height="[\d.]+" fill="rgb\(\d+, \d+, \d+\)"', exported), \
        "the export has no solid background first"
    with page.expect_download() as png_download:
        root.get_by_role("button", name="export PNG").click()
    png = Path(png_download.value.path()).read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 2_000
    done.append("export")
    now = _drawing(root)
    after = _redrawn(page, root, lambda: root.get_by_role("button", name="head view").click())
    assert after != now and "<line" in after, "the head view drew no lines"
    root.locator(".attnbook-token[data-side='q']").last.hover()
    assert "attends to" in root.locator(".attnbook-value").inner_text()
    after = _redrawn(page, root, lambda: root.get_by_role("button", name="model view").click())
    thumbs = root.locator("image.attnbook-thumb")
    assert thumbs.count() == len(entry["layers"]) * entry["heads"]
    _redrawn(page, root, lambda: thumbs.first.click())
    assert root.get_by_role("button", name="heatmap").get_attribute("aria-pressed") == "true"
    assert root.locator("select.attnbook-layer").input_value() == "0" and root.locator("input.attnbook-head").input_value() == "0"
    done.append("views")
    return done


def test_a_standalone_view_works_offline(browser, tmp_path):
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(2, 7, 7, dtype=torch.bool).tril()
    view = AttentionView("standalone", facets=("snapshot",), live=[LiveControl("Your own text", "text"), LiveControl("Analyse")])
    for step in ("0", "100"):
        logits = torch.randn(2, 2, 3, 7, 7, generator=g).masked_fill(~mask[None, :, None], float("-inf")) * 3
        toks = [[f"{c}{b}" for c in "abcdefg"] for b in range(2)]
        view.add(AttentionMaps(torch.softmax(logits, -1), query_labels=toks, key_labels=toks, mask=mask), snapshot=step)
    view.save(tmp_path / "view.html")
    with _serve(tmp_path, "view.html") as url:
        page = browser.new_page(accept_downloads=True)
        outside, failed, _ = _offline(page, url)
        page.goto(f"{url}/view.html", wait_until="networkidle")
        done = _exercise_view(page, page.locator(".attnbook-view").first, read((tmp_path / "view.html").read_text())[0], tmp_path)
        assert outside == [] and [f for f in failed if "favicon" not in f] == []
        page.close()
    assert done == ["layer", "head", "hover", "snapshot", "sample", "export", "views"]


def _chapter_pages() -> list[str]:
    """The experiment chapters' pages (each holds the attention views of what it recorded)."""
    stems = {c.notebook.stem for c in EXPERIMENTS}
    return [p for p in _pages() if Path(p).stem in stems] or [f"book/{c.notebook.stem}.html" for c in EXPERIMENTS]


@pytest.mark.parametrize("page_name", _chapter_pages())
def test_chapter_views_work_offline(browser, site_url, page_name, tmp_path):
    page = browser.new_page(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    outside, _, _ = _offline(page, site_url)
    page.goto(f"{site_url}/{page_name}", wait_until="networkidle")
    roots = page.locator(".attnbook-view")
    assert roots.count() >= 1, f"{page_name}: no attention view"
    payloads = read((SITE / page_name).read_text(encoding="utf-8"))
    assert len(payloads) == roots.count()
    for k in range(roots.count()):
        done = _exercise_view(page, roots.nth(k), payloads[k], tmp_path)
        assert {"layer", "head", "hover", "export", "views"} <= set(done) or payloads[k]["entries"][0]["heads"] == 1, done
    dead = page.evaluate("""() => Array.from(document.querySelectorAll('.cell_output select, .cell_output input, .cell_output textarea, .cell_output button'))
        .filter(c => !c.closest('.attnbook-view') && !c.disabled && !c.classList.contains('copybtn')).length""")
    assert dead == 0, f"{page_name}: a form control outside the views (and the copy buttons) that does nothing without a kernel"
    assert outside == [], f"{page_name} asked outside addresses: {outside[:5]}"
    page.close()


def test_jupyterlab_runs_chapter_1_the_view_and_the_explorer_react(browser, tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    shutil.copy2(project_root() / "book" / "01-reading-attention.ipynb", book)  # a copy: autosave never touches the repo
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={book}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.allow_root=True"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", proc)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _drive_lab(page, f"http://127.0.0.1:{port}/lab/tree/01-reading-attention.ipynb?token={token}", tmp_path)
        page.close()
    finally:
        _stop(proc)
        log.close()
    assert proc.returncode is not None


def _drive_lab(page, url: str, tmp_path: Path) -> None:
    """Run all, type, analyse, compare; on failure a screenshot lands in ``tmp_path``."""
    try:
        _lab_steps(page, url)
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"))
        raise


def _lab_steps(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')", timeout=120_000)
    page.wait_for_timeout(2000)  # the kernel connects
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """() => { const p = Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')).map(x => x.textContent.trim());
                   return p.length > 0 && p.every(t => /^\\[\\d+\\]:$/.test(t)); }""", timeout=420_000, polling=1000)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] .ansi-red-intense-fg, .jp-OutputArea-output pre:has-text('Traceback')")
    assert errors.count() == 0, "a cell raised"
    view = page.locator(".jp-OutputArea-output .attnbook-view").first  # the page's view, rendered as a notebook output
    view.wait_for(timeout=60_000)
    page.wait_for_function("el => el.getAttribute('data-drawn')", arg=view.element_handle(), timeout=60_000)
    before = _drawing(view)
    assert _redrawn(page, view, lambda: view.locator("input.attnbook-head").fill("3")) != before, "the view in JupyterLab did not react"
    box = page.locator("xpath=//textarea/ancestor::div[contains(@class,'widget-vbox')][1]").last
    box.locator(".widget-output img").first.wait_for(timeout=60_000)
    state = "b => Array.from(b.querySelectorAll('.widget-output img')).map(i => i.src).join('|') + '#' + b.innerText"
    before = box.evaluate(state)
    box.locator("textarea").fill("The spy who came in from the cold left a note under the door.")
    box.get_by_role("button", name="Analyse").click()
    page.wait_for_function(f"([before]) => {{ const b = Array.from(document.querySelectorAll('textarea')).pop().closest('.widget-vbox');"
                           f" const now = ({state})(b); return now.split('#')[0] !== before.split('#')[0]; }}", arg=[before], timeout=120_000)
    after = box.evaluate(state)
    assert after.split("#")[0] != before.split("#")[0], "the heatmap did not change"
    assert after.split("#")[1] != before.split("#")[1], "the statistics did not change"


# -- the view's layout, theme, head view and keyboard (issue 32), on a standalone page -----------------
LAYERS = tuple(f"encoder.layer.{k}.attention.self" for k in range(3))
#: pydata-sphinx-theme's colour variables (light and dark), to mimic the site around a view
PYDATA_VARS = {
    "light": {"--pst-color-text-base": "#222832", "--pst-color-text-muted": "#48566b", "--pst-color-border": "#d1d5da",
              "--pst-color-surface": "#f3f4f5", "--pst-color-on-surface": "#222832", "--pst-color-primary": "#0a7d91",
              "--pst-color-background": "#ffffff"},
    "dark": {"--pst-color-text-base": "#ced6dd", "--pst-color-text-muted": "#9ca4af", "--pst-color-border": "#48566b",
             "--pst-color-surface": "#29313d", "--pst-color-on-surface": "#f3f4f5", "--pst-color-primary": "#3fb1c5",
             "--pst-color-background": "#14181e"},
}

_CONTRAST_JS = """root => {
  function rgba(c) { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; }
  function lum(c) { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); }
  function over(top, under) { const a = top[3]; return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat([1]); }
  function background(node) { // first non-transparent background up the tree, composited over what is below
    const layers = [];
    for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  }
  function opacity(node) { let o = 1; for (let n = node; n && n.nodeType === 1; n = n.parentElement) o *= +getComputedStyle(n).opacity; return o; }
  function visible(node) { const r = node.getBoundingClientRect(), cs = getComputedStyle(node);
    return r.width > 0 && r.height > 0 && cs.visibility !== "hidden" && cs.display !== "none" && !node.closest("[hidden]"); }
  const seen = new Set(), out = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const node = t.parentElement;
    if (!t.textContent.trim() || !node || seen.has(node) || node.closest("script, style, title, option")) continue;
    seen.add(node);
  }
  root.querySelectorAll("button, select, input[type=text], textarea").forEach(c => seen.add(c));
  seen.forEach(node => {
    if (!visible(node)) return;
    const svg = node instanceof SVGElement, cs = getComputedStyle(node);
    let fg = rgba(svg ? cs.fill : cs.color);
    if (!fg) return; // no paint (fill none or a gradient)
    const bg = background(node);
    fg = over([fg[0], fg[1], fg[2], fg[3] * opacity(node)], bg);
    const a = lum(fg), b = lum(bg), ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) out.push(`${node.tagName.toLowerCase()}.${(node.getAttribute("class") || "").split(" ")[0]} `
      + `"${(node.textContent || node.value || "").trim().slice(0, 30)}": ${ratio.toFixed(2)}:1 (${fg.slice(0, 3)} on ${bg.slice(0, 3)})`);
  });
  return out;
}"""


def contrast_failures(page, root_selector: str) -> list[str]:
    """Every visible text (HTML colour, SVG fill) and control under each ``root_selector`` element whose
    WCAG contrast against its effective background (first non-transparent background up the tree,
    the page's included, white below all) is under 4.5:1; one line each, empty when all read."""
    out = []
    for handle in page.query_selector_all(root_selector):
        out += handle.evaluate(_CONTRAST_JS)
    return out


def _relative_luminance(rgb: tuple[int, int, int]) -> float:
    def f(v):
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2])


def test_contrast_helper_agrees_with_hand_computed_ratios(browser):
    """#767676 on white is 4.54:1 (passes), #777777 4.48:1 (fails); SVG text is judged by its fill."""
    assert round((1.05) / (_relative_luminance((0x76,) * 3) + 0.05), 2) == 4.54
    page = browser.new_page()
    page.set_content('<div id="r" style="background:#fff"><p style="color:#767676">ok</p><p style="color:#777777">low</p>'
                     '<div style="background:#000"><span style="color:#444">dark low</span></div>'
                     '<svg><text x="5" y="15" fill="#bbbbbb">svg low</text></svg><p hidden style="color:#eee">hidden</p></div>')
    fails = contrast_failures(page, "#r")
    assert [f.split('"')[1] for f in fails] == ["low", "dark low", "svg low"], fails
    assert "4.48:1" in fails[0]
    page.close()


@pytest.fixture(scope="module")
def view_page(tmp_path_factory):
    """A standalone page of one view: 3 layers (full module names), 4 heads of different sharpness, 2 samples, 18 tokens."""
    g = torch.Generator().manual_seed(1)
    T = 18
    logits = torch.randn(3, 2, 4, T, T, generator=g)  # no mask: a causal first row would give every head a max of 1
    logits = logits * torch.tensor([0.5, 2.0, 4.0, 8.0]).view(1, 1, 4, 1, 1)  # heads of different sharpness
    toks = [[f"w{b}_{i}" for i in range(T)] for b in range(2)]
    view = AttentionView("issue 32 view", live=[LiveControl("Your own text", "text"), LiveControl("Analyse")])
    view.add(AttentionMaps(torch.softmax(logits, -1), layer_names=LAYERS, query_labels=toks, key_labels=toks))
    folder = tmp_path_factory.mktemp("view")
    path = view.save(folder / "view.html")
    with _serve(folder, "view.html") as url:
        yield f"{url}/view.html", read(path.read_text())[0]


def _open(browser, url: str, **context):
    ctx = browser.new_context(accept_downloads=True, **context)
    page = ctx.new_page()
    outside, _, _ = _offline(page, url.rsplit("/", 1)[0])
    page.goto(url, wait_until="networkidle")
    root = page.locator(".attnbook-view").first
    page.wait_for_function("el => el.getAttribute('data-drawn') || el.getAttribute('data-error')", arg=root.element_handle(), timeout=30_000)
    assert root.get_attribute("data-error") is None and outside == []
    return ctx, page, root


def _lines(root, head: int | None = None) -> int:
    return root.locator("svg line[data-head]" if head is None else f"svg line[data-head='{head}']").count()


def test_view_head_view_overlays_every_head_and_chips_toggle_them(browser, view_page):
    url, data = view_page
    ctx, page, root = _open(browser, url)
    _redrawn(page, root, lambda: root.get_by_role("button", name="head view").click())
    chips = root.locator("button.attnbook-chip")
    assert chips.count() == 4 and all(chips.nth(h).get_attribute("aria-pressed") == "true" for h in range(4))
    counts = [_lines(root, h) for h in range(4)]
    assert all(c > 0 for c in counts), counts  # all heads overlaid
    colours = {root.locator(f"svg g[data-head='{h}']").get_attribute("stroke") for h in range(4)}
    assert len(colours) == 4, "heads share a colour"
    _redrawn(page, root, lambda: chips.nth(1).click())
    assert _lines(root, 1) == 0 and [_lines(root, h) for h in (0, 2, 3)] == [counts[0], counts[2], counts[3]]
    assert chips.nth(1).get_attribute("aria-pressed") == "false"
    n = int(root.get_attribute("data-drawn"))
    chips.nth(2).dblclick()
    page.wait_for_function("([el, n]) => +el.getAttribute('data-drawn') >= n + 3", arg=[root.element_handle(), n], timeout=20_000)
    assert [_lines(root, h) for h in range(4)] == [0, 0, counts[2], 0], "double-click did not keep only head 2"
    assert [chips.nth(h).get_attribute("aria-pressed") for h in range(4)] == ["false", "false", "true", "false"]
    assert "heads 2 shown" in root.locator(".attnbook-mode-caption").inner_text()
    # hover a query token: only its lines stay, the readout names the top weights of each shown head
    root.locator(".attnbook-token[data-side='q']").nth(5).hover()
    shown = root.locator("svg line[data-head]:not([visibility='hidden'])")
    assert shown.count() > 0 and all(shown.nth(k).get_attribute("data-q") == "5" for k in range(shown.count()))
    w = data["entries"][0]["weights"][0][0, 2, 5]
    top = float(w.max())
    text = root.locator(".attnbook-value").inner_text()
    assert "attends to" in text and "head 2:" in text and "head 0:" not in text
    assert abs(float(re.search(r"head 2: “[^”]+” (\S+?)[,;]", text + ";").group(1)) - top) <= 1e-3
    assert root.locator(".attnbook-legend").count() == 1 and "∝ weight" in root.locator(".attnbook-legend").inner_html()
    ctx.close()


def test_view_scale_toggle_rescales_heatmap_head_and_model_views(browser, view_page):
    url, data = view_page
    w = data["entries"][0]["weights"][0]  # (layers, heads, q, k) of sample 0
    maxima = [float(w[0, h].max()) for h in range(4)]
    head = min(range(4), key=maxima.__getitem__)  # its own max is under the layer's: the two scales differ
    assert maxima[head] < max(maxima) - 0.05
    ctx, page, root = _open(browser, url)
    _redrawn(page, root, lambda: root.locator("input.attnbook-head").fill(str(head)))
    ticks = lambda: [t for t in root.locator(".attnbook-colourbar text").all_text_contents() if t != "weight"]  # noqa: E731
    assert abs(float(ticks()[-1]) - maxima[head]) <= 2e-3, ticks()
    for view in ("heatmap", "head view", "model view"):
        if view != "heatmap":
            _redrawn(page, root, lambda: root.get_by_role("button", name=view).click())
        per_head = _drawing(root)
        after = _redrawn(page, root, lambda: root.get_by_role("button", name="shared").click())
        assert after != per_head, f"the shared scale did not change the {view}"
        if view == "heatmap":
            assert abs(float(ticks()[-1]) - max(maxima)) <= 2e-3, ticks()  # the colour bar tops at the layer's max
        assert "shared" in root.locator(".attnbook-mode-caption").inner_text()
        _redrawn(page, root, lambda: root.get_by_role("button", name="per head").click())
        assert "own largest weight" in root.locator(".attnbook-mode-caption").inner_text()
    ctx.close()


def test_view_fits_a_phone_without_page_scroll(browser, view_page):
    url, _ = view_page
    ctx, page, root = _open(browser, url, viewport={"width": 390, "height": 844})
    for view in ("heatmap", "head view", "model view"):
        if view != "heatmap":
            _redrawn(page, root, lambda: root.get_by_role("button", name=view).click())
        page.wait_for_timeout(300)
        scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert scroll <= client, f"{view}: the page scrolls sideways ({scroll} > {client})"
        svg = root.locator(".attnbook-drawing svg").bounding_box()
        assert svg["x"] >= 0 and svg["x"] + svg["width"] <= client + 0.5, f"{view}: the drawing is cut ({svg})"
        sizes = root.locator(".attnbook-drawing svg text").evaluate_all("ts => ts.map(t => t.getBoundingClientRect().height)")
        fonts = root.locator(".attnbook-drawing svg").evaluate(
            "s => Array.from(s.querySelectorAll('text')).map(t => +t.getAttribute('font-size') * s.getBoundingClientRect().width / s.viewBox.baseVal.width)")
        assert min(fonts) >= 10 - 1e-6 and sizes, f"{view}: labels under 10 px as rendered ({min(fonts):.1f})"
        if view == "heatmap":
            bar = root.locator(".attnbook-colourbar").bounding_box()
            assert bar["x"] >= 0 and bar["x"] + bar["width"] <= client, f"the colour bar is outside the viewport ({bar})"
    ctx.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_view_text_and_controls_meet_aa_contrast(browser, view_page, theme):
    url, _ = view_page
    ctx, page, root = _open(browser, url, color_scheme=theme)  # a standalone page follows the reader's system
    for view in ("heatmap", "head view", "model view"):
        if view != "heatmap":
            _redrawn(page, root, lambda: root.get_by_role("button", name=view).click())
        assert contrast_failures(page, ".attnbook-view") == [], f"{theme}, {view}"
    fg = root.evaluate("r => getComputedStyle(r).color")
    rgb = tuple(int(x) for x in re.findall(r"\d+", fg)[:3])
    assert (_relative_luminance(rgb) > 0.5) == (theme == "dark"), f"{theme}: the view's text is {fg}"
    ctx.close()
    # inside the site: pydata's variables on <html data-theme>, whatever the system says
    ctx, page, root = _open(browser, url, color_scheme="light" if theme == "dark" else "dark")
    css = ";".join(f"{k}:{v}" for k, v in PYDATA_VARS[theme].items())
    page.evaluate("""([theme, css]) => { document.documentElement.setAttribute('data-theme', theme);
        const s = document.createElement('style');
        s.textContent = `html[data-theme="${theme}"]{${css}} body{background:var(--pst-color-background)!important;color:var(--pst-color-text-base)!important}`;
        document.head.appendChild(s); }""", [theme, css])
    for view in ("heatmap", "head view", "model view"):
        if view != "heatmap":
            _redrawn(page, root, lambda: root.get_by_role("button", name=view).click())
        assert contrast_failures(page, ".attnbook-view") == [], f"site {theme}, {view}"
    base = PYDATA_VARS[theme]["--pst-color-text-base"]
    assert root.evaluate("r => getComputedStyle(r).color") == "rgb({}, {}, {})".format(*bytes.fromhex(base[1:])), "not the theme's text colour"
    with page.expect_download() as svg_download:
        root.get_by_role("button", name="export SVG").click()
    exported = Path(svg_download.value.path()).read_text()
    page_bg = "rgb({}, {}, {})".format(*bytes.fromhex(PYDATA_VARS[theme]["--pst-color-background"][1:]))
    assert f'fill="{page_bg}"' in exported.split("<text")[0], "the export's background is not the theme's"
    ctx.close()


def test_view_keyboard_reaches_chips_tokens_and_thumbs(browser, view_page):
    url, _ = view_page
    ctx, page, root = _open(browser, url)
    _redrawn(page, root, lambda: root.get_by_role("button", name="head view").click())
    root.get_by_role("button", name="head view").focus()
    for _ in range(30):  # Tab onwards until a head chip has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('attnbook-chip')"):
            break
    else:
        pytest.fail("Tab never reached a head chip")
    head = int(page.evaluate("document.activeElement.getAttribute('data-head')"))
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none", "no visible focus ring"
    n = int(root.get_attribute("data-drawn"))
    page.keyboard.press("Space")
    page.wait_for_function("([el, n]) => +el.getAttribute('data-drawn') > n", arg=[root.element_handle(), n], timeout=20_000)
    assert _lines(root, head) == 0 and root.locator(f"button.attnbook-chip[data-head='{head}']").get_attribute("aria-pressed") == "false"
    token = root.locator(".attnbook-token[data-side='k']").nth(2)
    assert token.get_attribute("tabindex") == "0"
    token.focus()  # focus acts like hover
    assert "is attended by" in root.locator(".attnbook-value").inner_text()
    _redrawn(page, root, lambda: root.get_by_role("button", name="model view").click())
    thumb = root.locator("image.attnbook-thumb[data-layer='2'][data-head='3']")
    thumb.focus()
    assert "L2" in root.locator(".attnbook-value").inner_text()
    _redrawn(page, root, lambda: page.keyboard.press("Enter"))
    assert root.get_by_role("button", name="heatmap").get_attribute("aria-pressed") == "true"
    assert root.locator("select.attnbook-layer").input_value() == "2" and root.locator("input.attnbook-head").input_value() == "3"
    ctx.close()


def test_view_layers_read_l0_with_the_full_name_on_hover(browser, view_page):
    url, _ = view_page
    ctx, page, root = _open(browser, url, viewport={"width": 1366, "height": 900})
    options = root.locator("select.attnbook-layer option")
    assert options.all_inner_texts() == ["L0", "L1", "L2"]
    assert [options.nth(k).get_attribute("title") for k in range(3)] == list(LAYERS)
    title = root.locator(".attnbook-drawing svg > text").first
    assert title.evaluate("t => t.firstChild.textContent").startswith("L0 · head 0")
    assert title.locator("title").text_content().startswith(LAYERS[0])
    assert LAYERS[0] in root.locator(".attnbook-mode-caption").inner_text()
    _redrawn(page, root, lambda: root.get_by_role("button", name="model view").click())
    labels = root.locator("svg text.attnbook-layer-label")
    assert [labels.nth(k).evaluate("t => t.firstChild.textContent") for k in range(3)] == ["L0", "L1", "L2"]
    assert [labels.nth(k).locator("title").text_content() for k in range(3)] == list(LAYERS)
    assert "encoder.layer.0.att…" not in _drawing(root).replace("<title>", "\n").split("\n")[0]
    box, svg = root.locator(".attnbook-drawing").bounding_box(), root.locator(".attnbook-drawing svg").bounding_box()
    assert svg["x"] + svg["width"] <= box["x"] + box["width"] + 0.5, "the model view spills out of its box"
    ctx.close()
