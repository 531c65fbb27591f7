"""The events that carry a code carry its names, from the protocol at the moment review emits
them: a decision's reason (as the deciding action names it) and a licence's type. Notify and
intake show those names without reading review's protocol.

A small history played through Casework (the simulator's History); SQLite by default,
PostgreSQL in a throwaway schema when DATABASE_URL is set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from services.review.domain.protocol import Protocol
from shared.events import CaseDecided, LicenceIssued
from shared.outbox import OutboxEvent
from tests.unit.review.simulated import simulated_history

NOW = datetime.now(UTC) - timedelta(minutes=5)
# The action whose reason codes name each decision's reason (protocol.yaml, labels).
DECIDED_BY = {"refused": "refuse", "not_admitted": "decline"}


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    with simulated_history(tmp_path_factory.mktemp("names"), 31, 4, 90, NOW) as history:
        yield _emitted(history.engine)


def _emitted(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxEvent).where(
                OutboxEvent.event_type.in_(("case.decided", "licence.issued"))  # type: ignore[attr-defined]
            )
        ).all()
        return [_event(row) for row in rows]


def _event(row: OutboxEvent) -> dict[str, Any]:
    fields = json.loads(row.fields_json)
    data = fields["data"]
    return {"type": row.event_type, "data": json.loads(data) if isinstance(data, str) else data}


def test_a_refusal_or_a_decline_carries_its_reasons_names_from_the_protocol(
    emitted: list[dict[str, Any]],
) -> None:
    protocol = Protocol.load()
    decided = [
        CaseDecided.model_validate(e["data"])
        for e in emitted
        if e["type"] == "case.decided" and e["data"].get("decision") in DECIDED_BY
    ]
    assert {d.decision for d in decided} == set(DECIDED_BY), "the history refuses and declines"
    for d in decided:
        assert d.reason is not None
        action = DECIDED_BY[d.decision]
        assert d.reason_label == {
            lang: protocol.label("reason", d.reason, lang, of=action) for lang in protocol.languages
        }
        assert d.reason_label["zh-Hans"] != d.reason_label["en"], "a Chinese name, not English"


def test_an_issued_licence_carries_its_types_names_from_the_protocol(
    emitted: list[dict[str, Any]],
) -> None:
    protocol = Protocol.load()
    issued = [
        LicenceIssued.model_validate(e["data"]) for e in emitted if e["type"] == "licence.issued"
    ]
    assert issued, "the history issues licences"
    for i in issued:
        assert i.licence.type_label == {
            "en": protocol.label("licence_type", i.licence.type, "en"),
            "zh-Hans": protocol.label("licence_type", i.licence.type, "zh-Hans"),
        }


def test_a_code_without_a_label_carries_no_names() -> None:
    protocol = Protocol.load()
    assert protocol.names("reason", "not_a_reason", of="refuse") is None
    assert protocol.names("reason", "quantity_not_justified", of="decline") is None
    assert protocol.names("reason", "quantity_not_justified", of="refuse") == {
        "en": "Quantity not justified by the end use",
        "zh-Hans": "数量与所述最终用途不符",
    }
