"""Settings of the review service."""

from __future__ import annotations

from pydantic import Field

from shared.config import ServiceSettings


class ReviewSettings(ServiceSettings):
    service_name: str = "review"
    port: int = Field(8002, alias="REVIEW_PORT")
    # How often the deadline ticker looks for lapsed requests and breached stages.
    deadline_check_seconds: float = Field(60.0, alias="REE_DEADLINE_CHECK_SECONDS")
