"""Handing a stored document out over HTTP: its bytes checked, as an attachment that a
browser saves and never renders (intake's and review's document routes)."""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any
from urllib.parse import quote

from fastapi.responses import Response

from shared.documents import DOCUMENT_TYPES, DocumentStore, DocumentStoreError
from shared.problems import Problem

__all__ = ["ATTACHMENT", "attachment", "content_disposition", "read_document"]

log = logging.getLogger(__name__)

# What the plain `filename` parameter keeps: letters, digits and a few marks that no browser
# or file system reads anything into (no quotes, backslashes, percent signs or semicolons).
_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()+,=@~-]")


# OpenAPI `responses` of a route that answers with `attachment`.
ATTACHMENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The document's bytes as an attachment, typed by their content",
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in DOCUMENT_TYPES},
    }
}


def read_document(store: DocumentStore, sha256: str) -> bytes:
    """The document's bytes as stored, or a 500 problem when the store lacks them or they
    changed: the caller never gets bytes other than the ones the digest names."""
    try:
        return store.get(sha256)
    except DocumentStoreError as exc:
        log.error("document %s cannot be handed out: %s", sha256, exc)
        raise Problem(
            500,
            "Internal error",
            "The document's stored bytes cannot be read; the operators have been told.",
            type_="document-unavailable",
        ) from exc


def content_disposition(filename: str) -> str:
    """`attachment` with the name twice (RFC 6266): an ASCII `filename` for old clients and
    the exact name, percent-encoded UTF-8, as `filename*`, which current browsers take."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    stem, dot, extension = _UNSAFE.sub("_", ascii_name).rpartition(".")
    if not dot:
        stem, extension = extension, ""
    # A name of other scripts keeps its extension: "合同.pdf" is saved as "document.pdf".
    plain = (stem.strip(" .") or "document") + (f".{extension}" if extension else "")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def attachment(content: bytes, filename: str, media_type: str) -> Response:
    """The bytes as a download: the sniffed type (never guessed by the browser: nosniff),
    saved under `filename`, kept in no cache."""
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": content_disposition(filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
