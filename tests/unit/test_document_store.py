"""The content-addressed document store on a real folder, and how a download is named."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from urllib.parse import unquote

import pytest

from shared.config import CommonSettings
from shared.documents import (
    DigestMismatch,
    DocumentMissing,
    FileDocumentStore,
    download_name,
    open_store,
)
from shared.downloads import content_disposition

CONTENT = b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n"
SHA = hashlib.sha256(CONTENT).hexdigest()


def test_bytes_are_kept_under_their_digest_in_the_layout_intake_always_wrote(
    tmp_path: Path,
) -> None:
    store = FileDocumentStore(tmp_path)
    assert not store.exists(SHA)
    store.put(SHA, io.BytesIO(CONTENT))
    assert (tmp_path / SHA[:2] / SHA).read_bytes() == CONTENT
    assert store.exists(SHA) and store.get(SHA) == CONTENT
    store.put(SHA, io.BytesIO(CONTENT))
    assert [p.name for p in (tmp_path / SHA[:2]).iterdir()] == [SHA], "one copy, no leftovers"
    store.delete(SHA)
    assert not store.exists(SHA)
    store.delete(SHA)  # gone already: nothing to do


def test_bytes_that_are_not_their_digest_are_not_kept(tmp_path: Path) -> None:
    store = FileDocumentStore(tmp_path)
    with pytest.raises(DigestMismatch):
        store.put(SHA, io.BytesIO(CONTENT + b"tampered"))
    assert not store.exists(SHA)
    assert list((tmp_path / SHA[:2]).iterdir()) == [], "the partial file is removed"


def test_what_is_read_is_checked_against_its_digest(tmp_path: Path) -> None:
    store = FileDocumentStore(tmp_path)
    with pytest.raises(DocumentMissing):
        store.get(SHA)
    store.put(SHA, io.BytesIO(CONTENT))
    (tmp_path / SHA[:2] / SHA).write_bytes(CONTENT.replace(b"1 0", b"9 9"))
    with pytest.raises(DigestMismatch):
        store.get(SHA)


@pytest.mark.parametrize("key", ["../" + SHA[3:], SHA.upper(), SHA[:-1], "", SHA + "0"])
def test_only_a_digest_is_a_key(tmp_path: Path, key: str) -> None:
    store = FileDocumentStore(tmp_path)
    for call in (store.exists, store.get, store.delete):
        with pytest.raises(ValueError):
            call(key)
    with pytest.raises(ValueError):
        store.put(key, io.BytesIO(CONTENT))


def test_the_store_is_where_the_settings_say(tmp_path: Path) -> None:
    default = CommonSettings(REE_DATA_DIR=str(tmp_path / "data"))
    assert open_store(default).folder == tmp_path / "data" / "documents"
    moved = CommonSettings(
        REE_DATA_DIR=str(tmp_path / "data"), REE_DOCUMENT_DIR=str(tmp_path / "d")
    )
    assert open_store(moved).folder == tmp_path / "d"


def test_a_download_is_named_by_its_real_type() -> None:
    assert download_name("scan.pdf", "image/png") == "scan.png"
    assert download_name("Vertrag", "application/pdf") == "Vertrag.pdf"
    assert download_name("notes.html", "text/plain") == "notes.txt"


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("contract.pdf", "contract.pdf"),
        ("Größe Vertrag.pdf", "Groe Vertrag.pdf"),
        ("合同.pdf", "document.pdf"),
        ('a"; filename=evil.exe', "a__ filename=evil.exe"),
        ("100%.txt", "100_.txt"),
    ],
)
def test_the_disposition_is_an_attachment_with_a_plain_and_an_exact_name(
    name: str, plain: str
) -> None:
    header = content_disposition(name)
    disposition, plain_part, exact_part = header.split("; ")
    assert disposition == "attachment"
    assert plain_part == f'filename="{plain}"'
    assert exact_part.startswith("filename*=UTF-8''")
    assert unquote(exact_part.removeprefix("filename*=UTF-8''")) == name
