"""Real-browser tests (Playwright driving the system's Chromium).

1. Every page of the built site (``_build/html``, from ``python -m attnbook build``), served on
   127.0.0.1, loads with no failed request and no request to any other address; its images
   decode, a chapter page has figures, and a page holding saved widget state renders widgets.
2. JupyterLab, started headless on 127.0.0.1 over a copy of chapter 1: run all cells, type new
   text into the explorer, press *Analyse*, and see its heatmap and statistics change.

Both need Chromium (``$ATTNBOOK_CHROMIUM`` or ``chromium`` on PATH) and the first the built site.
Without them the tests skip — unless ``ATTNBOOK_BROWSER_TESTS=require`` (CI sets it), where a
missing piece fails. Servers a test starts are stopped by their process id.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from attnbook.__main__ import READS_RESULTS
from attnbook.store import project_root

SITE = project_root() / "_build" / "html"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
REQUIRED = os.environ.get("ATTNBOOK_BROWSER_TESTS") == "require"


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


@pytest.fixture(scope="module")
def site_url():
    if not (SITE / "index.html").is_file():
        _missing("the site is not built (python -m attnbook build)")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(SITE)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/index.html", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def _pages() -> list[str]:
    if not SITE.is_dir():
        return ["index.html"]
    return sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html") if not p.relative_to(SITE).parts[0].startswith("_"))


@pytest.mark.parametrize("page_name", _pages())
def test_page_loads_offline_with_figures_and_widgets(browser, site_url, page_name):
    page = browser.new_page()
    failed, outside = [], []
    page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))

    def route(r):
        if r.request.url.startswith(site_url + "/") or r.request.url.startswith("data:"):
            r.continue_()
        else:  # nothing leaves the machine: count it and refuse it
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(f"{site_url}/{page_name}", wait_until="networkidle")
    page.wait_for_timeout(500)
    assert outside == [], f"{page_name} asked outside addresses: {outside[:5]}"
    assert [f for f in failed if not any(o in f for o in outside)] == [], f"{page_name}: failed requests {failed[:5]}"
    images = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src').slice(0, 60), i.complete && i.naturalWidth > 0])")
    assert all(ok for _, ok in images), f"{page_name}: images that did not decode: {[s for s, ok in images if not ok][:5]}"
    stem = Path(page_name).stem
    if stem[:2].isdigit() and stem not in READS_RESULTS:  # an experiment chapter (not the findings table)
        assert images, f"{page_name}: a chapter without figures"
    views = page.evaluate("document.querySelectorAll('script[type=\"application/vnd.jupyter.widget-view+json\"]').length")
    if views:
        page.wait_for_function("document.querySelectorAll('.jupyter-widgets').length > 0", timeout=20_000)
    page.close()


def test_jupyterlab_runs_chapter_1_and_the_explorer_reacts(browser, tmp_path):
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
