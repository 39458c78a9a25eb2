"""The offline newcomer's path: tiny Shakespeare embedded in the package, the ATTNBOOK_OFFLINE switch,
and path-free reasons for a corpus that cannot be had."""

from __future__ import annotations

import dataclasses
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from attnbook import data, profiles
from attnbook.charlm.experiment import load_corpora
from attnbook.data import CORPORA, CorpusSpec, file_digest, load_corpus
from attnbook.errors import CorruptDataError, MissingResourceError

ROOT = Path(__file__).resolve().parents[1]
MACHINE_PATH = re.compile(r"(/work/|/tmp/|/root/|/home/|[A-Za-z]:\\)")


@pytest.fixture()
def empty(tmp_path, monkeypatch):
    """No data dir, an empty cache, downloads allowed unless a test switches them off."""
    monkeypatch.delenv("ATTNBOOK_DATA_DIR", raising=False)
    monkeypatch.delenv("ATTNBOOK_OFFLINE", raising=False)
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture()
def no_network(monkeypatch):
    """urlopen replaced by a recorder that fails the way an unreachable host does."""
    calls = []

    def refuse(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("no route to host (test)")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


def test_the_embedded_copy_is_the_canonical_tinyshakespeare():
    spec = CORPORA["tinyshakespeare"]
    path = data.EMBEDDED_DIR / spec.filename
    assert spec.embedded and path.is_file()
    assert path.stat().st_size == spec.size and file_digest(path, "sha256") == spec.digest
    assert not any(s.embedded for name, s in CORPORA.items() if name != "tinyshakespeare")  # text8 and enwik8 are not shipped


def test_the_embedded_copy_is_package_data_of_the_wheel():
    """pyproject ships corpora/*.txt with the package, so a non-editable install has it too."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["attnbook"]
    package = ROOT / "attnbook"
    assert any((package / pattern).parent == data.EMBEDDED_DIR and list(package.glob(pattern)) for pattern in patterns)


def test_offline_with_nothing_local_the_embedded_copy_is_used(empty, no_network, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_OFFLINE", "1")
    c = load_corpus("tinyshakespeare")
    assert c.source == "tinyshakespeare.txt (embedded in attnbook)"
    assert c.vocab_size == 65 and (len(c.train), len(c.val)) == (1_003_854, 111_540)
    assert no_network == []  # found before any download was considered
    assert not (empty / "cache" / "data").exists()  # nothing copied or half-written


def test_a_local_copy_is_preferred_to_the_embedded_one(empty, monkeypatch):
    local = empty / "mine"
    local.mkdir()
    shutil.copy(data.EMBEDDED_DIR / "tinyshakespeare.txt", local / "tinyshakespeare.txt")
    monkeypatch.setenv("ATTNBOOK_DATA_DIR", str(local))
    assert load_corpus("tinyshakespeare", offline=True).source == "tinyshakespeare.txt"


def test_a_corrupt_embedded_copy_is_refused(empty, monkeypatch):
    fake = empty / "embedded"
    fake.mkdir()
    text = (data.EMBEDDED_DIR / "tinyshakespeare.txt").read_bytes()
    (fake / "tinyshakespeare.txt").write_bytes(text[:-1] + b"?")  # same size, one byte changed
    monkeypatch.setattr(data, "EMBEDDED_DIR", fake)
    with pytest.raises(CorruptDataError, match="checksum"):
        load_corpus("tinyshakespeare", offline=True)


def test_the_offline_switch_blocks_the_download_before_any_network_call(empty, monkeypatch):
    """With ATTNBOOK_OFFLINE=1 a corpus that is only reachable by download is not downloaded: urlopen is
    never called, even for an address that would work, and the error says what to put where."""
    text = b"To be, or not to be: that is the question.\n" * 100
    remote = empty / "remote.txt"
    remote.write_bytes(text)
    spec = CorpusSpec("remote", "remote.txt", remote.as_uri(), len(text), file_digest(text, "sha256"), (0.9, 0.1))
    opened = []
    real = urllib.request.urlopen
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, *a, **k: opened.append(url) or real(url, *a, **k))
    for value in ("1", "true", "yes"):
        monkeypatch.setenv("ATTNBOOK_OFFLINE", value)
        with pytest.raises(MissingResourceError, match=r"downloads are off.*remote\.txt.*ATTNBOOK_DATA_DIR"):
            load_corpus(spec)
        with pytest.raises(MissingResourceError, match="ATTNBOOK_OFFLINE"):
            data.download(spec)
    assert opened == [] and not (empty / "cache" / "data" / "remote.txt").exists()
    monkeypatch.setenv("ATTNBOOK_OFFLINE", "0")  # switched off again: the same call downloads
    assert load_corpus(spec).source == "remote.txt" and opened == [remote.as_uri()]


def test_without_the_switch_an_unreachable_host_is_a_missing_resource_error(empty, no_network):
    with pytest.raises(MissingResourceError, match=r"text8: not found locally and the download .* failed") as info:
        load_corpus("text8")
    assert no_network == [CORPORA["text8"].url]
    assert "text8.zip" in str(info.value) and "text8_prefix.txt" in str(info.value)


@pytest.mark.parametrize("prefix, names", [(None, ["text8.zip"]), (12_500_000, ["text8.zip", "text8_prefix.txt"])])
def test_the_reason_names_the_file_and_where_and_no_machine_path(empty, monkeypatch, prefix, names):
    monkeypatch.setenv("ATTNBOOK_OFFLINE", "1")
    with pytest.raises(MissingResourceError) as info:
        load_corpus("text8", prefix=prefix)
    message = str(info.value)
    assert all(name in message for name in names) and "ATTNBOOK_DATA_DIR" in message
    assert ("text8_prefix.txt" in message) == (prefix is not None)
    assert not MACHINE_PATH.search(message), message


def test_load_corpora_skips_what_is_missing_with_a_path_free_reason(empty, no_network, monkeypatch):
    """The chapter's corpus step: the embedded Shakespeare is found, text8 and enwik8 are skipped with why."""
    monkeypatch.setenv("ATTNBOOK_OFFLINE", "1")
    quick, full = profiles.get("charlm-evolution", "quick"), profiles.get("charlm-evolution", "full")
    settings = dataclasses.replace(full, datasets={"tinyshakespeare": full.datasets["tinyshakespeare"], "text8": quick.datasets["text8"],
                                                   "enwik8": full.datasets["enwik8"]})  # text8: a prefix
    found, missing = load_corpora(settings)
    assert list(found) == ["tinyshakespeare"] and list(missing) == ["text8", "enwik8"]
    assert "text8_prefix.txt" in missing["text8"] and "enwik8.zip" in missing["enwik8"]
    assert not any(MACHINE_PATH.search(why) for why in missing.values())
    assert no_network == []

    monkeypatch.setattr(data, "EMBEDDED_DIR", empty / "nothing-embedded")  # the embedded copy removed on purpose
    found, missing = load_corpora(settings)
    assert found == {} and list(missing) == ["tinyshakespeare", "text8", "enwik8"]
    assert "tinyshakespeare.txt" in missing["tinyshakespeare"]
