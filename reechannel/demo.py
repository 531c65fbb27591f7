"""The demo's company (its API key and its first admin, who signs in to the portal with
e-mail and password) and officials for `make run`, in `.data/demo-credentials.json`, and
`reechannel totp code EMAIL`, the demo officials' authenticator app.

Each demo official is a person, made as any official is (an operator's invitation, accepted
with a password and a TOTP factor), and has a token for programs too: a newcomer signs in
to the console with the e-mail, the password and the code this command prints.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Annotated, Any

import pyotp
import typer

from shared.accounts.errors import Conflict
from shared.accounts.invitations import Answer, Invitations
from shared.accounts.passwords import Passwords
from shared.accounts.sessions import Sessions
from shared.accounts.totp import current_code, new_secret, provisioning_uri
from shared.config import CommonSettings
from shared.directory import Directory, InvalidCredential, open_directory

totp_app = typer.Typer(help="The demo officials' second factor.", no_args_is_help=True)
DEMO_OFFICIALS = (
    ("EU", "officer", "Eva Europa"),
    ("EU", "supervisor", "Erik Supervisor"),
    ("CN", "officer", "Chen Wei"),
    ("CN", "supervisor", "Li Na"),
)
DEMO_DOMAIN = "demo.ree.example"
BY = "operator:demo"


def demo_file(settings: CommonSettings) -> Path:
    return (settings.data_dir / "demo-credentials.json").resolve()


def demo_credentials(settings: CommonSettings) -> Path:
    """One company, and an officer and a supervisor per side; reused while they stay valid."""
    directory = open_directory(settings)
    path = demo_file(settings)
    if path.exists() and _still_valid(directory, json.loads(path.read_text())):
        return path
    suffix = str(int(time.time()))[-8:]
    company, key = directory.create_company("Demo Magnetics GmbH", f"DE{suffix}DEMO")
    officials = {
        f"{side.lower()}_{role}": _demo_official(directory, name, side, role, suffix)
        for side, role, name in DEMO_OFFICIALS
    }
    creds = {
        "applicant": {"company_id": company.id, "name": company.name, "api_key": key},
        "staff": _demo_staff(directory, company.id, suffix),
        "officials": officials,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(creds, indent=2) + "\n")
    path.chmod(0o600)
    return path


def _demo_official(
    directory: Directory, name: str, side: str, role: str, suffix: str
) -> dict[str, Any]:
    invitations = Invitations(directory.engine, Passwords(), Sessions(directory.engine))
    local = f"{side.lower()}-{role}"
    try:
        link = invitations.invite_official(f"{local}@{DEMO_DOMAIN}", name, side, role, BY)
    except Conflict:  # a demo of an earlier run has the address: this run's gets its own
        link = invitations.invite_official(f"{local}+{suffix}@{DEMO_DOMAIN}", name, side, role, BY)
    email = link.invitation.email
    password = secrets.token_urlsafe(12)
    secret = new_secret()
    # Enrolled with the previous step's code (accepted, one step either side), so that the
    # code of the current step is still unused: the newcomer may sign in at once.
    code = pyotp.TOTP(secret).at(time.time(), counter_offset=-1)
    person = invitations.accept(link.token, Answer(password, secret, code))
    return {
        "id": person.id,
        "name": name,
        "side": side,
        "role": role,
        "email": email,
        "password": password,
        "totp_secret": secret,
        "otpauth_uri": provisioning_uri(secret, email),
        "token": directory.issue_official_token(person.id),
    }


def _demo_staff(directory: Directory, company_id: str, suffix: str) -> dict[str, Any]:
    """The company's first admin, invited by an operator; no second factor (staff may
    choose one), so the portal's sign-in is the e-mail and the password."""
    invitations = Invitations(directory.engine, Passwords(), Sessions(directory.engine))
    name = "Dana Demo"
    try:
        link = invitations.invite_staff(company_id, f"admin@{DEMO_DOMAIN}", name, "admin", BY)
    except Conflict:
        link = invitations.invite_staff(
            company_id, f"admin+{suffix}@{DEMO_DOMAIN}", name, "admin", BY
        )
    password = secrets.token_urlsafe(12)
    person = invitations.accept(link.token, Answer(password))
    return {
        "id": person.id,
        "name": name,
        "role": "admin",
        "email": link.invitation.email,
        "password": password,
    }


def _still_valid(directory: Directory, saved: dict[str, Any]) -> bool:
    officials = saved.get("officials", {}).values()
    staff = saved.get("staff")
    if not isinstance(staff, dict) or not directory.can_sign_in(str(staff.get("id"))):
        return False  # a file of an earlier version (no portal account), or one disabled
    try:
        directory.authenticate(saved["applicant"]["api_key"])
        for official in officials:
            directory.authenticate(official["token"])
    except (InvalidCredential, KeyError):
        return False
    return all("email" in o and directory.can_sign_in(o["id"]) for o in officials)


@totp_app.command("code")
def totp_code(
    email: Annotated[str, typer.Argument(help="A demo official's e-mail address")],
) -> None:
    """Print the code a demo official's authenticator app would show now (from the demo
    credentials file; a real official has the factor in their own app)."""
    path = demo_file(CommonSettings())
    if not path.exists():
        typer.echo(f"error: no demo credentials at {path} (start `make run` first)", err=True)
        raise typer.Exit(2)
    officials = json.loads(path.read_text()).get("officials", {}).values()
    found = [o for o in officials if o.get("email") == email.strip().lower()]
    if not found:
        typer.echo(f"error: {email} is not a demo official (see {path})", err=True)
        raise typer.Exit(2)
    typer.echo(current_code(found[0]["totp_secret"]))
