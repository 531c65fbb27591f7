"""Alembic environment of the credential directory."""

from sqlmodel import SQLModel

from shared.db import run_migrations_env
from shared.directory import DIRECTORY_TABLES

run_migrations_env(SQLModel.metadata, DIRECTORY_TABLES)
