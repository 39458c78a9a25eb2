"""Arrows point one way: the core never imports a chapter's domain folder.

The rule this file enforces (DESIGN.md, "The house"):

* **Domain folders** are the experiment chapters' packages ``attnbook/lm``, ``attnbook/timeseries``,
  ``attnbook/vitime``, ``attnbook/rl`` and ``attnbook/charlm`` (:data:`DOMAINS`, checked against the
  experiment rows of the chapter registry :mod:`attnbook.chapters`). **The core** is every other
  ``.py`` file under ``attnbook/`` (``maps``, ``capture/``, ``plots/``, ``compat/``, ``profiles``,
  ``chapters``, ``findings``, ``explore``, ``__main__``, …).
* No module of the core names a domain package in any import, wherever it stands: top level or
  inside a function, class, ``try`` or ``if TYPE_CHECKING`` block. Checked, by parsing with
  :mod:`ast`: ``import x``, ``from x import y`` (and ``from attnbook import lm``), relative
  imports resolved against the module's own package, and the name given to
  ``importlib.import_module(...)`` / ``import_module(...)`` / ``__import__(...)`` when it is a string
  literal or an f-string whose literal start names a domain (``f"attnbook.charlm.{x}"``).
* A lazy import is still an import: deprecated aliases in the core that forward to a chapter
  (``plots.series_attention``, ``explore.TextExplorer``) are not allowed either.
* ``importlib.import_module`` / ``__import__`` with a *computed* name (a variable, a table lookup,
  an f-string that only starts ``"attnbook."``) could hide a chapter, so the core may do it only in
  the modules listed in :data:`DYNAMIC_IMPORTERS`, each with its reason. The one legitimate kind is
  dispatch through the chapter registry by name: the chapter's folder comes from a row of
  :mod:`attnbook.chapters`, never from a chapter name written in the core. ``chapters.py`` itself
  holds folder names as data and imports nothing; ``findings.py`` and ``__main__.py`` read the
  registry without importing a chapter, so neither needs an exemption.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = "attnbook"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

#: the chapters' domain folders (one per experiment chapter in attnbook/chapters.py)
DOMAINS = ("lm", "timeseries", "vitime", "rl", "charlm")

#: core modules allowed a computed ``import_module`` name, and why (path relative to attnbook/)
DYNAMIC_IMPORTERS = {
    "profiles.py": "profiles.table(chapter) imports attnbook.<folder>.experiment, <folder> read from the chapter's row "
    "in the registry attnbook.chapters: dispatch by name, no chapter named in the core",
    "deprecation.py": "moved_module(old, new) is the generic forwarder of a moved module; the target `new` is given by "
    "its caller, and its only callers are shims inside the domain folders (a domain importing itself)",
}

IMPORT_FUNCTIONS = {"import_module", "__import__"}


def _domain_of(name: str) -> str | None:
    """The domain package ``name`` lies in (``attnbook.lm.model`` -> ``attnbook.lm``), or None."""
    for domain in DOMAINS:
        full = f"{PACKAGE}.{domain}"
        if name == full or name.startswith(full + "."):
            return full
    return None


def _resolve(name: str, package: str | None) -> str | None:
    """``name`` (maybe relative, ``..timeseries``) as an absolute module name; None if it cannot be."""
    if not name.startswith("."):
        return name
    if not package:
        return None
    try:
        return importlib.util.resolve_name(name, package)
    except (ImportError, ValueError):
        return None


def _literal_start(node: ast.expr) -> tuple[str | None, bool]:
    """(the string a name argument starts with, whether that is the whole name) for a literal or
    f-string; (None, False) for anything computed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, True
    if isinstance(node, ast.JoinedStr):
        start = ""
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                start += part.value
            else:
                return start, False
        return start, True
    return None, False


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def find_domain_imports(source: str, module: str, *, is_package: bool = False, allow_dynamic: bool = False) -> list[str]:
    """Every import in ``source`` (the text of the module named ``module``; ``is_package`` for an
    ``__init__.py``) that names a domain package, as ``"line N: …"``; a computed
    ``import_module`` / ``__import__`` name counts too unless ``allow_dynamic``."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if _domain_of(a.name)]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve("." * node.level + (node.module or ""), package)
            if base is None:
                found.append(f"line {node.lineno}: unresolvable relative import from {'.' * node.level}{node.module or ''}")
                continue
            for name in (base, *(f"{base}.{a.name}" for a in node.names)):
                if _domain_of(name):
                    found.append(f"line {node.lineno}: from {'.' * node.level}{node.module or ''} import … ({name})")
                    break
        elif isinstance(node, ast.Call) and _call_name(node.func) in IMPORT_FUNCTIONS and node.args:
            start, whole = _literal_start(node.args[0])
            if start is not None and start.startswith("."):  # import_module(".x", package=…)
                anchor = next((k.value for k in node.keywords if k.arg == "package"), node.args[1] if len(node.args) > 1 else None)
                if isinstance(anchor, ast.Constant) and isinstance(anchor.value, str):
                    start = _resolve(start, anchor.value)
                elif isinstance(anchor, ast.Name) and anchor.id in ("__name__", "__package__"):
                    start = _resolve(start, module if anchor.id == "__name__" and is_package else package)
                else:
                    start, whole = None, False
            if start is not None and (_domain_of(start) or (not whole and any(start == f"{PACKAGE}.{d}" for d in DOMAINS))):
                found.append(f"line {node.lineno}: {_call_name(node.func)}({start!r}{'' if whole else ' …'})")
            elif not whole and not allow_dynamic:
                found.append(f"line {node.lineno}: {_call_name(node.func)}(<computed name>) outside the registry's dispatch")
    return found


def core_modules() -> list[Path]:
    """Every .py file under attnbook/ outside the domain folders."""
    return sorted(p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] not in DOMAINS)


def _module_name(path: Path) -> tuple[str, bool]:
    parts = (PACKAGE, *path.relative_to(ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


# -- the rule ------------------------------------------------------------------------------------
def test_the_core_never_imports_a_domain_folder():
    modules = core_modules()
    assert len(modules) > 20 and ROOT / "plots" / "__init__.py" in modules and ROOT / "profiles.py" in modules
    problems = []
    for path in modules:
        rel = path.relative_to(ROOT).as_posix()
        module, is_package = _module_name(path)
        allow = rel in DYNAMIC_IMPORTERS
        problems += [f"attnbook/{rel} {p}" for p in find_domain_imports(path.read_text(encoding="utf-8"), module, is_package=is_package, allow_dynamic=allow)]
    assert problems == [], "the core imports a chapter's domain folder:\n" + "\n".join(problems)


def test_domains_are_the_registrys_experiment_chapters_and_exemptions_exist():
    from attnbook.chapters import EXPERIMENTS

    assert set(DOMAINS) == {c.package for c in EXPERIMENTS}
    assert all((ROOT / d / "__init__.py").is_file() for d in DOMAINS)
    for rel in DYNAMIC_IMPORTERS:  # a stale exemption is removed, not kept
        path = ROOT / rel
        assert path.is_file() and rel.split("/")[0] not in DOMAINS
        module, is_package = _module_name(path)
        assert find_domain_imports(path.read_text(encoding="utf-8"), module, is_package=is_package), f"{rel} no longer needs its exemption"


def test_importing_the_core_loads_no_domain_folder():
    names = [_module_name(p)[0] for p in core_modules() if p.name != "__main__.py"]
    code = textwrap.dedent(f"""
        import importlib, sys
        for name in {names!r}:
            importlib.import_module(name)
        loaded = sorted(m for m in sys.modules if m.split('.')[:2] in [['attnbook', d] for d in {DOMAINS!r}])
        assert not loaded, loaded
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


