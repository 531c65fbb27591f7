"""Who acts on a case, as the protocol engine decides and the audit trail records it."""

from __future__ import annotations

from dataclasses import dataclass

from services.review.domain.protocol import Actor
from shared.directory import Principal

__all__ = ["APPLICANT", "SYSTEM", "SYSTEM_WHO", "Who", "applicant_who"]

SYSTEM = Actor("system", None)
APPLICANT = Actor("applicant", None)


@dataclass(frozen=True)
class Who:
    """Who acts, as the audit records it."""

    id: str
    side: str
    role: str | None
    name: str = ""

    @property
    def actor(self) -> Actor:
        return Actor(self.side, self.role)  # type: ignore[arg-type]

    @classmethod
    def official(cls, principal: Principal) -> Who:
        assert principal.side is not None and principal.role is not None
        return cls(principal.subject_id, principal.side.value, principal.role.value, principal.name)


SYSTEM_WHO = Who("system", "system", None, "REE Channel")


def applicant_who(company_id: str) -> Who:
    return Who(company_id, "applicant", None)
