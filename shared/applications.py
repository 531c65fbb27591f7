"""The licence application as applicants submit it: validated at intake, read by review."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from shared.countries import ISO_3166_ALPHA_2
from shared.text import MultilineText, OneLineText


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
    """Rare earths under China's export control (DOMAIN.md, controlled goods); in which
    forms and since when is data: shared/controlled_goods.yaml."""

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


def _country(value: str) -> str:
    if value not in ISO_3166_ALPHA_2:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code")
    return value


Name = Annotated[OneLineText, Field(min_length=1, max_length=200)]
CountryCode = Annotated[
    str,
    Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2"),
    AfterValidator(_country),
]
# An HS code as typed: ASCII digits, in groups separated by single dots or spaces
# ("2805.30", "2805 30"); `\d` would also take Arabic-Indic or full-width digits.
HS_CODE_AS_TYPED = re.compile(r"[0-9]+(?:[. ][0-9]+)*")
USCC = re.compile(r"[0-9A-Za-z]{18}")
# Upper bounds of the urgency's numbers: far beyond any real case, finite for every sum.
MAX_CONTRACT_VALUE_EUR = 100_000_000_000


class _Strict(BaseModel):
    # Unknown fields are refused so that a typo never silently drops data; Infinity and NaN
    # (which JSON parsing would take as numbers) are refused so every number can be stored,
    # summed and written back as JSON (red-team finding F2).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


class Exporter(_Strict):
    name: Name
    uscc: str = Field(
        description="Unified Social Credit Code: 18 characters, digits and capital letters",
        examples=["91150200MA0N1X2Y3Z"],
    )

    @field_validator("uscc")
    @classmethod
    def _uscc(cls, value: str) -> str:
        # Checked before case-folding, ASCII only: "ß".upper() is "SS", one character more.
        if not USCC.fullmatch(value):
            raise ValueError("must be 18 characters, digits and capital letters")
        return value.upper()


class Party(_Strict):
    name: Name
    country: CountryCode


class EndUse(_Strict):
    category: EndUseCategory
    description: MultilineText = Field(min_length=1, max_length=2000)


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
        if not HS_CODE_AS_TYPED.fullmatch(value) or not 6 <= len(digits) <= 10:
            raise ValueError("must be 6 to 10 digits (dots allowed)")
        return digits


class Urgency(_Strict):
    stock_days: int | None = Field(None, ge=0, le=3650)
    production_stop_date: date | None = None
    jobs_at_risk: int | None = Field(None, ge=0, le=10_000_000)
    contract_value_eur: float | None = Field(None, ge=0, le=MAX_CONTRACT_VALUE_EUR)


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
