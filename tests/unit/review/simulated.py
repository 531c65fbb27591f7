"""A back-dated history played through Casework by the simulator's History, for the tests
that read what it leaves: SQLite, or PostgreSQL in a throwaway schema when DATABASE_URL is
set."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from reechannel.simulate.history import History
from reechannel.simulate.timeline import HistoryPlan
from reechannel.simulate.world import create_world
from shared.config import CommonSettings
from shared.db import drop_schema, make_engine
from shared.directory import open_directory


@dataclass
class Simulated:
    engine: Engine
    plan: HistoryPlan
    settings: dict[str, Any]  # the settings' values, for AuditSettings(**settings) too


@contextmanager
def simulated_history(
    data_dir: Path, seed: int, companies: int, count: int, now: datetime
) -> Iterator[Simulated]:
    values: dict[str, Any] = {"REE_DATA_DIR": str(data_dir)}
    url = os.environ.get("DATABASE_URL")
    if url:
        values |= {"DATABASE_URL": url, "REE_SCHEMA_PREFIX": f"t{uuid.uuid4().hex[:8]}_"}
    settings = CommonSettings(**values)
    rng = random.Random(seed)
    directory = open_directory(settings)
    history = History(settings, directory, create_world(directory, companies, rng), rng, now)
    plan = history.plan(count)
    history.run()
    engine = make_engine(settings, "review", pool_size=2)
    try:
        yield Simulated(engine, plan, values)
    finally:
        engine.dispose()
        if url:
            for component in ("review", "directory"):
                drop_schema(make_engine(settings, component), settings.schema_for(component))
