"""Settings of the intake service."""

from __future__ import annotations

from pydantic import Field

from shared.config import ServiceSettings


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    port: int = Field(8001, alias="INTAKE_PORT")
    max_upload_bytes: int = Field(20 * 1024 * 1024, alias="REE_MAX_UPLOAD_BYTES")
