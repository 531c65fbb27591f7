"""`reechannel webhook-secrets`: the keys that seal notify's signing secrets, and rotation."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from services.notify.domain.sealing import UnknownKey, new_key
from shared.db import make_engine

cli = typer.Typer(
    name="webhook-secrets",
    help="The keys sealing the webhook signing secrets at rest (docs/notify.md).",
    no_args_is_help=True,
)


@cli.command("new-key")
def new_key_command() -> None:
    """Print a fresh key for REE_WEBHOOK_SECRETS_KEY (32 random bytes, base64url)."""
    typer.echo(new_key())


@cli.command("reseal")
def reseal_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Seal every endpoint's secrets with the current key (REE_WEBHOOK_SECRETS_KEY).

    The rotation's middle step: with the new key current and the old one among
    REE_WEBHOOK_SECRETS_OLD_KEYS, reseal, then drop the old key. Changes nothing if any value
    was sealed with a key that is in neither setting.
    """
    # Notify's store and settings bring its tables and web stack: loaded by this command only.
    from services.notify.settings import NotifySettings
    from services.notify.store import sealed

    try:
        settings = NotifySettings()
    except ValidationError as exc:
        for error in exc.errors(include_input=False):
            typer.echo(f"error: {error['msg']}", err=True)
        raise typer.Exit(2) from None
    ring = settings.key_ring()
    sealed.use_keys(ring)
    engine = make_engine(settings, settings.service_name)
    try:
        endpoints, values = sealed.reseal(engine)
    except UnknownKey as exc:
        typer.echo(f"error: a secret was {exc}; nothing was changed", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    if as_json:
        import json

        typer.echo(
            json.dumps({"endpoints": endpoints, "values": values, "key_id": ring.current_id})
        )
    else:
        typer.echo(f"resealed {values} secrets of {endpoints} endpoints with key {ring.current_id}")
