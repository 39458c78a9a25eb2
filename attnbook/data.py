"""Text corpora for the char-level models: found locally, in the cache, or downloaded and verified.

Three corpora, prepared as in the seed study (nanoGPT / AI Scientist ``prepare.py``):

- ``tinyshakespeare``: ``tinyshakespeare.txt`` (char-rnn's ``input.txt``); first 90 % train, last 10 % val;
- ``enwik8``: ``enwik8.zip`` (member ``enwik8``, read as latin-1); 90M / 5M / 5M characters train / val / test;
- ``text8``: ``text8.zip`` (member ``text8``); 90M / 5M / 5M characters.

The vocabulary is the sorted set of characters in the whole text (enwik8 is read as latin-1, so
each byte is one symbol). ``prefix=n`` reads only the first ``n`` characters and splits them
in the same proportions (90 / 5 / 5; 90 / 10 for Shakespeare): the CI copy of text8 is the first
12.5 MB (``text8_prefix.txt``), whose sha256 is checked as well.

Files are looked up in ``$ATTNBOOK_DATA_DIR``, then ``<cache>/data``, then (tiny Shakespeare only)
the copy embedded in the package (``attnbook/corpora/``, checked like any other); otherwise
downloaded from the canonical address into the cache, written under a temporary name and renamed
only after the size and checksum match. ``ATTNBOOK_OFFLINE=1`` (or ``offline=True``) forbids the
download. With no file and no download: :class:`~attnbook.errors.MissingResourceError` saying
which file to put where (:func:`missing_reason`, free of machine paths).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import checks
from .errors import CorruptDataError, InvalidInputError, MissingResourceError, bad_argument

__all__ = ["CorpusSpec", "CORPORA", "EMBEDDED_DIR", "CharCorpus", "load_corpus", "locate", "download", "read_text", "file_digest",
           "offline_mode", "missing_reason", "inventory"]

#: where the package keeps its embedded corpora (tiny Shakespeare): the last place looked before a download
EMBEDDED_DIR = Path(__file__).resolve().parent / "corpora"
#: set to 1 / true / yes to forbid every corpus download (the offline newcomer's path; CI proves it)
OFFLINE_ENV = "ATTNBOOK_OFFLINE"


@dataclass(frozen=True)
class CorpusSpec:
    """Where a corpus comes from and how it is checked and split.

    ``digest`` is ``"<algorithm>:<hex>"`` of the *text* (the uncompressed member); ``size`` its
    length in bytes. ``archive_size`` is the size of the zip as published (None: a plain file).
    ``prefix_file``/``prefix_digest`` name a local copy of the first ``prefix_size`` bytes.
    ``embedded``: the package ships ``filename`` in :data:`EMBEDDED_DIR`.
    """

    name: str
    filename: str
    url: str
    size: int
    digest: str
    split: tuple[float, ...]  # fractions of the text: (train, val) or (train, val, test)
    member: str | None = None  # inside a zip archive
    archive_size: int | None = None
    encoding: str = "utf-8"
    prefix_file: str | None = None
    prefix_size: int | None = None
    prefix_digest: str | None = None
    embedded: bool = False


CORPORA: dict[str, CorpusSpec] = {
    "tinyshakespeare": CorpusSpec(
        "tinyshakespeare", "tinyshakespeare.txt",
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        1_115_394, "sha256:86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", (0.9, 0.1), embedded=True),
    "enwik8": CorpusSpec(
        "enwik8", "enwik8.zip", "http://mattmahoney.net/dc/enwik8.zip",
        100_000_000, "sha1:57b8363b814821dc9d47aa4d41f58733519076b2", (0.9, 0.05, 0.05),
        member="enwik8", archive_size=36_445_475, encoding="latin-1"),
    "text8": CorpusSpec(
        "text8", "text8.zip", "http://mattmahoney.net/dc/text8.zip",
        100_000_000, "sha256:6e890197040d37d85beb962ae1f041ff1d9a9ca8d20c7d99c85027eebf51dca7", (0.9, 0.05, 0.05),
        member="text8", archive_size=31_344_016, prefix_file="text8_prefix.txt", prefix_size=12_500_000,
        prefix_digest="sha256:0e535fcbf0064c2dda5c5b611de12ba3fb0d928fe2e9b9d7528e2934097b3cb7"),
}


def _spec(name: str | CorpusSpec) -> CorpusSpec:
    if isinstance(name, CorpusSpec):
        return name
    if name not in CORPORA:
        raise bad_argument(InvalidInputError, "dataset", f"one of {sorted(CORPORA)}", name)
    return CORPORA[name]


def file_digest(data: bytes | Path, algorithm: str) -> str:
    """``"<algorithm>:<hex>"`` of bytes or of a file (read in 1 MiB blocks)."""
    h = hashlib.new(algorithm)
    if isinstance(data, (bytes, bytearray)):
        h.update(data)
    else:
        with open(data, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return f"{algorithm}:{h.hexdigest()}"


def _data_dirs() -> list[Path]:
    from .store import cache_dir

    dirs = [Path(os.environ["ATTNBOOK_DATA_DIR"]).expanduser()] if os.environ.get("ATTNBOOK_DATA_DIR") else []
    return dirs + [cache_dir() / "data"]


def offline_mode() -> bool:
    """True when ``$ATTNBOOK_OFFLINE`` is set to 1 / true / yes / on: no corpus is downloaded."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def missing_reason(name: str | CorpusSpec, prefix: int | None = None) -> str:
    """Which file to put where so that ``load_corpus(name, prefix=prefix)`` finds the corpus, with no
    machine path in it (chapters print it and the findings page shows it)."""
    spec = _spec(name)
    files = spec.filename
    if spec.prefix_file and prefix is not None and prefix <= spec.prefix_size:
        files += f" or {spec.prefix_file} (its first {spec.prefix_size:,} bytes)"
    return (f"put {files} into the folder $ATTNBOOK_DATA_DIR names, or into $ATTNBOOK_CACHE/data (default ~/.cache/attnbook/data); "
            f"with network access and ATTNBOOK_OFFLINE unset, the package downloads {spec.filename} into that cache itself "
            "and keeps it only when its size and sha256 match the published ones")


