"""`reechannel digest send [--date D]` and `reechannel official digest ID on|off`: the
officials' daily digest on demand, and who receives it (services/review/digest.py)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from reechannel.people import JsonFlag, _emit
from shared.db import make_engine
from shared.directory import open_directory

if TYPE_CHECKING:
    from services.review.settings import ReviewSettings

cli = typer.Typer(
    name="digest",
    help="The officials' daily digest of cases due and overdue.",
    no_args_is_help=True,
)


def register(app: typer.Typer, official_app: typer.Typer) -> None:
    """Add these commands to `reechannel` (reechannel/cli.py calls this once)."""
    app.add_typer(cli)
    official_app.command("digest")(official_digest)


def _settings() -> ReviewSettings:
    # Review's settings bring its web stack (FastAPI): loaded by this command only, so that
    # every other command starts without it.
    from services.review.settings import ReviewSettings

    try:
        return ReviewSettings()
    except ValidationError as exc:
        for error in exc.errors(include_input=False):
            typer.echo(f"error: {error['msg']}", err=True)
        raise typer.Exit(2) from None


@cli.command("send")
def digest_send(
    on: Annotated[
        str | None, typer.Option("--date", help="The digest of this day (YYYY-MM-DD) [today]")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """E-mail every opted-in official the digest of a day now, working day or not; those
    sent already (by review or an earlier run) are not sent again."""
    try:
        day = date.fromisoformat(on) if on else date.today()
    except ValueError:
        raise typer.BadParameter("a date is YYYY-MM-DD", param_hint="--date") from None
    # Review's modules load its tables: imported here, not with the command line (a process
    # that restores intake's schema imports `reechannel` too, and two services' tables clash).
    from services.review.console.pages import templates_for
    from services.review.digest import DailyDigest
    from services.review.domain.protocol import Protocol

    settings = _settings()
    if not settings.enabled:
        typer.echo("error: REE_SMTP_URL is not set; no digest is sent", err=True)
        raise typer.Exit(2)
    engine = make_engine(settings, settings.service_name, pool_size=1)
    directory = open_directory(settings)
    protocol = Protocol.load()
    digest = DailyDigest(
        engine,
        directory,
        protocol,
        templates_for(protocol),
        settings,
        settings.console_url,
        settings.digest_days,
        settings.digest_hour,
    )
    try:
        results = digest.send_all(day)
    finally:
        engine.dispose()
        directory.engine.dispose()
    _emit(
        as_json,
        {"date": day.isoformat(), "digests": [r.as_dict() for r in results]},
        [f"{r.email}: {r.outcome}" + (f" ({r.error})" if r.error else "") for r in results]
        or ["no official asked for the digest"],
    )
    if any(r.outcome == "failed" for r in results):
        raise typer.Exit(1)


def official_digest(
    official_id: Annotated[str, typer.Argument(help="The official's id")],
    wanted: Annotated[str, typer.Argument(help="on or off")],
    as_json: JsonFlag = False,
) -> None:
    """Opt an official in to the daily digest, or out of it."""
    if wanted not in ("on", "off"):
        raise typer.BadParameter("on or off", param_hint="WANTED")
    directory = open_directory()
    try:
        found = directory.set_digest(official_id, wanted == "on")
    finally:
        directory.engine.dispose()
    if not found:
        typer.echo(f"error: no official with id {official_id}", err=True)
        raise typer.Exit(2)
    _emit(
        as_json,
        {"id": official_id, "digest": wanted == "on"},
        [f"daily digest {wanted} for {official_id}"],
    )
