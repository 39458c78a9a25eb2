"""Chapter pages of the built site: size against the 5 MB budget, and what their views can do.

Loads every chapter page of ``_build/html`` (``python -m attnbook build`` first) in the system's
Chromium, served on 127.0.0.1 with every other address refused, and prints per page: the bytes of
the page and everything it loaded (and their share of the budget), the views' embedded payload, and
per view its facets, layers × heads, samples, and the time from load until every view had drawn.
Last line: ``largest_page_share_of_budget: <ratio>``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from playwright.sync_api import sync_playwright

from attnbook.chapters import EXPERIMENTS
from attnbook.store import project_root
from attnbook.views import read

SITE = project_root() / "_build" / "html"
BUDGET = 5_000_000
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _router(base: str, requested: list[str]):
    """A route handler that lets requests to ``base`` through (noting them) and refuses the rest."""
    def route(r) -> None:
        if r.request.url.startswith(base + "/"):
            requested.append(r.request.url)
            r.continue_()
        else:
            r.abort()
    return route


def main() -> None:
    if not (SITE / "index.html").is_file():
        sys.exit("build the site first: python -m attnbook build")
    stems = {c.notebook.stem for c in EXPERIMENTS}
    pages = sorted(p for p in SITE.rglob("*.html") if p.stem in stems)
    server = subprocess.Popen([sys.executable, "-m", "http.server", "8799", "--bind", "127.0.0.1", "--directory", str(SITE)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base, largest = "http://127.0.0.1:8799", 0.0
    try:
        time.sleep(1.0)
        exe = os.environ.get("ATTNBOOK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, args=ARGS)
            for path in pages:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                requested: list[str] = []
                page.route("**/*", _router(base, requested))
                start = time.perf_counter()
                page.goto(f"{base}/{path.relative_to(SITE).as_posix()}", wait_until="networkidle")
                page.wait_for_function("Array.from(document.querySelectorAll('.attnbook-view')).every(v => v.getAttribute('data-drawn'))")
                drawn = time.perf_counter() - start
                files = {SITE / urllib.parse.unquote(urllib.parse.urlsplit(u).path).lstrip("/") for u in requested}
                size = sum(f.stat().st_size for f in files if f.is_file())
                views = read(path.read_text(encoding="utf-8"))
                payload = sum(len(e["data"]) for v in views for e in v["entries"])
                largest = max(largest, size / BUDGET)
                print(f"{path.stem}: {size / 1e6:.2f} MB with what it loads ({size / BUDGET:.2f} of the budget); "
                      f"HTML {path.stat().st_size / 1e6:.2f} MB, view data {payload / 1e6:.2f} MB; views drawn {drawn:.1f} s after load")
                for v in views:
                    e = v["entries"][0]
                    facets = " × ".join(f"{f['name']} ({len(f['values'])})" for f in v["facets"]) or "none"
                    print(f"  view '{v['title']}': facets {facets}; {len(e['layers'])} layers × {e['heads']} heads; "
                          f"{len(e['samples'])} samples; live-only controls: {', '.join(c['label'] for c in v['live']) or 'none'}")
                page.close()
            browser.close()
    finally:
        server.terminate()
    print(f"largest_page_share_of_budget: {largest:.2f}")


if __name__ == "__main__":
    main()
