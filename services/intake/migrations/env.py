"""Alembic environment of the intake service."""

from sqlmodel import SQLModel

from services.intake.store import INTAKE_TABLES
from shared.db import run_migrations_env

run_migrations_env(SQLModel.metadata, INTAKE_TABLES)
