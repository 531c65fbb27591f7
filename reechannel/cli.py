"""`reechannel`: the operator's command line (credentials, running the system, maintenance)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from reechannel import (
    backup,
    company_keys,
    demo,
    digest,
    notifications,
    people,
    redis_users,
    webhook_secrets,
)
from shared.config import CommonSettings
from shared.directory import Directory, DirectoryError, open_directory

# No local variables in tracebacks: they hold API keys, tokens and the signing secret.
app = typer.Typer(
    help="REE Channel operator commands.", no_args_is_help=True, pretty_exceptions_show_locals=False
)
company_app = typer.Typer(help="Companies (applicants) and their API keys.", no_args_is_help=True)
official_app = typer.Typer(help="EU and CN officials and their tokens.", no_args_is_help=True)
operator_app = typer.Typer(help="Operator credentials.", no_args_is_help=True)
credential_app = typer.Typer(help="Any credential.", no_args_is_help=True)
events_app = typer.Typer(help="Event documentation.", no_args_is_help=True)
dlq_app = typer.Typer(
    help="Dead-letter streams: events no consumer could apply.", no_args_is_help=True
)
audit_app = typer.Typer(help="The review service's hash-chained audit trail.", no_args_is_help=True)
app.add_typer(company_app, name="company")
app.add_typer(official_app, name="official")
app.add_typer(operator_app, name="operator")
app.add_typer(credential_app, name="credential")
app.add_typer(events_app, name="events")
app.add_typer(audit_app, name="audit")
app.add_typer(dlq_app, name="dlq")
app.add_typer(redis_users.cli, name="redis")
app.add_typer(demo.totp_app, name="totp")
people.register(app, official_app, company_app)
company_keys.register(company_app)
notifications.register(people.person_app)
digest.register(app, official_app)
# `reechannel backup DIR` and `reechannel restore DIR`, at the top level.
app.add_typer(backup.cli)
app.add_typer(webhook_secrets.cli)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object")]


def _emit(as_json: bool, payload: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(payload))
    else:
        for line in lines:
            typer.echo(line)


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


@company_app.command("create")
def company_create(
    name: Annotated[str, typer.Option(help="Legal name")],
    eori: Annotated[str, typer.Option(help="EORI number, e.g. DE123456789012345")],
    as_json: JsonFlag = False,
) -> None:
    """Register a company; prints its id and its API key (shown once)."""
    try:
        company, key = open_directory().create_company(name, eori)
    except DirectoryError as exc:
        _fail(exc)
        return
    _emit(
        as_json,
        {"id": company.id, "name": company.name, "eori": company.eori, "api_key": key},
        [f"company id: {company.id}", f"api key:    {key}", "(the key is shown only once)"],
    )


@official_app.command("create")
def official_create(
    name: Annotated[str, typer.Option(help="Full name")],
    side: Annotated[str, typer.Option(help="EU or CN")],
    role: Annotated[str, typer.Option(help="officer or supervisor")],
    expires_in: Annotated[
        str, typer.Option(help="The token's lifetime: days (90d) or hours (12h)")
    ] = "90d",
    as_json: JsonFlag = False,
) -> None:
    """Register an official; prints their id and token (shown once) and when it expires."""
    lifetime = people.parse_lifetime(expires_in)
    directory = open_directory()
    try:
        official, token = directory.create_official(name, side, role, lifetime)
    except DirectoryError as exc:
        _fail(exc)
        return
    about = {"name": official.name, "side": official.side, "role": official.role}
    _emit_token(as_json, directory, official.id, token, about)


def _emit_token(
    as_json: bool, directory: Directory, official_id: str, token: str, about: dict[str, str]
) -> None:
    """Print an official's new token (shown once) and when it expires."""
    expires_at = directory.expiry_of(token)
    assert expires_at is not None  # an official's token always has one
    _emit(
        as_json,
        {"id": official_id, **about, "token": token, "expires_at": expires_at.isoformat()},
        [
            f"official id: {official_id}",
            f"token:       {token}",
            f"expires at:  {expires_at:%Y-%m-%d %H:%M} UTC",
        ],
    )


@official_app.command("token")
def official_token(
    official_id: Annotated[str, typer.Argument(help="The official's id (an invited one's too)")],
    expires_in: Annotated[
        str, typer.Option(help="The token's lifetime: days (90d) or hours (12h)")
    ] = "90d",
    as_json: JsonFlag = False,
) -> None:
    """Issue another token for an official's programs (shown once), e.g. for an official who
    joined by invitation and signs in to the console with a password."""
    lifetime = people.parse_lifetime(expires_in)
    directory = open_directory()
    try:
        token = directory.issue_official_token(official_id, lifetime)
    except DirectoryError as exc:
        _fail(exc)
        return
    _emit_token(as_json, directory, official_id, token, {})


