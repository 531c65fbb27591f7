"""The hot path of POST /v1/applications builds its event and answer without pydantic models;
they must be exactly what the models would have produced."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from services.intake import domain
from services.intake.views import (
    SOURCE,
    ApplicationView,
    NewApplication,
    TimelineView,
    first_view,
    submitted_event_fields,
)
from shared.applications import ApplicationBody
from shared.events import ApplicationSubmitted, CloudEvent, new_event
from tests.integration.conftest import VALID_APPLICATION


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 11, 25, 16, 38, 0, 123456, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)],
)
def test_event_and_answer_are_what_the_models_make(now: datetime) -> None:
    body = ApplicationBody.model_validate(VALID_APPLICATION)
    content = body.model_dump(mode="json")
    new = NewApplication(
        id=str(uuid.uuid4()),
        company_id=str(uuid.uuid4()),
        content=content,
        now=now,
        event_id=str(uuid.uuid4()),
        idempotency_key=None,
        fingerprint="",
    )
    reference = domain.References("test key").reference(now.year, 42)

    fields = json.loads(submitted_event_fields(new)(reference))
    expected = new_event(
        SOURCE,
        "application.submitted",
        new.id,
        ApplicationSubmitted(
            application_id=new.id,
            reference=reference,
            company_id=new.company_id,
            submitted_at=now,
            status=domain.INITIAL_STATUS,
            application=body,
        ),
    )
    expected.id, expected.time = new.event_id, now
    assert fields == expected.to_fields()
    # ... and it reads back as a valid application.submitted event.
    assert CloudEvent.from_fields(fields).payload() == expected.payload()

    view = ApplicationView(
        id=new.id,
        reference=reference,
        status=domain.INITIAL_STATUS,
        mofcom_application_number=body.mofcom_application_number,
        licence_type=body.licence_type,
        priority_tier=None,
        expected_decision_date=None,
        submitted_at=now,
        updated_at=now,
        point_of_contact=None,
        information_requests=[],
        documents=[],
        licence=None,
        decision=None,
        timeline=[TimelineView(at=now, type="application.received", status="submitted", detail={})],
        application=content,
    )
    answer = first_view(new, reference)
    assert answer == view.model_dump(mode="json")
    assert json.dumps(answer) == json.dumps(view.model_dump(mode="json"))
