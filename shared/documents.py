"""The document store: uploaded bytes by their SHA-256, written by intake and read by review.

Content-addressed: a document's key is the hex SHA-256 of its bytes, so two documents with the
same bytes share one copy, a key names its bytes for good, and a reader can check what it got.
`DocumentStore` is the whole interface either service uses, narrow enough for an
S3-compatible object store (a key per digest; put, get, head, delete). `FileDocumentStore`,
the default, keeps `<folder>/<first two hex digits>/<digest>` (the layout intake has always
written), where the folder is `REE_DOCUMENT_DIR` (default `<REE_DATA_DIR>/documents`).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from shared.config import CommonSettings

__all__ = [
    "DOCUMENT_TYPES",
    "INCOMING_PREFIX",
    "DigestMismatch",
    "DocumentMissing",
    "DocumentStore",
    "DocumentStoreError",
    "FileDocumentStore",
    "download_name",
    "open_store",
]

# The media types documents may have (sniffed from their bytes by intake) and the file
# extension a download of each is given, whatever name it was uploaded under.
DOCUMENT_TYPES = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/tiff": ".tif",
    "text/plain": ".txt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
}

# Files being written start so, and are no document yet (a backup leaves them out).
INCOMING_PREFIX = ".incoming-"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1024 * 1024


class DocumentStoreError(Exception):
    """The store cannot give or take the bytes asked for."""


class DocumentMissing(DocumentStoreError):
    """The store holds no bytes under this digest."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"no document bytes stored under {sha256}")
        self.sha256 = sha256


class DigestMismatch(DocumentStoreError):
    """Bytes that are not what their digest says: given to put, or found by get (corrupted)."""

    def __init__(self, sha256: str, actual: str) -> None:
        super().__init__(f"bytes stored as {sha256} hash to {actual}")
        self.sha256 = sha256
        self.actual = actual


class DocumentStore(Protocol):
    """Bytes by their SHA-256 (64 lower-case hex digits; anything else is a ValueError)."""

    def put(self, sha256: str, source: BinaryIO) -> None:
        """Keep the bytes `source` reads from its current position to its end under
        `sha256`, durably once this returns; DigestMismatch (nothing kept) if they are not
        those bytes. Putting bytes already there keeps one copy."""
        ...

    def get(self, sha256: str) -> bytes:
        """The bytes stored under `sha256`, checked against it: DocumentMissing if there are
        none, DigestMismatch if what is stored has changed."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> None:
        """Forget the bytes; nothing to do if there are none."""
        ...


def checked_digest(sha256: str) -> str:
    """The digest if it is one (it becomes a path or an object key: never `../`)."""
    if not _DIGEST.fullmatch(sha256):
        raise ValueError("a document key is 64 lower-case hex digits")
    return sha256


class FileDocumentStore:
    """Documents as files under one folder, written atomically and fsynced."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_of(self, sha256: str) -> Path:
        sha256 = checked_digest(sha256)
        return self.folder / sha256[:2] / sha256

    def put(self, sha256: str, source: BinaryIO) -> None:
        target = self.path_of(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        # Written beside its place and renamed over it: a reader sees all of it or none.
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=INCOMING_PREFIX)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise DigestMismatch(sha256, digest.hexdigest())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _sync_folder(target.parent)

    def get(self, sha256: str) -> bytes:
        try:
            content = self.path_of(sha256).read_bytes()
        except FileNotFoundError:
            raise DocumentMissing(sha256) from None
        actual = hashlib.sha256(content).hexdigest()
        if actual != sha256:
            raise DigestMismatch(sha256, actual)
        return content

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def delete(self, sha256: str) -> None:
        path = self.path_of(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make a rename or removal in `folder` durable (the entry lives in the folder)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_store(settings: CommonSettings) -> FileDocumentStore:
    """The document store the settings name."""
    return FileDocumentStore(settings.document_folder())


def download_name(filename: str, content_type: str) -> str:
    """The name a download is given: the uploaded name with the extension of its real type,
    so a file is never saved under an extension that makes it open as something else."""
    return Path(filename).stem + DOCUMENT_TYPES.get(content_type, "")
