"""What intake's service layer refuses: each error maps to one problem type
(`services.intake.api.install_errors`), its message the problem's detail; the portal shows
the same problem as a page."""

from __future__ import annotations

from services.intake import domain

__all__ = [
    "EmptyDocument",
    "IntakeError",
    "InvalidField",
    "NotFound",
    "NumberRegistered",
    "StateConflict",
    "StorageLimit",
    "UnsupportedDocument",
]


class IntakeError(Exception):
    """Base of every refusal of intake's service layer; each maps to one problem type, its
    message the problem's detail."""


class NotFound(IntakeError):
    """No such object, or another company's (which is as if absent)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"No such {what}.")
        self.what = what


class StateConflict(IntakeError):
    """The object's current state does not allow this (already decided, answered, referred to)."""

    def __init__(self, detail: str, kind: str | None = None) -> None:
        super().__init__(detail)
        self.kind = kind


class NumberRegistered(StateConflict):
    """The company registered this MOFCOM application number already, and holds it."""

    def __init__(self, mofcom_number: str, reference: str, status: str) -> None:
        super().__init__(
            f"MOFCOM application number {mofcom_number} is registered already as "
            f"{reference} ({status}). A number is registered again only after its "
            "application was withdrawn, not admitted or lapsed.",
            kind="mofcom-number-registered",
        )
        self.reference = reference


class InvalidField(IntakeError):
    """One field of the request names something that cannot be (not this application's)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__("The request is not valid.")
        self.field = field
        self.message = message


class StorageLimit(IntakeError):
    """A document would exceed a limit: its own size, the count or the bytes allowed."""

    def __init__(self, detail: str, kind: str = "payload-too-large") -> None:
        super().__init__(detail)
        self.kind = kind


class UnsupportedDocument(IntakeError):
    """The file is of no accepted type, or not wholly what it starts as."""

    def __init__(self, reason: str | None = None) -> None:
        accepted = "Accepted: " + ", ".join(sorted(domain.ALLOWED_DOCUMENT_TYPES))
        super().__init__(f"The file {reason}. {accepted}" if reason else accepted)


class EmptyDocument(InvalidField):
    def __init__(self) -> None:
        super().__init__("file", "the file is empty")
