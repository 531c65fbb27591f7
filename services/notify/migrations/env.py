"""Alembic environment of the notify service."""

from sqlmodel import SQLModel

from services.notify.store import NOTIFY_TABLES
from shared.db import run_migrations_env

run_migrations_env(SQLModel.metadata, NOTIFY_TABLES)
