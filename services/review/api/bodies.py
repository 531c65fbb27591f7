"""The request bodies of review's routes; the console checks its forms with the same models."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field


class NoteBody(BaseModel):
    model_config = {"extra": "forbid"}

    text: str = Field(min_length=1, max_length=10_000)
    visibility: Literal["joint", "side"]


class AssignBody(BaseModel):
    model_config = {"extra": "forbid"}

    official_id: str | None = Field(None, description="Omit to take the case yourself")


class ProposalClosingBody(BaseModel):
    """Why a proposal is rejected or withdrawn (optional; audited)."""

    model_config = {"extra": "forbid"}

    reason: str | None = Field(None, min_length=1, max_length=2000)


class PriorityListBody(BaseModel):
    model_config = {"extra": "forbid"}

    case_ids: list[str] | None = Field(None, min_length=1, max_length=5000)
    max_cases: int | None = Field(None, ge=1, le=5000)


class ShipmentLineBody(BaseModel):
    model_config = {"extra": "forbid"}

    line: int | None = Field(None, ge=1)
    element: str | None = Field(None, max_length=3)
    quantity_kg: float = Field(gt=0)


class ShipmentBody(BaseModel):
    model_config = {"extra": "forbid"}

    shipped_on: date
    lines: list[ShipmentLineBody] = Field(min_length=1, max_length=200)


class AdoptRulesBody(BaseModel):
    model_config = {"extra": "forbid"}

    rules: dict[str, Any] = Field(description="A rule set, as priority_rules.yaml")
    reason: str = Field(min_length=1, max_length=2000)


class RevokeBody(BaseModel):
    model_config = {"extra": "forbid"}

    reason: str = Field(min_length=1, max_length=2000)