@operator_app.command("create")
def operator_create(
    name: Annotated[str, typer.Option(help="Operator's name")], as_json: JsonFlag = False
) -> None:
    """Issue an operator token for the administrative HTTP routes."""
    token = open_directory().create_operator(name)
    _emit(as_json, {"name": name, "token": token}, [f"token: {token}"])


@credential_app.command("revoke")
def credential_revoke(
    credential_id: Annotated[
        str, typer.Argument(help="A credential id, company id or official id")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Revoke a credential (or all of a holder's); every service refuses it at once."""
    try:
        count = open_directory().revoke(credential_id)
    except DirectoryError as exc:
        _fail(exc)
        return
    _emit(as_json, {"revoked": count, "id": credential_id}, [f"revoked {count} credential(s)"])


@events_app.command("asyncapi")
def events_asyncapi(
    out: Annotated[Path, typer.Option(help="Where to write the document")] = Path(
        "docs/asyncapi.json"
    ),
) -> None:
    """Write the AsyncAPI document of every event, generated from the schemas."""
    from shared.asyncapi import asyncapi_document

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asyncapi_document(), indent=2) + "\n")
    typer.echo(f"wrote {out}")


@audit_app.command("verify")
def audit_verify(
    case_id: Annotated[str | None, typer.Option("--case", help="Only this case")] = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="A file or folder of signed checkpoints a side kept (default: the database's)",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify every case's audit chains (or one case's) and every checkpoint; exits 1 if any
    history was altered, removed or does not reproduce a checkpoint."""
    from services.review.audit_service import audit_verify_command
    from shared.config import AuditSettings

    report, lines = audit_verify_command(AuditSettings(), case_id, checkpoints)
    _emit(as_json, report, lines)
    if not report["ok"]:
        raise typer.Exit(1)


def _redis() -> tuple[Any, str]:
    from shared.redis import connect_blocking

    settings = CommonSettings()
    return connect_blocking(settings), settings.stream_prefix


@dlq_app.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option(help="At most this many per stream")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List dead letters: stream, event id and type, failing group, deliveries, error."""
    from shared.deadletters import list_dead_letters

    client, prefix = _redis()
    letters = list_dead_letters(client, prefix, limit)
    _emit(
        as_json,
        {"dead_letters": [d.as_dict() for d in letters]},
        [
            f"{d.dlq_id}  {d.stream}  {d.event_type}  event {d.event_id}  group {d.group}  "
            f"{d.deliveries} deliveries  {d.error}"
            for d in letters
        ]
        or ["no dead letters"],
    )


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[list[str] | None, typer.Argument(help="DLQ entry ids (from `dlq list`)")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every dead letter")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Put dead letters back on their original stream, once the cause is fixed."""
    from shared.deadletters import replay

    if not ids and not replay_all:
        typer.echo("error: name DLQ entry ids or pass --all", err=True)
        raise typer.Exit(2)
    client, prefix = _redis()
    done = replay(client, prefix, None if replay_all else list(ids or []))
    _emit(
        as_json,
        {"replayed": [d.as_dict() for d in done]},
        [f"replayed {len(done)} dead letter(s)"],
    )


@app.command("simulate")
def simulate(
    count: Annotated[int, typer.Option(help="Applications in all")] = 3400,
    companies: Annotated[int, typer.Option(help="Demo companies to create")] = 30,
    intake_url: Annotated[
        str | None, typer.Option(help="The running intake [default: from REE_HOST, INTAKE_PORT]")
    ] = None,
    review_url: Annotated[
        str | None, typer.Option(help="The running review [default: from REE_HOST, REVIEW_PORT]")
    ] = None,
    history: Annotated[
        float, typer.Option(help="Share played out back-dated (demo only; 0 = all live)")
    ] = 0.95,
    seed: Annotated[int | None, typer.Option(help="Random seed, for a repeatable demo")] = None,
) -> None:
    """Generate a realistic demo past through the real services (see docs/metrics.md)."""
    from reechannel.settings import OperatorSettings
    from reechannel.simulate import Options
    from reechannel.simulate import run as simulate_run

    settings = OperatorSettings()
    intake_url = intake_url or settings.url_of("intake")
    review_url = review_url or settings.url_of("review")
    options = Options(count, companies, intake_url, review_url, history, seed)
    raise typer.Exit(simulate_run(options, settings))


@app.command("run")
def run(
    demo: Annotated[bool, typer.Option(help="Create demo credentials and print them")] = True,
    services: Annotated[
        str, typer.Option(help="Comma-separated services to start")
    ] = "intake,review,notify",
) -> None:
    """Start the whole system on this machine (embedded Redis and SQLite unless URLs are set)."""
    from reechannel.supervisor import run_system

    raise typer.Exit(run_system(demo=demo, wanted=[s.strip() for s in services.split(",")]))


def main() -> None:
    try:
        app()
    except ValidationError as exc:
        # pydantic's own message quotes every input, the signing secret among them.
        for error in exc.errors():
            where = "".join(f"{part}: " for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            typer.echo(f"error: {where}{message}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
