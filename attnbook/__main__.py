"""``python -m attnbook run [chapter …] [-p name value …]`` and ``python -m attnbook build``.

``run`` executes chapters with papermill into ``_build/executed/``; ``build`` runs every chapter
and then builds the site from the executed copies with ``jupyter-book build -W --keep-going``.
"""

from __future__ import annotations

import argparse
import ast
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


def run(names: Sequence[str], parameters: dict, root: Path | None = None) -> list[Path]:
    """Execute chapters with papermill into ``_build/executed``; return the executed paths."""
    import papermill

    root = root or project_root()
    out_dir = root / "_build" / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for nb in resolve_chapters(names, root):
        target = out_dir / nb.name
        start = time.perf_counter()
        print(f"[attnbook] running {nb.stem} {parameters or ''}", flush=True)
        papermill.execute_notebook(
            str(nb), str(target), parameters=parameters, cwd=str(nb.parent), progress_bar=False, kernel_name="python3"
        )
        print(f"[attnbook] {nb.stem}: {time.perf_counter() - start:.1f} s", flush=True)
        done.append(target)
    return done


def stage(root: Path, executed: Sequence[Path]) -> Path:
    """Copy the book sources into ``_build/src`` with the executed chapters in place of the clean ones.

    The staged ``_config.yml`` turns execution off: the chapters already ran under papermill
    (myst-nb's ``auto`` would re-run any notebook with an output-less cell).
    """
    import yaml

    src = root / "_build" / "src"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(root / "book", src / "book", ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "_build"))
    shutil.copy2(root / "_toc.yml", src / "_toc.yml")
    config = yaml.safe_load((root / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    for nb in executed:
        shutil.copy2(nb, src / "book" / nb.name)
    return src


def build(parameters: dict, root: Path | None = None) -> Path:
    """Run every chapter, then build the site; return ``_build/html/index.html``."""
    root = root or project_root()
    executed = run([], parameters, root)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attnbook", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute chapters with papermill into _build/executed")
    p_run.add_argument("chapter", nargs="*", help="chapter number, slug or file (default: all)")
    p_build = sub.add_parser("build", help="execute every chapter and build the site")
    for p in (p_run, p_build):
        p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="notebook parameter, e.g. -p profile full")
    args = parser.parse_args(argv)
    params = {name: typed(value) for name, value in args.parameter}
    try:
        if args.command == "run":
            for path in run(args.chapter, params):
                print(f"[attnbook] executed: {os.path.relpath(path)}")
        else:
            index = build(params)
            print(f"[attnbook] site: {os.path.relpath(index)}")
    except AttnbookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
