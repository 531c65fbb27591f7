"""Exceptions of the review domain and its service layer; services/review/problems.py maps
each to one HTTP status, in one place.

An error's message is a template with its particulars as parameters (marked N_ for the
console's catalogue): `str(error)` is the English text the API sends, a shared.i18n.Message
that remembers the template, so that a console page in another language says the same
refusal, particulars included (console/pages.py, "problem").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.i18n import N_, Message


@dataclass(frozen=True)
class FieldError:
    """One invalid input field: a dotted path (`licence.lines[0].line`) and why."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class ReviewDomainError(Exception):
    """Base of every rule violation the review domain reports."""

    def __init__(self, message: str = "", **params: object) -> None:
        self.message = Message(message, **params)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message  # the Message itself, which knows its template


class UnknownAction(ReviewDomainError):
    """The action name is not in the protocol (HTTP 422: the request names nothing valid)."""

    def __init__(self, action: str) -> None:
        super().__init__(N_("unknown action '%(action)s'"), action=action)
        self.action = action


class UnknownState(ReviewDomainError):
    """A state name is not in the protocol: a programming or data error, never user input."""

    def __init__(self, state: str) -> None:
        super().__init__("unknown state '%(state)s'", state=state)
        self.state = state


class ActionForbidden(ReviewDomainError):
    """The actor's side or role may not take this action at all (HTTP 403)."""

    def __init__(self, action: str, actor: str) -> None:
        super().__init__(N_("%(actor)s may not %(action)s"), actor=actor, action=action)
        self.action = action
        self.actor = actor


class ActionNotAllowedInState(ReviewDomainError):
    """The action exists and the actor may take it, but not in the case's state (HTTP 409)."""

    def __init__(self, action: str, state: str, detail: str | None = None) -> None:
        if detail is None:
            detail = Message(
                N_("%(action)s is not allowed in state '%(state)s'"), action=action, state=state
            )
        super().__init__(detail)
        self.action = action
        self.state = state


class ActionNotAllowedForTier(ActionNotAllowedInState):
    """The action is limited to some tiers (fast_track: P1 only); a 409 like a wrong state."""

    def __init__(self, action: str, state: str, tier: str | None, allowed: Iterable[str]) -> None:
        detail = Message(
            N_("%(action)s is only allowed for tier %(allowed)s, not %(tier)s"),
            action=action,
            allowed=", ".join(allowed),
            tier=tier or "none",
        )
        super().__init__(action, state, detail)
        self.tier = tier


class InvalidActionParameters(ReviewDomainError):
    """Parameters missing, mistyped or out of bounds (HTTP 422 with the field errors)."""

    def __init__(self, action: str, errors: Iterable[FieldError]) -> None:
        self.action = action
        self.errors: tuple[FieldError, ...] = tuple(errors)
        listed = "; ".join(f"{e.field}: {e.message}" for e in self.errors)
        # `errors` is not in the English text: a page says each field's message itself.
        super().__init__(
            N_("invalid parameters for %(action)s: %(listed)s"),
            action=action,
            listed=listed,
            errors=self.errors,
        )

    def as_dicts(self) -> list[dict[str, str]]:
        return [e.as_dict() for e in self.errors]


class InvalidProtocol(ReviewDomainError):
    """protocol.yaml does not describe a coherent protocol (raised on load)."""


class InvalidRuleSet(ReviewDomainError):
    """A priority rule set (packaged or a supervisor's draft) is malformed (HTTP 422)."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        listed = "; ".join(f"{e.field}: {e.message}" for e in self.errors)
        super().__init__(
            N_("invalid priority rules: %(listed)s"), listed=listed, errors=self.errors
        )

    def as_dicts(self) -> list[dict[str, str]]:
        return [e.as_dict() for e in self.errors]


class InvalidLicence(InvalidActionParameters):
    """The licence given with `approve` breaks a licence rule (HTTP 422 like bad parameters)."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        super().__init__("approve", errors)


class LicenceNotActive(ReviewDomainError):
    """A shipment was drawn on a licence that is expired, revoked, exhausted or not yet valid
    (HTTP 409)."""

    def __init__(self, number: str, status: str, detail: str) -> None:
        super().__init__(
            N_("licence %(number)s is %(status)s: %(detail)s"),
            number=number,
            status=status,
            detail=detail,
        )
        self.number = number
        self.status = status


