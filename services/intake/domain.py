"""Intake's pure rules: references, the applicant's statuses, documents and idempotency."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from enum import StrEnum
from typing import Any

import filetype

# The applicant sees the case's state under the protocol's own names (PROTOCOL.md, states).
INITIAL_STATUS = "submitted"
TERMINAL_STATUSES = frozenset({"approved", "refused", "not_admitted", "withdrawn", "lapsed"})
AWAITING_APPLICANT = "awaiting_applicant"
STATUSES = (
    "submitted",
    "eu_screening",
    "awaiting_applicant",
    "queued",
    "cn_review",
    "joint_review",
    *sorted(TERMINAL_STATUSES),
)


class DocumentKind(StrEnum):
    end_user_statement = "end_user_statement"
    contract = "contract"
    technical_specification = "technical_specification"
    mofcom_acceptance = "mofcom_acceptance"
    invoice = "invoice"
    answer_attachment = "answer_attachment"
    other = "other"


# Content types accepted for documents, decided from the bytes, never from the name.
ALLOWED_DOCUMENT_TYPES = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/tiff": ".tif",
    "text/plain": ".txt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
}


def reference_for(year: int, number: int) -> str:
    return f"REC-{year}-{number:06d}"


def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES


def body_fingerprint(body: dict[str, Any]) -> str:
    """Same application content gives the same fingerprint, whatever the key order or spacing."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def sniff_content_type(head: bytes) -> str | None:
    """The document's type from its first bytes, or None when it is not an accepted type."""
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime if kind.mime in ALLOWED_DOCUMENT_TYPES else None
    if _looks_like_text(head):
        return "text/plain"
    return None


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sniffed window is still text.
        if exc.start < len(head) - 3:
            return False
    return True


def safe_filename(name: str | None) -> str:
    """A display name with no path, no control characters and a bounded length."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return name[:200] or "document"
