"""Intake's pure rules: references, the applicant's statuses, screening at the door,
documents, idempotency and the licence's shipments as the applicant sees them."""

from __future__ import annotations

import codecs
import hashlib
import hmac
import json
import re
import unicodedata
import zipfile
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, BinaryIO

import filetype

from shared.applications import ApplicationBody
from shared.controlled_goods import ControlledGoods
from shared.documents import DOCUMENT_TYPES
from shared.i18n import N_, Message

# The applicant sees the case's state under the protocol's own names (PROTOCOL.md, states).
INITIAL_STATUS = "submitted"
TERMINAL_STATUSES = frozenset({"approved", "refused", "not_admitted", "withdrawn", "lapsed"})
STATUSES = (
    "submitted",
    "eu_screening",
    "awaiting_applicant",
    "queued",
    "cn_review",
    "joint_review",
    *sorted(TERMINAL_STATUSES),
)
# A company registers a MOFCOM application number once while its application is live. An
# application that ended without a decision on its merits releases the number, so the
# company may register it again (corrected, say); an approved or refused one keeps it, since
# MOFCOM decided that number (a new filing there gets a new number).
RELEASING_STATUSES = frozenset({"withdrawn", "not_admitted", "lapsed"})


class DocumentKind(StrEnum):
    end_user_statement = "end_user_statement"
    contract = "contract"
    technical_specification = "technical_specification"
    mofcom_acceptance = "mofcom_acceptance"
    invoice = "invoice"
    answer_attachment = "answer_attachment"
    other = "other"


# Content types accepted for documents, decided from the bytes, never from the name.
ALLOWED_DOCUMENT_TYPES = DOCUMENT_TYPES


class References:
    """The human reference of an application: `REC-<year>-<8 digits>`, from its number.

    The number is a counter (it orders an applicant's list), so the reference is not: its
    digits are a keyed permutation of the counter (a Feistel network over 10^8 values with
    HMAC-SHA256 rounds), so nobody without the key can tell from references how many
    applications the channel holds. A permutation never repeats a value, so no uniqueness
    retry is needed, and the earlier sequential references (six or seven digits) can never
    equal an eight-digit one: they stay valid as they were stored.
    """

    HALF = 10_000  # the two halves of the eight digits
    ROUNDS = 8
    SPAN = HALF * HALF

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"reechannel reference numbers", "sha256").digest()

    def _round(self, index: int, half: int) -> int:
        mac = hmac.new(self._key, f"{index}:{half}".encode(), "sha256").digest()
        return int.from_bytes(mac[:8], "big") % self.HALF

    def digits(self, number: int) -> str:
        high, low = divmod(number, self.SPAN)
        left, right = divmod(low, self.HALF)
        for index in range(self.ROUNDS):
            left, right = right, (left + self._round(index, right)) % self.HALF
        permuted = f"{left * self.HALF + right:08d}"
        # Past 10^8 applications the counter's higher digits lead (still one-to-one).
        return f"{high}{permuted}" if high else permuted

    def reference(self, year: int, number: int) -> str:
        return f"REC-{year}-{self.digits(number)}"


# A production stop date lies between yesterday (UTC: the applicant's today somewhere on
# Earth) and this many days ahead; further than that is no urgency (red-team finding F8).
PRODUCTION_STOP_MAX_DAYS_AHEAD = 5 * 366


def production_stop_problem(stop: date, today: date) -> Message | None:
    """Why a production stop date cannot be submitted on `today` (UTC), or None (a Message:
    the portal says it in the page's language)."""
    if stop < today - timedelta(days=1):
        return Message(N_("must not be in the past"))
    if stop > today + timedelta(days=PRODUCTION_STOP_MAX_DAYS_AHEAD):
        return Message(
            N_("must be at most %(days)s days ahead"), days=PRODUCTION_STOP_MAX_DAYS_AHEAD
        )
    return None


ScreeningError = dict[str, Any]


