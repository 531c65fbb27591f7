"""shared.http.jsonable gives exactly what fastapi's jsonable_encoder gives, only faster."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from fastapi.encoders import jsonable_encoder

from shared.http import jsonable


class Tier(StrEnum):
    P1 = "P1"


VIEW: dict[str, Any] = {
    "id": "c-1",
    "version": 3,
    "score": 41.5,
    "overdue": False,
    "list_number": None,
    "submitted_at": datetime(2026, 3, 2, 9, 30, 1, 123456, tzinfo=UTC),
    "updated_at": datetime(2026, 3, 2, 17, 0, tzinfo=timezone(timedelta(hours=8))),
    "deadlines": {"stage_due": date(2026, 3, 5), "answer_due": None},
    "application": {"goods": [{"element": "Dy", "quantity_kg": 120.5}], "sme": True},
    "pair": ("a", date(2026, 1, 1)),
    "tier": Tier.P1,
    "remaining_kg": Decimal("12.50"),
    "uuid": UUID("12345678-1234-5678-1234-567812345678"),
    "tags": {"b"},
}


def test_jsonable_matches_jsonable_encoder_for_every_kind_of_value_a_view_holds() -> None:
    assert jsonable(VIEW) == jsonable_encoder(VIEW)
    assert jsonable([VIEW, VIEW]) == jsonable_encoder([VIEW, VIEW])
