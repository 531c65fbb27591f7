"""The people a company's e-mail goes to: one e-mail endpoint per staff member.

A person is a row of the directory's `people` (shared/accounts/); their e-mail endpoint is
notify's, with the event types they chose (`DEFAULT_EMAIL_TYPES` until they choose). The
endpoints are kept in step with the people when the company's messages arrive, in the
consumer's transaction, just before the messages are scheduled (`keep_in_step`): a new
colleague is written to from their company's next event on, a disabled one no longer, and
an address that changed is the one used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.notify.domain.payloads import DEFAULT_EMAIL_TYPES
from services.notify.store.queries import cancel_pending
from services.notify.store.tables import ACTIVE, EMAIL, ENDPOINTS, WebhookEndpoint, new_id
from shared.accounts.models import Person, PersonKind

MAILTO = "mailto:"


@dataclass(frozen=True)
class Recipient:
    """A company's staff member as the directory holds them."""

    person_id: str
    company_id: str
    email: str
    enabled: bool
    # The language the person is e-mailed in (shared/i18n.py's LANGUAGES).
    language: str = "en"

    @property
    def url(self) -> str:
        return MAILTO + self.email


def staff_of(directory: Engine, company_ids: Iterable[str]) -> list[Recipient]:
    """The staff members of these companies (disabled ones too: their endpoints go)."""
    wanted = sorted(set(company_ids))
    if not wanted:
        return []
    query = select(Person).where(
        Person.kind == PersonKind.staff.value, col(Person.company_id).in_(wanted)
    )
    with Session(directory) as session:
        return [_recipient(p) for p in session.exec(query).all()]


def staff_member(directory: Engine, company_id: str, person_id: str) -> Recipient | None:
    """The company's staff member, or None (another company's person is as if absent)."""
    with Session(directory) as session:
        person = session.get(Person, person_id)
    if person is None or person.kind != PersonKind.staff.value or person.company_id != company_id:
        return None
    return _recipient(person)


def _recipient(person: Person) -> Recipient:
    assert person.company_id is not None
    return Recipient(
        person.id, person.company_id, person.email, person.disabled_at is None, person.language
    )


def language_of(directory: Engine, email: str) -> str | None:
    """The language a staff member of this address is e-mailed in (None: nobody's)."""
    with Session(directory) as session:
        person = session.exec(select(Person).where(Person.email == email)).first()
    return None if person is None else person.language


def keep_in_step(
    session: Session, company_ids: Iterable[str], people: list[Recipient], now: datetime
) -> None:
    """Make the companies' e-mail endpoints those of their enabled staff members."""
    wanted = sorted(set(company_ids))
    if not wanted:
        return
    rows = session.exec(
        select(WebhookEndpoint).where(
            WebhookEndpoint.channel == EMAIL, col(WebhookEndpoint.company_id).in_(wanted)
        )
    ).all()
    existing = {row.person_id: row for row in rows}
    for person in people:
        row = existing.pop(person.person_id, None)
        if row is None:
            if person.enabled:
                add_email_endpoint(session, person, sorted(DEFAULT_EMAIL_TYPES), now)
        elif not person.enabled:
            _end(session, row, now)
        elif row.deleted_at is not None or row.url != person.url:
            row.deleted_at, row.url, row.updated_at = None, person.url, now
            session.add(row)
    for row in existing.values():  # no longer the company's staff
        _end(session, row, now)
    session.flush()


def _end(session: Session, row: WebhookEndpoint, now: datetime) -> None:
    if row.deleted_at is None:
        row.deleted_at = row.updated_at = now
        session.add(row)
        cancel_pending(session, row.id, now)


def add_email_endpoint(
    session: Session, person: Recipient, event_types: list[str], now: datetime
) -> None:
    """The person's e-mail endpoint, unless another transaction wrote it first."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {
        "id": new_id(),
        "company_id": person.company_id,
        "channel": EMAIL,
        "person_id": person.person_id,
        "url": person.url,
        "event_types": event_types,
        "secret": "",
        "status": ACTIVE,
        "created_at": now,
        "updated_at": now,
    }
    # Two consumers (intake's stream, review's) may meet a new colleague at once.
    insert = dialect.insert(ENDPOINTS).values(values)
    session.execute(insert.on_conflict_do_nothing(index_elements=["person_id"]))


def email_endpoint(session: Session, person_id: str) -> WebhookEndpoint | None:
    return session.exec(
        select(WebhookEndpoint).where(WebhookEndpoint.person_id == person_id)
    ).first()


def choose(
    session: Session, person: Recipient, event_types: list[str], now: datetime
) -> WebhookEndpoint:
    """Set what the person is e-mailed about; an empty list: nothing."""
    add_email_endpoint(session, person, event_types, now)
    session.execute(
        update(WebhookEndpoint)
        .where(col(WebhookEndpoint.person_id) == person.person_id)
        .values(event_types=event_types, url=person.url, updated_at=now)
    )
    row = email_endpoint(session, person.person_id)
    assert row is not None
    session.refresh(row)
    return row