# -- the checker can fail ------------------------------------------------------------------------
SYNTHETIC = {
    "inner function, relative": ("attnbook.plots", True, "def f():\n    from ..timeseries import x\n    return x\n"),
    "method in a try": ("attnbook.metrics", False, "class A:\n    def m(self):\n        try:\n            from .lm.model import load\n        except ImportError:\n            pass\n"),
    "type checking": ("attnbook.maps", False, "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from attnbook.vitime import model\n"),
    "package attribute": ("attnbook.plots.charts", False, "from ... import rl\n"),
    "plain import": ("attnbook.store", False, "def g():\n    import attnbook.charlm.quality as q\n"),
    "import_module literal": ("attnbook.metrics", False, 'import importlib\ndef f():\n    return importlib.import_module("attnbook.charlm.model")\n'),
    "import_module f-string": ("attnbook.metrics", False, 'from importlib import import_module\nm = import_module(f"attnbook.lm.{name}")\n'),
    "import_module relative": ("attnbook.metrics", False, 'import importlib\nm = importlib.import_module(".rl.model", package="attnbook")\n'),
    "__import__": ("attnbook.metrics", False, '__import__("attnbook.timeseries")\n'),
}


@pytest.mark.parametrize("case", list(SYNTHETIC))
def test_the_checker_catches_a_domain_import(case):
    module, is_package, source = SYNTHETIC[case]
    found = find_domain_imports(source, module, is_package=is_package, allow_dynamic=True)
    assert len(found) == 1, found


def test_the_checker_catches_an_inner_relative_import_of_timeseries():
    source = "import numpy\n\ndef figure():\n    from ..timeseries import series_attention\n    return series_attention\n"
    assert find_domain_imports(source, "attnbook.plots", is_package=True) == ["line 4: from ..timeseries import … (attnbook.timeseries)"]


def test_the_checker_catches_import_module_of_charlm():
    source = 'import importlib\n\ndef load():\n    return importlib.import_module("attnbook.charlm.model")\n'
    assert find_domain_imports(source, "attnbook.explore") == ["line 4: import_module('attnbook.charlm.model')"]


def test_computed_names_need_an_exemption_and_registry_dispatch_passes_with_one():
    table = '_MOVED = {"SeriesView": "attnbook.timeseries.explorer"}\ndef get(n):\n    import importlib\n    return importlib.import_module(_MOVED[n])\n'
    assert find_domain_imports(table, "attnbook.explore") == ["line 4: import_module(<computed name>) outside the registry's dispatch"]
    registry = 'import importlib\ndef table(folder):\n    return importlib.import_module(f"attnbook.{folder}.experiment")\n'
    assert find_domain_imports(registry, "attnbook.profiles", allow_dynamic=True) == []
    assert len(find_domain_imports(registry, "attnbook.profiles")) == 1


def test_the_checker_passes_core_imports():
    source = "from . import checks\nfrom .plots import heatmap\nimport attnbook.maps\nfrom attnbook import lmx\nimport importlib\nimportlib.import_module('attnbook.metrics')\n"
    assert find_domain_imports(source, "attnbook.explore") == []
