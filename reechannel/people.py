"""`reechannel official invite`, `company invite`, `person disable|enable|role` and
`people audit`: the operator's side of personal accounts (shared/accounts/)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer

from shared.accounts import audit
from shared.accounts.errors import AccountError
from shared.accounts.invitations import Invitations, Link, LinkSettings
from shared.accounts.mail import INVITATION_SUBJECT, invitation_text, send_link_blocking
from shared.accounts.passwords import Passwords
from shared.accounts.people import People
from shared.accounts.sessions import Sessions
from shared.directory import open_directory
from shared.mail import MailSettings

people_app = typer.Typer(help="The audit of people's accounts.", no_args_is_help=True)
person_app = typer.Typer(help="One person's account.", no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object")]
PersonId = Annotated[str, typer.Argument(help="The person's id")]
NewRole = Annotated[str, typer.Argument(help="officer|supervisor, or admin|member")]
OPERATOR = "operator:cli"
T = TypeVar("T")
LIFETIME = re.compile(r"^(\d+)([dh]?)$")


def register(app: typer.Typer, official_app: typer.Typer, company_app: typer.Typer) -> None:
    """Add these commands to `reechannel` (reechannel/cli.py calls this once)."""
    official_app.command("invite")(official_invite)
    company_app.command("invite")(company_invite)
    app.add_typer(person_app, name="person")
    app.add_typer(people_app, name="people")


def parse_lifetime(text: str) -> timedelta:
    """`90d`, `12h` or a number of days; for `official create --expires-in`."""
    found = LIFETIME.match(text.strip().lower())
    if not found or int(found.group(1)) == 0:
        raise typer.BadParameter("a lifetime is a positive number of days (90d) or hours (12h)")
    amount = int(found.group(1))
    lifetime = timedelta(hours=amount) if found.group(2) == "h" else timedelta(days=amount)
    if lifetime > timedelta(days=3660):
        raise typer.BadParameter("at most ten years")
    return lifetime


def _emit(as_json: bool, payload: dict[str, Any], lines: list[str]) -> None:
    from reechannel import cli

    cli._emit(as_json, payload, lines)


def _attempt(call: Callable[[], T]) -> T:
    """What `call` returns; a refusal (AccountError) is printed and exits with status 2."""
    try:
        return call()
    except AccountError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _invitations() -> Invitations:
    engine = open_directory().engine
    return Invitations(engine, Passwords(), Sessions(engine))


def _people() -> People:
    engine = open_directory().engine
    return People(engine, Sessions(engine))


def _deliver(link: Link, as_json: bool) -> None:
    """E-mail the link where SMTP is configured; print it otherwise (and in --json)."""
    invitation = link.invitation
    url = link.url(LinkSettings())
    mail = MailSettings()
    sent = False
    if mail.smtp_url:
        text = invitation_text(invitation, url)
        send_link_blocking(mail, invitation.email, INVITATION_SUBJECT, text)
        sent = True
    payload = {
        "invitation_id": invitation.id,
        "email": invitation.email,
        "role": invitation.role,
        "expires_at": invitation.expires_at.isoformat(),
        "emailed": sent,
    }
    if not sent:
        payload["link"] = url
    _emit(
        as_json,
        payload,
        [f"invitation sent to {invitation.email}"]
        if sent
        else [f"invitation link for {invitation.email} (works once, 7 days):", url],
    )


def official_invite(
    email: Annotated[str, typer.Option(help="Their e-mail address")],
    side: Annotated[str, typer.Option(help="EU or CN")],
    role: Annotated[str, typer.Option(help="officer or supervisor")],
    name: Annotated[str | None, typer.Option(help="Full name [default: from the e-mail]")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Invite an official: a single-use link to set a password and a second factor."""
    who = name or email.partition("@")[0]
    link = _attempt(lambda: _invitations().invite_official(email, who, side, role, by=OPERATOR))
    _deliver(link, as_json)


def company_invite(
    company: Annotated[str, typer.Option(help="The company's id")],
    email: Annotated[str, typer.Option(help="Their e-mail address")],
    role: Annotated[str, typer.Option(help="admin or member")] = "admin",
    name: Annotated[str | None, typer.Option(help="Full name [default: from the e-mail]")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Invite a company's first admin, or another person of its staff; its admins then
    invite their colleagues themselves (in the portal, once it is wired)."""
    who = name or email.partition("@")[0]
    link = _attempt(lambda: _invitations().invite_staff(company, email, who, role, by=OPERATOR))
    _deliver(link, as_json)


@person_app.command("disable")
def person_disable(person_id: PersonId, as_json: JsonFlag = False) -> None:
    """Disable a person: every session of theirs ends at once, in every service."""
    ended = _attempt(lambda: _people().disable(person_id, by=OPERATOR))
    _emit(
        as_json,
        {"id": person_id, "disabled": True, "sessions_ended": ended},
        [f"disabled {person_id}; {ended} session(s) ended"],
    )


@person_app.command("enable")
def person_enable(person_id: PersonId, as_json: JsonFlag = False) -> None:
    """Enable a disabled person again (they sign in anew)."""
    _attempt(lambda: _people().enable(person_id, by=OPERATOR))
    _emit(as_json, {"id": person_id, "disabled": False}, [f"enabled {person_id}"])


@person_app.command("role")
def person_role(person_id: PersonId, role: NewRole, as_json: JsonFlag = False) -> None:
    """Change a person's role; their sessions end, so the next sign-in has the new one."""
    _attempt(lambda: _people().change_role(person_id, role, by=OPERATOR))
    _emit(as_json, {"id": person_id, "role": role}, [f"{person_id} is now {role}"])


@people_app.command("audit")
def people_audit(
    since: Annotated[
        datetime | None, typer.Option(help="Only from this time on (ISO 8601, UTC if no zone)")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Sign-ins, failures, sign-outs, invitations, resets, role changes: who, when, where."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    found = [audit.as_dict(e) for e in audit.events(open_directory().engine, since)]
    if as_json:
        typer.echo(json.dumps({"events": found}))
        return
    for event in found:
        typer.echo(
            "  ".join(
                str(event[k] or "-")
                for k in ("at", "action", "person_id", "email", "actor", "address", "detail")
            )
        )
    if not found:
        typer.echo("no events")
