"""The licence application as applicants submit it: validated at intake, read by review."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class LicenceType(StrEnum):
    three_month = "three_month"
    annual = "annual"
    general = "general"


class EndUseCategory(StrEnum):
    automotive = "automotive"
    wind_energy = "wind_energy"
    semiconductors = "semiconductors"
    defence = "defence"
    aerospace = "aerospace"
    medical = "medical"
    robotics = "robotics"
    data_centres = "data_centres"
    other = "other"


class Element(StrEnum):
    """Rare earths under China's export control (DOMAIN.md, controlled goods)."""

    Sm = "Sm"
    Gd = "Gd"
    Tb = "Tb"
    Dy = "Dy"
    Lu = "Lu"
    Sc = "Sc"
    Y = "Y"
    Ho = "Ho"
    Er = "Er"
    Tm = "Tm"
    Eu = "Eu"
    Yb = "Yb"
    Nd = "Nd"
    Pr = "Pr"


class Form(StrEnum):
    metal = "metal"
    alloy = "alloy"
    oxide = "oxide"
    compound = "compound"
    magnet = "magnet"


# Nd and Pr are controlled only inside magnets that contain Dy or Tb.
MAGNET_ONLY_ELEMENTS = {Element.Nd, Element.Pr}

Name = Annotated[str, Field(min_length=1, max_length=200)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]


class _Strict(BaseModel):
    # Unknown fields are refused so that a typo never silently drops data.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Exporter(_Strict):
    name: Name
    uscc: str = Field(
        description="Unified Social Credit Code: 18 characters, digits and capital letters",
        examples=["91150200MA0N1X2Y3Z"],
    )

    @field_validator("uscc")
    @classmethod
    def _uscc(cls, value: str) -> str:
        value = value.upper()
        if not re.fullmatch(r"[0-9A-Z]{18}", value):
            raise ValueError("must be 18 characters, digits and capital letters")
        return value


class Party(_Strict):
    name: Name
    country: CountryCode


class EndUse(_Strict):
    category: EndUseCategory
    description: str = Field(min_length=1, max_length=2000)


class GoodsLine(_Strict):
    element: Element
    form: Form
    hs_code: str = Field(description="6 to 10 digits; dots are allowed and removed")
    quantity_kg: float = Field(gt=0, le=10_000_000)
    value_eur: float | None = Field(None, ge=0, le=10_000_000_000)

    @field_validator("hs_code")
    @classmethod
    def _hs_code(cls, value: str) -> str:
        digits = value.replace(".", "").replace(" ", "")
        if not re.fullmatch(r"\d{6,10}", digits):
            raise ValueError("must be 6 to 10 digits (dots allowed)")
        return digits

    @model_validator(mode="after")
    def _magnet_only(self) -> GoodsLine:
        if self.element in MAGNET_ONLY_ELEMENTS and self.form != Form.magnet:
            raise ValueError(f"{self.element} is controlled only in magnets (form 'magnet')")
        return self


class Urgency(_Strict):
    stock_days: int | None = Field(None, ge=0, le=3650)
    production_stop_date: date | None = None
    jobs_at_risk: int | None = Field(None, ge=0, le=10_000_000)
    contract_value_eur: float | None = Field(None, ge=0)


class ApplicationBody(_Strict):
    """What an applicant registers: a pending MOFCOM application and the urgency behind it."""

    mofcom_application_number: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9\-/]{3,63}$", examples=["MOFCOM-2026-004211"]
    )
    licence_type: LicenceType
    exporter: Exporter
    consignee: Party
    end_user: Party
    end_use: EndUse
    goods: list[GoodsLine] = Field(min_length=1, max_length=100)
    urgency: Urgency | None = None
    sme: bool = False