def locate(name: str | CorpusSpec, *, prefix: bool = False) -> Path | None:
    """The first existing file of the corpus (or of its prefix copy) in the data dirs, then the
    embedded copy (for a corpus the package ships), else None.

    For a zipped corpus the plain extracted member (``enwik8``, ``text8``) is accepted as well.
    """
    spec = _spec(name)
    names = [spec.prefix_file] if prefix else [spec.filename] + ([spec.member] if spec.member else [])
    folders = _data_dirs() + ([EMBEDDED_DIR] if spec.embedded and not prefix else [])
    for folder in folders:
        for filename in names:
            if filename and (folder / filename).is_file():
                return folder / filename
    return None


def _check(what: str, data: bytes, size: int, digest: str) -> None:
    if len(data) != size:
        raise bad_argument(CorruptDataError, what, f"{size:,} bytes", f"{len(data):,} bytes (truncated or a different file)", raw=True)
    got = file_digest(data, digest.split(":")[0])
    if got != digest:
        raise bad_argument(CorruptDataError, what, f"checksum {digest}", got, raw=True)


def inventory() -> dict[str, list]:
    """Per corpus, the file :func:`locate` finds (name, size and whether embedded; None if absent) and its
    prefix copy's, plus the offline switch: what a chapter reading corpora can use (no machine path)."""
    def found(path: Path | None):
        return None if path is None else [path.name, path.stat().st_size, path.parent == EMBEDDED_DIR]

    out: dict[str, list] = {name: [found(locate(spec)), found(locate(spec, prefix=True)) if spec.prefix_file else None]
                            for name, spec in CORPORA.items()}
    out["offline"] = [offline_mode()]
    return out


def read_text(path: Path, spec: CorpusSpec, *, prefix_copy: bool = False, name: str | None = None) -> bytes:
    """The verified bytes of the corpus text in ``path`` (a zip, the plain member, or the prefix copy);
    errors name the file as ``name`` (default: the file's own name)."""
    path = Path(path)
    name = name or path.name
    if prefix_copy:
        data = path.read_bytes()
        _check(name, data, spec.prefix_size, spec.prefix_digest)
        return data
    if spec.member is not None and zipfile.is_zipfile(path):
        if spec.archive_size is not None and path.stat().st_size != spec.archive_size:
            raise bad_argument(CorruptDataError, name, f"an archive of {spec.archive_size:,} bytes",
                               f"{path.stat().st_size:,} bytes (truncated or a different file)", raw=True)
        try:
            with zipfile.ZipFile(path) as archive:
                data = archive.read(spec.member)
        except KeyError:
            raise bad_argument(CorruptDataError, name, f"an archive with the member {spec.member!r}", "no such member", raw=True) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:  # CRC mismatch, broken stream
            raise bad_argument(CorruptDataError, name, "a readable zip archive", f"{type(exc).__name__}: {exc}", raw=True) from None
    elif spec.member is not None and name == spec.filename:
        raise bad_argument(CorruptDataError, name, "a zip archive", "a file that is not a zip (truncated or a different file)", raw=True)
    else:
        data = path.read_bytes()
    _check(name, data, spec.size, spec.digest)
    return data


