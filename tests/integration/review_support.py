"""Review tests' own helpers: a planted application with unique searched values, its case,
searching for it, acting on it and sending it to China."""

from __future__ import annotations

import random
import string
import uuid
from typing import Any

import httpx

from tests.integration.conftest import application, new_company
from tests.support import Infra, ServiceProcess, wait_until


def _uscc() -> str:
    return "".join(random.choices(string.digits + string.ascii_uppercase, k=18))


def _hs_code() -> str:
    return "".join(random.choices(string.digits, k=10))


class Planted:
    """One application with a unique value in every searched field, and its case."""

    def __init__(
        self,
        infra: Infra,
        intake: ServiceProcess,
        tag: str | None = None,
        exporter: str | None = None,
    ) -> None:
        self.tag = tag or uuid.uuid4().hex[:8].upper()
        self.serial = "".join(random.choices(string.digits, k=9))
        self.mofcom = f"MOFCOM-{self.tag}-{self.serial}"
        self.exporter = exporter or f"Sentinel Exporter {self.tag}"
        self.uscc = _uscc()
        self.hs_code = _hs_code()
        self.company = new_company(infra, f"Sentinel Company {self.tag} {uuid.uuid4().hex[:6]}")
        goods = application()["goods"]
        goods[0]["hs_code"] = self.hs_code
        body = application(
            mofcom_application_number=self.mofcom,
            exporter={"name": self.exporter, "uscc": self.uscc},
            goods=goods,
        )
        with intake.client(self.company["api_key"]) as c:
            r = c.post("/v1/applications", json=body)
            assert r.status_code == 201, r.text
            self.reference = r.json()["reference"]
        self.case_id = ""

    @property
    def company_name(self) -> str:
        return str(self.company["name"])


def token(officials: dict[str, dict[str, Any]], who: str) -> str:
    return str(officials[who]["token"])


def search(review: ServiceProcess, credential: str, q: str, **params: Any) -> httpx.Response:
    with review.client(credential) as c:
        return c.get("/v1/cases", params={"q": q, **params})


def found(review: ServiceProcess, credential: str, q: str) -> list[str]:
    r = search(review, credential, q, limit=200)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


def opened(review: ServiceProcess, officials: dict[str, Any], planted: Planted) -> str:
    def by_reference() -> str | None:
        hits = found(review, token(officials, "eu_officer"), planted.reference)
        return hits[0] if hits else None

    planted.case_id = wait_until(by_reference, timeout=30, what=f"{planted.reference} opened")
    return planted.case_id


def act(review: ServiceProcess, credential: str, case_id: str, action: str, **params: Any) -> None:
    with review.client(credential) as c:
        version = c.get(f"/v1/cases/{case_id}").json()["version"]
        r = c.post(
            f"/v1/cases/{case_id}/actions",
            json={"action": action, **params},
            headers={"If-Match": str(version)},
        )
    assert r.status_code == 200, r.text


def send_to_china(review: ServiceProcess, officials: dict[str, Any], case_ids: list[str]) -> int:
    for case_id in case_ids:
        act(review, token(officials, "eu_officer"), case_id, "admit")
    with review.client(token(officials, "eu_supervisor")) as c:
        r = c.post("/v1/priority-lists", json={"case_ids": case_ids})
    assert r.status_code == 201, r.text
    return int(r.json()["number"])
