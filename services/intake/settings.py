"""Settings of the intake service."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.accounts.sessions import SessionSettings
from shared.accounts.web import LinkMailSettings
from shared.config import ServiceSettings
from shared.controlled_goods import ControlledGoods


class IntakeSettings(ServiceSettings, SessionSettings, LinkMailSettings):
    service_name: str = "intake"
    port: int = Field(8001, alias="INTAKE_PORT")
    max_upload_bytes: int = Field(20 * 1024 * 1024, alias="REE_MAX_UPLOAD_BYTES")
    # Storage one company's documents may take in all (red-team finding F16).
    upload_quota_bytes: int = Field(1024**3, ge=0, alias="REE_UPLOAD_QUOTA_BYTES")
    max_documents_per_application: int = Field(50, ge=0, alias="REE_MAX_DOCUMENTS_PER_APPLICATION")
    max_application_document_bytes: int = Field(
        200 * 1024 * 1024, ge=0, alias="REE_MAX_APPLICATION_DOCUMENT_BYTES"
    )
    # Key of the permutation that turns application numbers into references; without it,
    # one derived from REE_TOKEN_SECRET (which production requires to be set).
    reference_secret: str | None = Field(None, alias="REE_REFERENCE_SECRET")
    # China's controlled-goods list (shared/controlled_goods.yaml when unset), read at start.
    controlled_goods_file: Path | None = Field(None, alias="REE_CONTROLLED_GOODS_FILE")
    # Where the portal reaches notify for the company's webhooks and e-mail choices (notify's
    # local default port; `reechannel run` passes the port it starts notify on).
    notify_url: str = Field("http://127.0.0.1:8003", alias="REE_NOTIFY_URL")
    notify_timeout_seconds: float = Field(5.0, gt=0, alias="REE_NOTIFY_TIMEOUT_SECONDS")

    def references_key(self) -> str:
        return self.reference_secret or f"references:{self.token_secret}"

    def controlled_goods(self) -> ControlledGoods:
        if self.controlled_goods_file is None:
            return ControlledGoods.packaged()
        return ControlledGoods.load(self.controlled_goods_file)
