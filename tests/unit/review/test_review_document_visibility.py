"""Which documents a side may open, and whose downloads its audit chain shows."""

from __future__ import annotations

from typing import Any

from services.review.domain.visibility import (
    DOWNLOAD_ACTION,
    history_entry_view,
    may_open_document,
    view_for,
)

PRIVATE = {"id": "d1", "filename": "contract.pdf", "shareable": False, "href": "/v1/x/d1"}
SHARED = {"id": "d2", "filename": "eus.pdf", "shareable": True, "href": "/v1/x/d2"}


def download(side: str, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"e-{side}-{document['id']}",
        "actor": {"id": f"{side}-1", "side": side, "role": "officer"},
        "action": DOWNLOAD_ACTION,
        "at": "2026-11-02T09:00:00Z",
        "from_state": "cn_review",
        "to_state": "cn_review",
        "payload": {
            "document_id": document["id"],
            "filename": document["filename"],
            "sha256": "a" * 64,
            "shareable": document["shareable"],
        },
    }


def test_the_eu_may_open_every_document_china_only_the_shareable_ones() -> None:
    assert may_open_document("EU", PRIVATE) and may_open_document("EU", SHARED)
    assert may_open_document("CN", SHARED)
    assert not may_open_document("CN", PRIVATE)
    assert not may_open_document("CN", {**SHARED, "shareable": "true"}), "only a real True"


def test_an_officials_view_links_each_document_it_lists_the_applicants_does_not() -> None:
    case = {"documents": [PRIVATE, SHARED]}
    assert [d["href"] for d in view_for("EU", case)["documents"]] == ["/v1/x/d1", "/v1/x/d2"]
    assert view_for("CN", case)["documents"] == [
        {"id": "d2", "filename": "eus.pdf", "href": "/v1/x/d2"}
    ]
    assert all("href" not in d for d in view_for("applicant", case)["documents"])


def test_china_sees_no_download_of_a_document_it_may_not_open() -> None:
    assert history_entry_view("CN", download("EU", PRIVATE)) is None
    shown = history_entry_view("CN", download("EU", SHARED))
    assert shown is not None
    assert shown["payload"] == {"document_id": "d2", "filename": "eus.pdf", "sha256": "a" * 64}


def test_the_eu_sees_every_download_and_the_applicant_none() -> None:
    for document in (PRIVATE, SHARED):
        eu = history_entry_view("EU", download("CN", document))
        assert eu is not None and eu["payload"]["shareable"] is document["shareable"]
        assert history_entry_view("applicant", download("EU", document)) is None
