"""Text corpora: lookup order, verification, enwik8's zip format, prefix mode, download, errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnbook import data
from attnbook.data import CorpusSpec, file_digest, load_corpus
from attnbook.errors import CorruptDataError, InvalidInputError, MissingResourceError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture()
def dirs(tmp_path, monkeypatch):
    """An empty data dir and cache, used instead of the machine's; downloads allowed (the tests that
    download read file:// addresses), whatever the machine's ATTNBOOK_OFFLINE says."""
    data_dir, cache = tmp_path / "data", tmp_path / "cache"
    data_dir.mkdir()
    monkeypatch.delenv("ATTNBOOK_OFFLINE", raising=False)
    monkeypatch.setenv("ATTNBOOK_DATA_DIR", str(data_dir))
    monkeypatch.setenv("ATTNBOOK_CACHE", str(cache))
    return data_dir, cache


def _enwik_like(n: int = 20_000, seed: int = 0) -> bytes:
    """Bytes like enwik8: XML-ish ASCII plus latin-1/UTF-8 high bytes."""
    rng = np.random.default_rng(seed)
    text = "<page><title>Ärger</title><text>naïve café ∑</text></page>\n".encode("utf-8")
    noise = rng.integers(0, 256, n // 10, dtype=np.uint8).tobytes()
    out = (text * (n // len(text) + 1))[: n - len(noise)] + noise
    return out[:n]


def _zip_spec(folder: Path, payload: bytes, name: str = "enwik8") -> CorpusSpec:
    """A zip in the real enwik8 format (one deflated member named ``enwik8``) and its spec."""
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, payload)
    return CorpusSpec(name, f"{name}.zip", "http://example.invalid/x.zip", len(payload), file_digest(payload, "sha1"),
                      (0.9, 0.05, 0.05), member=name, archive_size=path.stat().st_size, encoding="latin-1")


def test_enwik8_format_archive_reads_latin1_bytes_and_splits_90_5_5(dirs):
    payload = _enwik_like(20_000)
    spec = _zip_spec(dirs[0], payload)
    c = load_corpus(spec, offline=True)
    assert c.vocab_size == len(set(payload))  # one symbol per byte value present
    assert (len(c.train), len(c.val), len(c.test)) == (18_000, 1_000, 1_000)
    assert c.decode(np.concatenate([c.train, c.val, c.test])).encode("latin-1") == payload
    assert list(c.chars) == sorted(c.chars) and c.source == "enwik8.zip"


def test_extracted_member_is_accepted_too(dirs):
    payload = _enwik_like(5_000)
    spec = _zip_spec(dirs[0], payload)
    (dirs[0] / "enwik8.zip").unlink()
    (dirs[0] / "enwik8").write_bytes(payload)
    assert load_corpus(spec, offline=True).source == "enwik8"


def test_truncated_archive_is_a_corrupt_data_error(dirs):
    payload = _enwik_like(20_000)
    spec = _zip_spec(dirs[0], payload)
    path = dirs[0] / "enwik8.zip"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(CorruptDataError, match="truncated"):
        load_corpus(spec, offline=True)


def test_corrupted_bytes_inside_the_archive_are_a_corrupt_data_error(dirs):
    payload = _enwik_like(20_000)
    spec = _zip_spec(dirs[0], payload)
    path = dirs[0] / "enwik8.zip"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, one byte of the deflate stream flipped
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptDataError):
        load_corpus(spec, offline=True)


def test_checksum_mismatch_is_a_corrupt_data_error(dirs):
    payload = _enwik_like(5_000)
    spec = _zip_spec(dirs[0], payload)
    bad = CorpusSpec(**{**spec.__dict__, "digest": "sha1:" + "0" * 40})
    with pytest.raises(CorruptDataError, match="checksum"):
        load_corpus(bad, offline=True)


def test_plain_text_of_the_wrong_size_is_rejected(dirs):
    text = b"hello world\n" * 200
    (dirs[0] / "small.txt").write_bytes(text[:-5])
    spec = CorpusSpec("small", "small.txt", "http://example.invalid", len(text), file_digest(text, "sha256"), (0.9, 0.1))
    with pytest.raises(CorruptDataError, match=f"{len(text):,} bytes"):
        load_corpus(spec, offline=True)


def test_offline_without_a_file_says_which_file_goes_where(dirs):
    spec = _zip_spec(dirs[0], _enwik_like(5_000))
    (dirs[0] / "enwik8.zip").unlink()
    with pytest.raises(MissingResourceError, match=r"enwik8\.zip.*ATTNBOOK_DATA_DIR"):
        load_corpus(spec, offline=True)


def test_download_verifies_then_renames(dirs, tmp_path):
    text = b"To be, or not to be: that is the question.\n" * 100
    source = tmp_path / "remote.txt"
    source.write_bytes(text)
    spec = CorpusSpec("remote", "remote.txt", source.as_uri(), len(text), file_digest(text, "sha256"), (0.9, 0.1))
    c = load_corpus(spec)  # nothing local: downloaded into <cache>/data
    assert (dirs[1] / "data" / "remote.txt").read_bytes() == text
    assert c.decode(np.concatenate([c.train, c.val])) == text.decode()
    assert (len(c.train), len(c.val)) == (int(0.9 * len(text)), len(text) - int(0.9 * len(text)))


def test_corrupt_download_leaves_nothing_behind(dirs, tmp_path):
    text = b"abc" * 1000
    source = tmp_path / "remote.txt"
    source.write_bytes(text + b"x")
    spec = CorpusSpec("remote", "remote.txt", source.as_uri(), len(text), file_digest(text, "sha256"), (0.9, 0.1))
    with pytest.raises(CorruptDataError):
        data.download(spec)
    assert not list((dirs[1] / "data").iterdir())


def test_failed_download_is_a_missing_resource_error(dirs, tmp_path):
    spec = CorpusSpec("remote", "remote.txt", (tmp_path / "absent.txt").as_uri(), 10, "sha256:" + "0" * 64, (0.9, 0.1))
    with pytest.raises(MissingResourceError, match="remote.txt"):
        load_corpus(spec)


def test_prefix_mode_uses_the_prefix_copy_and_checks_it(dirs):
    full = b"the quick brown fox jumps over the lazy dog " * 500
    prefix = full[:10_000]
    (dirs[0] / "t8_prefix.txt").write_bytes(prefix)
    spec = CorpusSpec("t8", "t8.zip", "http://example.invalid", len(full), file_digest(full, "sha256"), (0.9, 0.05, 0.05),
                      member="t8", archive_size=1, prefix_file="t8_prefix.txt", prefix_size=len(prefix),
                      prefix_digest=file_digest(prefix, "sha256"))
    c = load_corpus(spec, prefix=8_000, offline=True)
    assert (len(c.train), len(c.val), len(c.test)) == (7_200, 400, 400) and c.source == "t8_prefix.txt"
    with pytest.raises(MissingResourceError):
        load_corpus(spec, offline=True)  # the whole corpus is not there
    (dirs[0] / "t8_prefix.txt").write_bytes(prefix[:-1] + b"!")
    with pytest.raises(CorruptDataError):
        load_corpus(spec, prefix=8_000, offline=True)


def test_unknown_dataset_and_bad_prefix_are_invalid_input():
    with pytest.raises(InvalidInputError, match="dataset: expected one of"):
        load_corpus("wikitext")
    with pytest.raises(InvalidInputError, match="prefix"):
        load_corpus("text8", prefix=10)


def test_characters_outside_the_vocabulary_are_refused(dirs):
    text = b"abcabcabc\n" * 200
    (dirs[0] / "abc.txt").write_bytes(text)
    spec = CorpusSpec("abc", "abc.txt", "http://example.invalid", len(text), file_digest(text, "sha256"), (0.9, 0.1))
    c = load_corpus(spec, offline=True)
    with pytest.raises(InvalidInputError, match="outside it: 'z'"):
        c.encode("abz")


@settings(max_examples=30, deadline=None)
@given(st.text(alphabet="abc \n", min_size=0, max_size=50))
def test_encode_decode_round_trip(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("rt")
    base = b"abc \n" * 300
    (folder / "abc.txt").write_bytes(base)
    import os

    old = os.environ.get("ATTNBOOK_DATA_DIR")
    os.environ["ATTNBOOK_DATA_DIR"] = str(folder)
    try:
        spec = CorpusSpec("abc", "abc.txt", "http://example.invalid", len(base), file_digest(base, "sha256"), (0.9, 0.1))
        c = load_corpus(spec, offline=True)
    finally:
        if old is None:
            os.environ.pop("ATTNBOOK_DATA_DIR")
        else:
            os.environ["ATTNBOOK_DATA_DIR"] = old
    assert c.decode(c.encode(text)) == text


@pytest.mark.skipif(not (SHARED / "tinyshakespeare.txt").is_file(), reason="shared data folder not beside the checkout")
def test_tinyshakespeare_is_prepared_as_nanogpt(monkeypatch):
    monkeypatch.setenv("ATTNBOOK_DATA_DIR", str(SHARED))
    c = load_corpus("tinyshakespeare", offline=True)
    assert c.vocab_size == 65 and (len(c.train), len(c.val)) == (1_003_854, 111_540) and c.test is None


@pytest.mark.skipif(not (SHARED / "text8_prefix.txt").is_file(), reason="shared data folder not beside the checkout")
def test_text8_prefix_copy_is_verified(monkeypatch):
    monkeypatch.setenv("ATTNBOOK_DATA_DIR", str(SHARED))
    c = load_corpus("text8", prefix=12_500_000, offline=True)
    assert c.vocab_size == 27 and (len(c.train), len(c.val), len(c.test)) == (11_250_000, 625_000, 625_000)
    with pytest.raises(MissingResourceError, match="text8.zip"):
        load_corpus("text8", offline=True)  # the full corpus is not in the shared folder
