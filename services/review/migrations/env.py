"""Alembic environment of the review service."""

from sqlmodel import SQLModel

from services.review.store import REVIEW_TABLES
from shared.db import run_migrations_env

run_migrations_env(SQLModel.metadata, REVIEW_TABLES)
