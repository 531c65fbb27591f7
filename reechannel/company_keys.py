"""`reechannel company key create|list|revoke`: an operator manages a company's API keys,
through the same rules as a company's admin in the portal (shared/accounts/company.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from reechannel.people import JsonFlag, _attempt, _emit
from shared.accounts.company import OPERATOR, ApiKey, CompanyAdmin
from shared.accounts.invitations import Invitations
from shared.accounts.passwords import Passwords
from shared.accounts.people import People
from shared.accounts.sessions import Sessions
from shared.directory import open_directory

key_app = typer.Typer(
    help="A company's named API keys: create (shown once), list, revoke.", no_args_is_help=True
)
CompanyId = Annotated[str, typer.Argument(help="The company's id")]


def register(company_app: typer.Typer) -> None:
    """Add `reechannel company key ...` (reechannel/cli.py calls this once)."""
    company_app.add_typer(key_app, name="key")


def _admin() -> CompanyAdmin:
    engine = open_directory().engine
    sessions = Sessions(engine)
    return CompanyAdmin(
        engine, People(engine, sessions), Invitations(engine, Passwords(), sessions)
    )


def _line(key: ApiKey) -> str:
    state = "live" if key.live else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
    return f"{key.id}  {key.created_at:%Y-%m-%d %H:%M}  {state}  {key.name or '(no name)'}"


@key_app.command("create")
def key_create(
    company_id: CompanyId,
    name: Annotated[str, typer.Option(help="What the key is for (1-100 characters, unique)")],
    as_json: JsonFlag = False,
) -> None:
    """Create a named API key for the company; prints it once (only its hash is kept)."""
    key, secret = _attempt(lambda: _admin().create_key(OPERATOR, company_id, name))
    _emit(
        as_json,
        {**key.as_dict(), "api_key": secret},
        [f"key id:  {key.id}", f"api key: {secret}", "(the key is shown only once)"],
    )


@key_app.command("list")
def key_list(
    company_id: CompanyId,
    revoked: Annotated[bool, typer.Option("--revoked", help="Revoked keys too")] = False,
    as_json: JsonFlag = False,
) -> None:
    """The company's keys, newest first: id, created, state and name (never the secret)."""
    keys = _attempt(lambda: _admin().keys(OPERATOR, company_id, revoked=revoked))
    _emit(as_json, {"keys": [k.as_dict() for k in keys]}, [_line(k) for k in keys] or ["no keys"])


@key_app.command("revoke")
def key_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `company key list`)")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke an API key; every service refuses it from its next request.

    A key revoked already, or no API key, is an error (exit status 2)."""
    key = _attempt(lambda: _admin().revoke_key(OPERATOR, key_id))
    _emit(as_json, key.as_dict(), [f"revoked {key.id} ({key.name or 'no name'})"])
