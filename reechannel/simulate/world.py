"""The demo world: fictitious companies and officials, and plausible applications of theirs."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from shared.directory import Directory

# Fictitious companies across the critical value chains (DOMAIN.md).
COMPANY_STEMS: tuple[tuple[str, str, str], ...] = (
    ("Rheinmotor", "automotive", "DE"),
    ("Autovia Componentes", "automotive", "ES"),
    ("Torino Trazione", "automotive", "IT"),
    ("Baltic E-Drive", "automotive", "PL"),
    ("Lyon Moteurs Électriques", "automotive", "FR"),
    ("Nordwind Turbines", "wind_energy", "DK"),
    ("Atlantic Offshore Power", "wind_energy", "PT"),
    ("Windkraft Sachsen", "wind_energy", "DE"),
    ("Zeeland Generators", "wind_energy", "NL"),
    ("Eindhoven Photonics", "semiconductors", "NL"),
    ("Dresden Wafer Works", "semiconductors", "DE"),
    ("Grenoble Microsystèmes", "semiconductors", "FR"),
    ("Leuven Sputter Targets", "semiconductors", "BE"),
    ("Aero Toulouse Actuators", "aerospace", "FR"),
    ("Bavaria Avionics", "aerospace", "DE"),
    ("Milano Aerostrutture", "aerospace", "IT"),
    ("Helsinki Medical Imaging", "medical", "FI"),
    ("Uppsala MedTech", "medical", "SE"),
    ("Graz Imaging Systems", "medical", "AT"),
    ("Robotica Emilia", "robotics", "IT"),
    ("Brno Servo Drives", "robotics", "CZ"),
    ("Stuttgart Automation", "robotics", "DE"),
    ("Dublin Compute Hardware", "data_centres", "IE"),
    ("Frankfurt Server Cooling", "data_centres", "DE"),
    ("Ardennes Defence Systems", "defence", "BE"),
    ("Nordic Naval Electronics", "defence", "SE"),
    ("Ljubljana Magnetics", "other", "SI"),
    ("Vienna Precision Tools", "other", "AT"),
    ("Tallinn Battery Materials", "automotive", "EE"),
    ("Gdansk Wind Components", "wind_energy", "PL"),
    ("Porto Medical Devices", "medical", "PT"),
    ("Athens Motion Control", "robotics", "GR"),
    ("Bratislava Drives", "automotive", "SK"),
    ("Luxembourg Data Systems", "data_centres", "LU"),
    ("Riga Sensors", "semiconductors", "LV"),
    ("Zagreb Turbine Service", "wind_energy", "HR"),
)
SUFFIX = {"DE": "GmbH", "AT": "GmbH", "FR": "SAS", "IT": "S.p.A.", "ES": "S.L.", "NL": "B.V."}
EXPORTERS: tuple[str, ...] = (
    "Baotou Rare Earth Magnet Co.",
    "Ganzhou Heavy Rare Earth Metals Co.",
    "Ningbo NdFeB Materials Co.",
    "Inner Mongolia Oxide Refining Co.",
    "Xiamen Tungsten and Rare Earth Co.",
    "Sichuan Lutetium Materials Co.",
    "Jiangxi Dysprosium Alloys Co.",
    "Shandong Samarium Cobalt Co.",
)
# Forms, what they contain, their HS codes, how readily China approves them (refusals are
# rare: DOMAIN.md), and MOFCOM's usual review in CN working days: the seeds name oxides,
# metals and magnet alloys as the product categories with bottlenecks.
FORMS: dict[str, dict[str, Any]] = {
    "magnet": {"weight": 38, "hs": "8505.11", "approve": 0.98, "cn_days": 18},
    "oxide": {"weight": 20, "hs": "2846.90", "approve": 0.96, "cn_days": 26},
    "metal": {"weight": 17, "hs": "2805.30", "approve": 0.97, "cn_days": 24},
    "alloy": {"weight": 15, "hs": "3824.99", "approve": 0.97, "cn_days": 22},
    "compound": {"weight": 10, "hs": "2846.90", "approve": 0.98, "cn_days": 16},
}
ELEMENTS = ("Dy", "Tb", "Sm", "Gd", "Y", "Lu", "Sc")
ELEMENT_WEIGHTS = (30, 22, 16, 12, 10, 4, 6)
REFUSE_REASONS = (
    "end_use_not_credible",
    "quantity_not_justified",
    "diversion_risk",
    "incomplete_file",
)
DECLINE_REASONS = ("goods_not_controlled", "incomplete_file", "duplicate_application")


@dataclass
class DemoCompany:
    id: str
    name: str
    eori: str
    country: str
    value_chain: str
    api_key: str


@dataclass
class DemoOfficial:
    id: str
    name: str
    side: str
    role: str
    token: str


@dataclass
class World:
    companies: list[DemoCompany]
    officials: list[DemoOfficial]

    def of(self, side: str, role: str) -> list[DemoOfficial]:
        return [o for o in self.officials if o.side == side and o.role == role]


def create_world(directory: Directory, companies: int, rng: random.Random) -> World:
    """Demo companies and officials, created through the directory like `reechannel` does."""
    run = uuid.uuid4().hex[:6].upper()
    made = []
    for i in range(companies):
        stem, chain, country = COMPANY_STEMS[i % len(COMPANY_STEMS)]
        name = f"{stem} {SUFFIX.get(country, 'SA')}" + (
            f" ({i // len(COMPANY_STEMS) + 1})" if i >= len(COMPANY_STEMS) else ""
        )
        eori = f"{country}{run}{i:06d}"
        company, key = directory.create_company(name, eori)
        made.append(DemoCompany(company.id, name, eori, country, chain, key))
    people = [
        ("EU", "officer", "Eva Martens"),
        ("EU", "officer", "Jonas Keller"),
        ("EU", "officer", "Sofia Romano"),
        ("EU", "officer", "Pieter de Vries"),
        ("EU", "supervisor", "Claire Dubois"),
        ("EU", "supervisor", "Henrik Larsen"),
        ("CN", "officer", "Chen Wei"),
        ("CN", "officer", "Wang Fang"),
        ("CN", "officer", "Zhang Lei"),
        ("CN", "officer", "Liu Yang"),
        ("CN", "supervisor", "Li Na"),
        ("CN", "supervisor", "Zhao Min"),
    ]
    officials = []
    for side, role, name in people:
        official, token = directory.create_official(name, side, role)
        officials.append(DemoOfficial(official.id, name, side, role, token))
    return World(made, officials)


def uscc(rng: random.Random) -> str:
    return "9111" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(14))


def make_application(rng: random.Random, company: DemoCompany, today: date) -> dict[str, Any]:
    """One plausible application, valid for intake's rules (Nd/Pr only in Dy/Tb magnets)."""
    form = rng.choices(list(FORMS), [f["weight"] for f in FORMS.values()])[0]
    element = rng.choices(ELEMENTS, ELEMENT_WEIGHTS)[0]
    goods = []
    if form == "magnet":
        heavy = rng.choice(("Dy", "Tb"))
        goods.append(_line(rng, heavy, form))
        if rng.random() < 0.5:
            goods.append(_line(rng, rng.choice(("Nd", "Pr")), form))
    else:
        goods.append(_line(rng, element, form))
        if rng.random() < 0.15:
            other = rng.choice([e for e in ELEMENTS if e != element])
            goods.append(_line(rng, other, rng.choice(["metal", "oxide", "alloy"])))
    stock = rng.choice([5, 9, 12, 20, 28, 45, 60, 90])
    buyer = {"name": company.name, "country": company.country}
    chain_words = company.value_chain.replace("_", " ")
    return {
        # Wide enough that one company's numbers never repeat (it registers a number once).
        "mofcom_application_number": f"MOFCOM-{today.year}-{rng.randrange(10**12):012d}",
        "licence_type": rng.choices(["three_month", "annual", "general"], [70, 22, 8])[0],
        "exporter": {"name": rng.choice(EXPORTERS), "uscc": uscc(rng)},
        "consignee": buyer,
        "end_user": buyer,
        "end_use": {
            "category": company.value_chain,
            "description": f"{chain_words} production in {company.country}",
        },
        "goods": goods,
        "urgency": {
            "stock_days": stock,
            "production_stop_date": (
                today + timedelta(days=stock + rng.randrange(5, 40))
            ).isoformat(),
            "jobs_at_risk": rng.choice([0, 40, 120, 300, 650, 1200, 3000]),
        },
        "sme": rng.random() < 0.3,
    }


def _line(rng: random.Random, element: str, form: str) -> dict[str, Any]:
    kg = round(rng.lognormvariate(4.5, 1.0), 1) + 1
    return {
        "element": element,
        "form": form,
        "hs_code": FORMS[form]["hs"],
        "quantity_kg": kg,
        "value_eur": round(kg * rng.uniform(150, 900)),
    }


def approves(rng: random.Random, application: dict[str, Any]) -> bool:
    if application["end_use"]["category"] == "defence":
        return rng.random() < 0.05
    chance = min(FORMS[g["form"]]["approve"] for g in application["goods"])
    return rng.random() < chance
