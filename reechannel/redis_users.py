"""`reechannel redis`: the services' Redis users (shared/redis_acl.py) as an ACL file or applied."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.config import CommonSettings
from shared.redis_acl import acl_file, apply, users


class UserPasswords(BaseSettings):
    """The operator command's passwords, one per user (docker-compose.yml passes them)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", env_file=None)

    admin: str = Field(min_length=16, alias="REE_REDIS_ADMIN_PASSWORD")
    intake: str = Field(min_length=16, alias="REE_REDIS_INTAKE_PASSWORD")
    review: str = Field(min_length=16, alias="REE_REDIS_REVIEW_PASSWORD")
    notify: str = Field(min_length=16, alias="REE_REDIS_NOTIFY_PASSWORD")
    operator: str = Field(min_length=16, alias="REE_REDIS_OPERATOR_PASSWORD")

    def of(self, role: str) -> str:
        return str(getattr(self, role))


def _passwords() -> UserPasswords:
    """The passwords from the environment; a refused one is named, never printed."""
    try:
        return UserPasswords()
    except ValidationError as exc:
        for error in exc.errors(include_input=False):
            typer.echo(f"error: {error['loc'][0]}: {error['msg']}", err=True)
        raise typer.Exit(2) from None


# No locals in tracebacks: they would show the passwords.
cli = typer.Typer(
    help="Redis users of the services (ACL).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@cli.command("acl-file")
def write_acl_file(
    path: Annotated[Path, typer.Argument(help="Where to write the ACL file")],
) -> None:
    """Write the ACL file for `redis-server --aclfile` from the REE_REDIS_*_PASSWORD values."""
    settings = CommonSettings()
    passwords = _passwords()
    roles = users(settings.stream_prefix, settings.schema_prefix)
    text = acl_file({user: passwords.of(role) for role, user in roles.items()}, passwords.admin)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    typer.echo(f"{len(roles)} users written to {path}")


@cli.command("apply")
def apply_users() -> None:
    """Set up the users with ACL SETUSER on REDIS_URL, reached as an admin."""
    from shared.redis import connect_blocking

    settings = CommonSettings()
    passwords = _passwords()
    admin = connect_blocking(settings)
    for role, user in users(settings.stream_prefix, settings.schema_prefix).items():
        apply(admin, user, passwords.of(role))
        typer.echo(f"user {user.name} set up")