class InvalidShipment(ReviewDomainError):
    """A shipment line names no line or element of the licence, or a bad quantity (HTTP 422)."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        listed = "; ".join(f"{e.field}: {e.message}" for e in self.errors)
        # `errors` is not in the English text: a page says each field's message itself.
        super().__init__(N_("invalid shipment: %(listed)s"), listed=listed, errors=self.errors)

    def as_dicts(self) -> list[dict[str, str]]:
        return [e.as_dict() for e in self.errors]


class QuantityExceeded(ReviewDomainError):
    """A shipment would draw more than remains on the licence (HTTP 409); nothing is drawn."""

    def __init__(self, number: str, excesses: Iterable[QuantityExcess]) -> None:
        self.number = number
        self.excesses: tuple[QuantityExcess, ...] = tuple(excesses)
        listed = "; ".join(e.message for e in self.excesses)
        # `excesses` is not in the English text: a page says each excess itself.
        super().__init__(
            N_("shipment exceeds licence %(number)s: %(listed)s"),
            number=number,
            listed=listed,
            excesses=self.excesses,
        )


@dataclass(frozen=True)
class QuantityExcess:
    """How one line (`line 2`) or element (`Dy`) of a shipment exceeds what remains;
    `line` is the line's number when the key names a line."""

    key: str
    requested_kg: str
    remaining_kg: str
    line: int | None = None

    @property
    def message(self) -> Message:
        """The excess in words ("line 2: asked 5 kg, 3 kg remaining"), as a template."""
        if self.line is not None:
            return Message(
                N_("line %(line)s: asked %(requested_kg)s kg, %(remaining_kg)s kg remaining"),
                line=self.line,
                requested_kg=self.requested_kg,
                remaining_kg=self.remaining_kg,
            )
        return Message(
            N_("%(element)s: asked %(requested_kg)s kg, %(remaining_kg)s kg remaining"),
            element=self.key,
            requested_kg=self.requested_kg,
            remaining_kg=self.remaining_kg,
        )


# --- errors of the service layer (casework) ------------------------------------------------


class CaseNotFound(ReviewDomainError):
    """No such case, or one the caller's side may not see: the two look alike (HTTP 404)."""

    def __init__(self) -> None:
        super().__init__(N_("No such case."))


class DocumentNotFound(ReviewDomainError):
    """No such document of the case, or one the caller's side may not open, or its case not
    visible to the side: all alike (HTTP 404, one body), so ids cannot be probed."""

    def __init__(self) -> None:
        super().__init__(N_("No such document."))


class StaleCase(ReviewDomainError):
    """The case changed since the caller read its version; nothing was done (HTTP 409)."""

    def __init__(self) -> None:
        super().__init__(N_("The case has changed since you read it; reload and try again."))


class CaseConflict(ReviewDomainError):
    """The request contradicts what is stored: a licence number in use, a case not queued, a
    licence revoked already (HTTP 409)."""


class NotPermitted(ReviewDomainError):
    """The official lacks one of the protocol's permissions (HTTP 403); `permission` names it."""

    def __init__(self, permission: str, detail: str) -> None:
        super().__init__(detail)
        self.permission = permission


class InvalidAssignee(ReviewDomainError):
    """The official a case is assigned to cannot take it (HTTP 422 with the field errors)."""

    def __init__(self, detail: str, errors: Iterable[FieldError]) -> None:
        super().__init__(detail)
        self.errors: tuple[FieldError, ...] = tuple(errors)

    def as_dicts(self) -> list[dict[str, str]]:
        return [e.as_dict() for e in self.errors]


class ProposalNotFound(ReviewDomainError):
    """No such proposal on the case, or one of the other side's: the two look alike (HTTP 404)."""

    def __init__(self) -> None:
        super().__init__(N_("No such proposal on this case."))


class ProposalClosed(ReviewDomainError):
    """The proposal was countersigned, rejected, withdrawn or superseded already (HTTP 409)."""

    def __init__(self, status: str) -> None:
        super().__init__(N_("The proposal is %(status)s already; nothing was done."), status=status)
        self.status = status


class ProposalPending(ActionNotAllowedInState):
    """A proposal awaits countersignature on the case; a second one waits for it (HTTP 409)."""

    def __init__(self, action: str, state: str) -> None:
        super().__init__(
            action,
            state,
            N_(
                "A proposal awaits countersignature on this case; "
                "countersign, reject or withdraw it first."
            ),
        )
