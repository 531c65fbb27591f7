"""`reechannel person notifications EMAIL` and `person language EMAIL LANG`: what a company's
staff member is e-mailed about and in which language, as notify's
`GET/PUT /v1/people/{id}/notifications` read and set them (the same rules, the same code)."""

from __future__ import annotations

from typing import Annotated

import typer

from reechannel.people import OPERATOR, JsonFlag, _attempt, _emit, _people
from services.notify.domain.payloads import PUBLIC_EVENT_TYPES
from shared.accounts.models import Person, PersonKind
from shared.config import CommonSettings
from shared.db import make_engine
from shared.directory import open_directory
from shared.i18n import LANGUAGES

Email = Annotated[str, typer.Argument(help="The person's e-mail address")]


def register(person_app: typer.Typer) -> None:
    """Add these commands to `reechannel person` (reechannel/cli.py calls this once)."""
    person_app.command("notifications")(person_notifications)
    person_app.command("language")(person_language)


def _staff(email: str) -> Person:
    person = _attempt(lambda: _people().find(email))
    if person is None or person.kind != PersonKind.staff or person.company_id is None:
        typer.echo(f"error: no company staff member has the address {email}", err=True)
        raise typer.Exit(2)
    return person


def _chosen(events: str | None, none: bool, every: bool) -> list[str] | None:
    """The event types asked for, or None to leave them; at most one way of asking."""
    if sum((events is not None, none, every)) > 1:
        raise typer.BadParameter("give one of --events, --none and --all")
    if none:
        return []
    if every:
        return sorted(PUBLIC_EVENT_TYPES)
    if events is None:
        return None
    return [e.strip() for e in events.split(",") if e.strip()]


def person_notifications(
    email: Email,
    events: Annotated[
        str | None, typer.Option("--events", help="Comma-separated event types to e-mail")
    ] = None,
    none: Annotated[bool, typer.Option("--none", help="No e-mail at all")] = False,
    every: Annotated[bool, typer.Option("--all", help="Every event type")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Print what a company's staff member is e-mailed about, or set it."""
    from services.notify import service  # loads notify's tables: not with the command line

    wanted = _chosen(events, none, every)
    person = _staff(email)
    assert person.company_id is not None
    notify = make_engine(CommonSettings(), "notify", pool_size=1)
    directory = open_directory().engine
    try:
        if wanted is None:
            choice = service.email_choice(notify, directory, person.company_id, person.id)
        else:
            choice = service.choose_email(notify, directory, person.company_id, person.id, wanted)
    except service.EndpointRefused as exc:
        for field, message in exc.errors:
            typer.echo(f"error: {field}: {message}", err=True)
        raise typer.Exit(2) from None
    finally:
        notify.dispose()
    _emit(
        as_json,
        {
            "person_id": choice.person_id,
            "email": choice.email,
            "event_types": choice.event_types,
            "language": choice.language,
        },
        [
            f"{choice.email} ({choice.language}) is e-mailed about:",
            *(f"  {t}" for t in choice.event_types),
        ]
        if choice.event_types
        else [f"{choice.email} is e-mailed about nothing"],
    )


def person_language(
    email: Email,
    language: Annotated[str, typer.Argument(help=" or ".join(LANGUAGES))],
    as_json: JsonFlag = False,
) -> None:
    """Set the language a person is e-mailed in (an official's: the console's too)."""
    people = _people()
    person = _attempt(lambda: people.find(email))
    if person is None:
        typer.echo(f"error: nobody has the address {email}", err=True)
        raise typer.Exit(2)
    tag = _attempt(lambda: people.set_language(person.id, language, by=OPERATOR))
    _emit(as_json, {"id": person.id, "language": tag}, [f"{email} is e-mailed in {tag}"])