def download(name: str | CorpusSpec, *, url: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch the corpus file into ``<cache>/data`` and verify it; return its path.

    Streamed through :func:`attnbook.store.atomic_write` and checked by :func:`read_text` before the
    rename, so a failed or corrupt download leaves nothing behind. ``url`` overrides the canonical
    address (tests use a ``file://`` URL). With ``$ATTNBOOK_OFFLINE`` set nothing is opened; offline
    or failed: :class:`MissingResourceError` naming the file and where to put it.
    """
    from .store import atomic_write, cache_dir

    spec = _spec(name)
    if offline_mode():
        raise MissingResourceError(f"{spec.name}: not found locally and downloads are off (${OFFLINE_ENV} is set); {missing_reason(spec)}")
    target = cache_dir() / "data" / spec.filename

    def fetch_and_check(tmp: Path) -> None:
        with urllib.request.urlopen(url or spec.url, timeout=timeout) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
        read_text(tmp, spec, name=spec.filename)  # CorruptDataError: nothing is renamed

    try:
        atomic_write(target, fetch_and_check)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise MissingResourceError(
            f"{spec.name}: not found locally and the download from {url or spec.url} failed ({type(exc).__name__}: {exc}); "
            + missing_reason(spec, spec.prefix_size)
        ) from None
    return target


@dataclass
class CharCorpus:
    """A character corpus: vocabulary and the encoded splits (``np.uint16`` arrays of ids)."""

    name: str
    chars: tuple[str, ...]
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray | None
    source: str  # which file it came from (name only, never a machine path)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Ids of ``text``; a character outside the vocabulary raises ``InvalidInputError``."""
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted({c for c in text if c not in index})
        if unknown:
            raise bad_argument(InvalidInputError, "text", f"characters of the {self.name} vocabulary ({self.vocab_size} symbols)",
                               f"characters outside it: {''.join(unknown)[:20]!r}", raw=True)
        return np.fromiter((index[c] for c in text), dtype=np.uint16, count=len(text))

    def decode(self, ids) -> str:
        """The text of a sequence of ids (through a byte table when every character is latin-1)."""
        ids = np.asarray(ids).ravel()
        if all(ord(c) < 256 for c in self.chars):
            table = np.frombuffer("".join(self.chars).encode("latin-1"), dtype=np.uint8)
            return table[ids].tobytes().decode("latin-1")
        return "".join(self.chars[int(i)] for i in ids)


def _encode_bytes(data: bytes, encoding: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Vocabulary (sorted distinct characters) and ids of a text, through a byte table when possible."""
    if encoding == "latin-1" or data.isascii():
        raw = np.frombuffer(data, dtype=np.uint8)
        present = np.flatnonzero(np.bincount(raw, minlength=256))
        table = np.zeros(256, dtype=np.uint16)
        table[present] = np.arange(len(present), dtype=np.uint16)
        return tuple(bytes([b]).decode("latin-1") for b in present), table[raw]
    text = data.decode(encoding)
    chars = tuple(sorted(set(text)))
    index = {c: i for i, c in enumerate(chars)}
    return chars, np.fromiter((index[c] for c in text), dtype=np.uint16, count=len(text))


def load_corpus(name: str | CorpusSpec, *, prefix: int | None = None, offline: bool = False) -> CharCorpus:
    """The corpus ``name`` prepared as in the seed study (see the module docstring).

    ``prefix``: use only the first ``prefix`` characters (then a local prefix copy is enough).
    ``offline`` (or ``$ATTNBOOK_OFFLINE``): never download; raise :class:`MissingResourceError`
    (message from :func:`missing_reason`) if no local or embedded file is found.
    """
    spec = _spec(name)
    if prefix is not None:
        prefix = checks.integer("prefix", prefix, minimum=1000, maximum=spec.size)
    path, copy = locate(spec), False
    if path is None and prefix is not None and spec.prefix_file and prefix <= spec.prefix_size:
        path, copy = locate(spec, prefix=True), True
    if path is None:
        if offline or offline_mode():
            raise MissingResourceError(f"{spec.name}: no local copy and downloads are off; {missing_reason(spec, prefix)}")
        path = download(spec)
    data = read_text(path, spec, prefix_copy=copy)
    if prefix is not None:
        data = data[:prefix]
    chars, ids = _encode_bytes(data, spec.encoding)
    n = len(ids)
    cuts = np.cumsum([int(f * n) for f in spec.split[:-1]])  # int() as nanoGPT's prepare.py
    parts = np.split(ids, cuts)
    source = path.name + (" (embedded in attnbook)" if path.parent == EMBEDDED_DIR else "")
    return CharCorpus(spec.name, chars, parts[0], parts[1], parts[2] if len(parts) > 2 else None, source)
