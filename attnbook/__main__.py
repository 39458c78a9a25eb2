"""``python -m attnbook list | run [chapter …] [-p name value …] | build | clean``.

``run`` executes chapters with papermill into ``_build/executed/`` (a chapter whose executed copy
was made from the same notebook, parameters and package sources is skipped; ``--force`` runs it
anyway); ``build`` does that for every chapter and then builds the site from the executed copies
with ``jupyter-book build -W --keep-going``; ``list`` shows each chapter's state and the cache;
``clean`` removes the executed copies and the site (``--cache``: the run cache too).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import AttnbookError, InvalidInputError, MissingResourceError, bad_argument
from .store import project_root


def chapters(root: Path | None = None) -> list[Path]:
    """The chapter notebooks ``book/NN-slug.ipynb`` in order."""
    book = (root or project_root()) / "book"
    found = sorted(p for p in book.glob("[0-9][0-9]-*.ipynb"))
    if not found:
        raise bad_argument(MissingResourceError, "book", "chapter notebooks book/NN-slug.ipynb", f"none under {book.name}/", raw=True)
    return found


def resolve_chapters(names: Sequence[str], root: Path | None = None) -> list[Path]:
    """Chapters named by number (``1``, ``01``), slug (``reading-attention``) or file stem."""
    every = chapters(root)
    if not names:
        return every
    picked = []
    for name in names:
        stem = Path(name).stem
        hits = [p for p in every if stem in (p.stem, p.stem[:2], p.stem[3:]) or (stem.isdigit() and int(stem) == int(p.stem[:2]))]
        if not hits:
            raise bad_argument(InvalidInputError, "chapter", f"one of {[p.stem for p in every]}", name)
        picked.extend(h for h in hits if h not in picked)
    return picked


def typed(value: str):
    """Papermill-style typing of a ``-p`` value: int, float, bool, None, list/dict literal, else str."""
    if value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[value]
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


#: pages built from the other chapters' results (their summaries are among their inputs)
READS_RESULTS = ("06-findings",)
#: chapters that read text corpora (which corpus files can be found is among their inputs)
READS_CORPORA = ("05-charlm-evolution",)


def fingerprint(nb: Path, parameters: dict, root: Path) -> str:
    """What an executed chapter depends on, hashed: the notebook, its parameters, ``ATTNBOOK_PROFILE``,
    every source file of the package (Python, and the view's script and styles), for :data:`READS_CORPORA` the corpus files that can be found
    (so adding text8 re-runs chapter 5), the results folder (``ATTNBOOK_RESULTS`` or ``results/``: a chapter
    whose results went elsewhere runs again) and, for :data:`READS_RESULTS`, every chapter's summary in it."""
    from .data import inventory

    results = Path(os.environ.get("ATTNBOOK_RESULTS") or root / "results")  # where chapters write, the findings page reads
    h = hashlib.sha256(nb.read_bytes())
    h.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    h.update(os.environ.get("ATTNBOOK_PROFILE", "").encode())
    h.update(str(results.resolve()).encode())
    if nb.stem in READS_CORPORA:
        h.update(json.dumps(inventory()).encode())
    inputs = sorted(p for p in (root / "attnbook").rglob("*") if p.suffix in (".py", ".js", ".css"))
    if nb.stem in READS_RESULTS:
        inputs += sorted(results.glob("*/*/summary.json"))
    for path in inputs:
        h.update((path.relative_to(root) if path.is_relative_to(root) else path).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _stamp(target: Path) -> Path:
    return target.with_suffix(".fingerprint")


def up_to_date(nb: Path, parameters: dict, root: Path) -> bool:
    """Whether ``_build/executed`` holds a copy of ``nb`` executed from exactly these inputs."""
    target = root / "_build" / "executed" / nb.name
    stamp = _stamp(target)
    return target.is_file() and stamp.is_file() and stamp.read_text().strip() == fingerprint(nb, parameters, root)


def run(names: Sequence[str], parameters: dict, root: Path | None = None, force: bool = False) -> list[Path]:
    """Execute chapters with papermill into ``_build/executed``; return the executed paths.

    A chapter whose executed copy is :func:`up_to_date` is not run again unless ``force``. The first
    chapter that runs starts one Ray instance that every chapter's kernel joins
    (:func:`attnbook.runs.shared_instance`); it stops when the last one ends.
    """
    import papermill

    from .runs import shared_instance

    root = root or project_root()
    out_dir = root / "_build" / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    picked = resolve_chapters(names, root)
    with shared_instance() as ensure_ray:
        for k, nb in enumerate(picked, 1):
            target = out_dir / nb.name
            if not force and up_to_date(nb, parameters, root):
                print(f"[attnbook] [{k}/{len(picked)}] {nb.stem}: up to date", flush=True)
                done.append(target)
                continue
            ensure_ray()
            start = time.perf_counter()
            print(f"[attnbook] [{k}/{len(picked)}] running {nb.stem} {parameters or ''}", flush=True)
            _stamp(target).unlink(missing_ok=True)
            inputs = fingerprint(nb, parameters, root)  # what this run reads: an edit made while it runs leaves the copy stale
            papermill.execute_notebook(
                str(nb), str(target), parameters=parameters, cwd=str(nb.parent), progress_bar=False, kernel_name="python3"
            )
            _stamp(target).write_text(inputs + "\n")
            print(f"[attnbook] [{k}/{len(picked)}] {nb.stem}: {time.perf_counter() - start:.1f} s", flush=True)
            done.append(target)
    return done


def stage(root: Path, executed: Sequence[Path]) -> Path:
    """Copy the book sources into ``_build/src`` with the executed chapters in place of the clean ones.

    The staged ``_config.yml`` turns execution off: the chapters already ran under papermill
    (myst-nb's ``auto`` would re-run any notebook with an output-less cell). ``_static`` gets MathJax,
    the theme overrides and the site's stylesheet (:mod:`attnbook.site`), the config points the pages
    at them and adds the page-hygiene extension (:mod:`attnbook.site_hygiene`); the staged chapters'
    progress bars are dropped, their kernel-only widgets become one line saying where they are live
    (:func:`attnbook.site.freeze_widgets`), and the view's inline assets are kept once per page.
    """
    import yaml

    from .site import EXTENSIONS, dedupe_inline_assets, fetch_assets, freeze_widgets, sphinx_config, write_overrides, write_stylesheet

    src = root / "_build" / "src"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(root / "book", src / "book", ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "_build"))
    shutil.copy2(root / "_toc.yml", src / "_toc.yml")
    config = yaml.safe_load((root / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    fetch_assets(src / "_static")  # MathJax served locally: the site works offline
    write_overrides(src / "_static")
    write_stylesheet(src / "_static")
    config.setdefault("sphinx", {}).setdefault("config", {}).update(sphinx_config())
    extensions = config["sphinx"].setdefault("extra_extensions", [])
    extensions.extend(e for e in EXTENSIONS if e not in extensions)
    (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    for nb in executed:
        notebook = json.loads(nb.read_text(encoding="utf-8"))
        freeze_widgets(notebook)  # a widget needs a kernel: the page says where it is live, and shows the chapter's views
        dedupe_inline_assets(notebook)  # the views' and tables' shared script and styles once per page
        (src / "book" / nb.name).write_text(json.dumps(notebook, ensure_ascii=False, indent=1), encoding="utf-8")
    return src


def build(parameters: dict, root: Path | None = None, force: bool = False) -> Path:
    """Run every chapter that changed (see :func:`run`), then build the site; return ``_build/html/index.html``."""
    root = root or project_root()
    executed = run([], parameters, root, force=force)
    src = stage(root, executed)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(src), "--path-output", str(root), "-W", "--keep-going", "--all"]
    print("[attnbook] building the site", flush=True)
    result = subprocess.run(cmd, cwd=root)
    if result.returncode:
        raise AttnbookError(f"jupyter-book build: expected success, got exit code {result.returncode}")
    index = root / "_build" / "html" / "index.html"
    if not index.is_file():
        raise MissingResourceError(f"site: expected {index.relative_to(root)}, got no such file")
    return index


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def listing(root: Path | None = None) -> list[dict]:
    """One row per chapter: its slug, profiles, and whether ``_build/executed`` holds a copy
    executed from its current inputs (default parameters)."""
    from .chapters import EXPERIMENTS
    from .profiles import table

    slugs = {c.slug for c in EXPERIMENTS}
    root = root or project_root()
    rows = []
    for nb in chapters(root):
        target = root / "_build" / "executed" / nb.name
        state = "up to date" if up_to_date(nb, {}, root) else ("stale" if target.is_file() else "not run")
        rows.append({"chapter": nb.stem, "profiles": ", ".join(table(nb.stem[3:])) if nb.stem[3:] in slugs else "-", "executed": state})
    return rows


def clean(root: Path | None = None, cache: bool = False) -> list[Path]:
    """Remove the executed chapters, the staged sources and the site (and, with ``cache``, the run
    cache of trained models and downloads); return what was removed."""
    from .store import cache_dir

    root = root or project_root()
    removed = [p for p in (root / "_build" / name for name in ("executed", "src", "html", "jupyter_execute", ".doctrees")) if p.exists()]
    if cache:
        removed += [p for p in cache_dir().iterdir()]
    for p in removed:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return removed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attnbook", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="chapters, their profiles, whether their executed copy is current, and the cache")
    p_run = sub.add_parser("run", help="execute chapters with papermill into _build/executed")
    p_run.add_argument("chapter", nargs="*", help="chapter number, slug or file (default: all)")
    p_build = sub.add_parser("build", help="execute every chapter that changed and build the site")
    for p in (p_run, p_build):
        p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="notebook parameter, e.g. -p profile full")
        p.add_argument("--force", action="store_true", help="execute even chapters whose executed copy is up to date")
    p_clean = sub.add_parser("clean", help="remove executed chapters and the built site")
    p_clean.add_argument("--cache", action="store_true", help="also empty the run cache (trained models, downloads)")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            from .store import cache_dir

            for row in listing():
                print(f"{row['chapter']:<28} profiles: {row['profiles']:<12} executed: {row['executed']}")
            folders = sorted(p for p in cache_dir().iterdir() if p.is_dir())
            print("cache: " + (", ".join(f"{p.name} {_size(p) / 2**20:.1f} MiB" for p in folders) or "empty"))
        elif args.command == "clean":
            removed = clean(cache=args.cache)
            print(f"[attnbook] removed {len(removed)} item(s)" + (": " + ", ".join(p.name for p in removed) if removed else ""))
        else:
            params = {name: typed(value) for name, value in args.parameter}
            if args.command == "run":
                for path in run(args.chapter, params, force=args.force):
                    print(f"[attnbook] executed: {os.path.relpath(path)}")
            else:
                index = build(params, force=args.force)
                print(f"[attnbook] site: {os.path.relpath(index)}")
    except AttnbookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