def screening_problems(
    body: ApplicationBody, today: date, goods: ControlledGoods
) -> list[ScreeningError]:
    """What refuses a valid body at the door on `today` (UTC), as validation errors: a
    production stop date out of range, goods that need no licence that day."""
    errors: list[ScreeningError] = []
    if body.urgency and body.urgency.production_stop_date:
        problem = production_stop_problem(body.urgency.production_stop_date, today)
        if problem is not None:
            where = ("body", "urgency", "production_stop_date")
            errors.append({"type": "value_error", "loc": where, "msg": problem})
    for index, line in enumerate(body.goods):
        problem = goods.problem(line.element, line.form, today)
        if problem is not None:
            field = "form" if line.form not in goods.forms_of(line.element) else "element"
            loc = ("body", "goods", index, field)
            errors.append({"type": "value_error", "loc": loc, "msg": problem})
    return errors


def with_shipment(
    licence: dict[str, Any] | None,
    number: str,
    shipment: dict[str, Any],
    remaining: list[dict[str, Any]],
    status: str,
    at: datetime,
) -> dict[str, Any]:
    """The licence with one more shipment (`{id, shipped_on, lines}`): each shipment once,
    by its id, in date order, the same day's in the order they were recorded (their events'
    order; a shipment seen again keeps its place); what remains, and the status, as of the
    latest event (events may arrive late); a revoked licence stays revoked."""
    projected = dict(licence or {"number": number})
    known = list(projected.get("shipments", []))
    if any(s.get("id") == shipment["id"] for s in known):
        shipments = [shipment if s.get("id") == shipment["id"] else s for s in known]
    else:
        shipments = [*known, shipment]
    # sorted() is stable: shipments of one day stay in the order they came.
    projected["shipments"] = sorted(shipments, key=lambda s: str(s["shipped_on"]))
    as_of = projected.get("remaining_as_of")
    if as_of is None or datetime.fromisoformat(as_of) <= at:
        projected["remaining"] = remaining
        projected["remaining_as_of"] = at.isoformat()
        if projected.get("status") != "revoked":
            projected["status"] = status
    return projected


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


class TextCheck:
    """Whether a whole upload is text, fed chunk by chunk: UTF-8 throughout and no NUL.

    The type is sniffed from the first 8 KiB; this reads the rest, so a file that starts as
    text cannot carry something else further on (red-team finding F18).
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.is_text = True

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if not self.is_text:
            return
        if b"\x00" in chunk:
            self.is_text = False
            return
        try:
            self._decoder.decode(chunk, final)
        except UnicodeDecodeError:
            self.is_text = False


_ZIP_MAIN_PART = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "word/document.xml",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xl/workbook.xml",
}
# How far from its end a PDF's last "%%EOF" may be (trailing line ends, a little padding).
PDF_EOF_WINDOW = 1024
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def structure_problem(content: BinaryIO, content_type: str) -> str | None:
    """Why an upload (a seekable file, read from its start) is not whole as the type its
    first bytes claim, or None.

    Cheap checks of the binary types' structure (finding F18): a PDF ends with `%%EOF`
    (within its last KiB), a PNG with its IEND chunk, a JPEG with its end-of-image marker,
    DOCX and XLSX are ZIP archives with `[Content_Types].xml` and their main part (read as a
    directory listing, nothing decompressed). TIFF is checked by its header only. Text is
    checked throughout while it arrives (`TextCheck`).
    """
    if content_type in _ZIP_MAIN_PART:
        try:
            with zipfile.ZipFile(content) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError):
            return "is not a readable Office (ZIP) file"
        if "[Content_Types].xml" not in names or _ZIP_MAIN_PART[content_type] not in names:
            return "is not a whole Office document"
        return None
    size = content.seek(0, 2)
    content.seek(max(0, size - PDF_EOF_WINDOW))
    tail = content.read()
    if content_type == "application/pdf" and b"%%EOF" not in tail:
        return "is not a whole PDF (no %%EOF at its end)"
    if content_type == "image/png" and not tail.endswith(PNG_END):
        return "is not a whole PNG (it does not end with IEND)"
    if content_type == "image/jpeg" and not tail.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return "is not a whole JPEG (no end-of-image marker)"
    return None


def safe_filename(name: str | None) -> str:
    """A display name with no path, no control characters and a bounded length."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return name[:200] or "document"
