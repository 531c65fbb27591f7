"""Settings of the review service."""

from __future__ import annotations

from pydantic import Field

from shared.accounts.sessions import SessionSettings
from shared.accounts.web import LinkMailSettings
from shared.config import AuditSettings, ServiceSettings


class ReviewSettings(ServiceSettings, AuditSettings, SessionSettings, LinkMailSettings):
    service_name: str = "review"
    port: int = Field(8002, alias="REVIEW_PORT")
    # How often the deadline ticker looks for lapsed requests and breached stages.
    deadline_check_seconds: float = Field(60.0, alias="REE_DEADLINE_CHECK_SECONDS")
    # How often review looks for open cases not yet scored today (or under other rules).
    priority_rescore_seconds: float = Field(3600.0, gt=0, alias="REE_PRIORITY_RESCORE_SECONDS")
    # How often review issues a signed audit checkpoint (at least daily: docs/review.md).
    audit_checkpoint_seconds: float = Field(86_400.0, gt=0, alias="REE_AUDIT_CHECKPOINT_SECONDS")
    # The officials' daily digest (services/review/digest.py): sent from this hour (UTC) of
    # each of the side's working days, listing the cases due within this many working days;
    # replicas look every so often whether one is due (each goes out once a day anyway).
    digest_hour: int = Field(6, ge=0, le=23, alias="REE_DIGEST_HOUR")
    digest_days: int = Field(5, ge=0, le=60, alias="REE_DIGEST_DAYS")
    digest_check_seconds: float = Field(300.0, gt=0, alias="REE_DIGEST_CHECK_SECONDS")
