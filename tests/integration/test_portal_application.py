"""A company's staff follow an application in the portal (issue 21): the list, one
application's page, upload (type from the bytes, limits shown, errors next to the field),
answering an information request with text and documents, withdrawal after a confirmation.
Refusals: no CSRF token, another company's application (404, as an unknown one), signed
out. Real intake and review processes, real HTTP."""

from __future__ import annotations

import re
from typing import Any

import httpx

from shared.directory import Directory
from tests.integration.conftest import application, new_company
from tests.integration.test_intake_documents import PDF
from tests.integration.test_review_flow import act, case_of, token
from tests.people import enrol_staff, form_nonce, portal
from tests.portal_fixtures import company_fixture, directory_fixture, staff_fixture  # noqa: F401
from tests.support import Infra, ServiceProcess, wait_until

company = company_fixture("Delta Drives AB")
staff = staff_fixture("Dana Delta")


def _submitted(intake: ServiceProcess, company: dict[str, Any]) -> dict[str, Any]:
    with intake.client(company["api_key"]) as api:
        made = api.post("/v1/applications", json=application())
    assert made.status_code == 201, made.text
    return dict(made.json())


def _csrf(page: httpx.Response, action: str | None = None) -> str:
    """The CSRF token of the page's form posting to `action` (else of its first form)."""
    if action is None:
        return form_nonce(page)
    form = re.search(
        rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', page.text, re.S
    )
    assert form is not None, f"no form to {action}"
    found = re.search(r'name="csrf" value="([^"]+)"', form.group(1))
    assert found is not None, f"the form to {action} has no CSRF token"
    return found.group(1)


def test_the_list_and_the_page_of_an_application_show_what_the_api_shows(
    intake: ServiceProcess, company: dict[str, Any], staff: dict[str, Any]
) -> None:
    app = _submitted(intake, company)
    with portal(intake.url, staff) as browser:
        listed = browser.get("/")
        assert listed.status_code == 200 and app["reference"] in listed.text
        assert f'href="/applications/{app["id"]}"' in listed.text
        page = browser.get(f"/applications/{app['id']}")
        assert page.status_code == 200
        assert app["mofcom_application_number"] in page.text
        assert "Timeline" in page.text and "Submitted" in page.text
        assert "Up to 20,971,520 bytes" in page.text, "the upload limit is shown"
        assert 'enctype="multipart/form-data"' in page.text


def test_upload_checks_the_type_from_the_bytes_and_says_so_next_to_the_field(
    intake: ServiceProcess, company: dict[str, Any], staff: dict[str, Any]
) -> None:
    app = _submitted(intake, company)
    with portal(intake.url, staff) as browser:
        page = browser.get(f"/applications/{app['id']}")
        url = f"/applications/{app['id']}/documents"
        fake = browser.post(
            url,
            data={"csrf": _csrf(page, url), "kind": "contract"},
            files={"file": ("contract.pdf", b"\x00\x01binary, not a PDF", "application/pdf")},
        )
        assert fake.status_code == 415, fake.text[:300]
        assert 'id="file-error"' in fake.text and 'aria-invalid="true"' in fake.text
        assert 'aria-describedby="file-hint file-error"' in fake.text
        no_csrf = browser.post(url, data={"kind": "contract"}, files={"file": ("c.pdf", PDF)})
        assert no_csrf.status_code == 403
        with intake.client(company["api_key"]) as api:
            assert api.get(f"/v1/applications/{app['id']}").json()["documents"] == []
        done = browser.post(
            url,
            data={"csrf": _csrf(page, url), "kind": "contract", "shareable": "yes"},
            files={"file": ("contract.pdf", PDF, "application/octet-stream")},
        )
        assert done.status_code == 303, done.text[:300]
        shown = browser.get(done.headers["location"])
        assert "contract.pdf" in shown.text and "The document is uploaded." in shown.text
        with intake.client(company["api_key"]) as api:
            docs = api.get(f"/v1/applications/{app['id']}").json()["documents"]
        assert [(d["filename"], d["content_type"], d["kind"]) for d in docs] == [
            ("contract.pdf", "application/pdf", "contract")
        ]
        download = browser.get(f"/applications/{app['id']}/documents/{docs[0]['id']}")
        assert download.status_code == 200 and download.content == PDF
        assert download.headers["x-content-type-options"] == "nosniff"


def test_an_information_request_is_answered_with_text_and_a_document(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company: dict[str, Any],
    staff: dict[str, Any],
) -> None:
    app = _submitted(intake, company)
    case = case_of(review, officials, app["reference"])
    act(review, token(officials, "eu_officer"), case, "request_information", question="Who?")
    with portal(intake.url, staff) as browser:
        page = wait_until(
            lambda: (
                (p := browser.get(f"/applications/{app['id']}")) and "Your answer" in p.text and p
            ),
            timeout=20,
            what="the request reaches the portal",
        )
        action = re.search(r'action="(/applications/[^"]+/answer)"', page.text)
        assert action is not None
        empty = browser.post(
            action.group(1), data={"csrf": _csrf(page, action.group(1)), "answer": ""}
        )
        assert empty.status_code == 422 and 'id="answer-error"' in empty.text
        upload = f"/applications/{app['id']}/documents"
        browser.post(
            upload,
            data={"csrf": _csrf(page, upload), "kind": "end_user_statement"},
            files={"file": ("statement.pdf", PDF)},
        )
        with intake.client(company["api_key"]) as api:
            doc = api.get(f"/v1/applications/{app['id']}").json()["documents"][0]["id"]
        sent = browser.post(
            action.group(1),
            data={
                "csrf": _csrf(page, action.group(1)),
                "answer": "The end user is us.",
                "document_ids": doc,
            },
        )
        assert sent.status_code == 303, sent.text[:300]
    with intake.client(company["api_key"]) as api:
        request = api.get(f"/v1/applications/{app['id']}").json()["information_requests"][0]
    assert request["status"] == "answered"


def test_withdrawal_asks_for_a_confirmation_first(
    intake: ServiceProcess, company: dict[str, Any], staff: dict[str, Any]
) -> None:
    app = _submitted(intake, company)
    with portal(intake.url, staff) as browser:
        confirm = browser.get(f"/applications/{app['id']}/withdraw")
        assert confirm.status_code == 200 and 'name="confirm"' in confirm.text
        url = f"/applications/{app['id']}/withdraw"
        unconfirmed = browser.post(
            url, data={"csrf": _csrf(confirm, url), "reason": "Changed plans"}
        )
        assert unconfirmed.status_code == 422 and 'id="confirm-error"' in unconfirmed.text
        assert "Changed plans" in unconfirmed.text, "the reason as typed is kept"
        with intake.client(company["api_key"]) as api:
            assert api.get(f"/v1/applications/{app['id']}").json()["status"] != "withdrawn"
        done = browser.post(
            url, data={"csrf": _csrf(confirm, url), "reason": "Changed plans", "confirm": "yes"}
        )
        assert done.status_code == 303
        assert "The application is withdrawn." in browser.get(done.headers["location"]).text
    with intake.client(company["api_key"]) as api:
        assert api.get(f"/v1/applications/{app['id']}").json()["status"] == "withdrawn"


def test_another_companys_application_is_not_found_as_an_unknown_one_is(
    infra: Infra,
    intake: ServiceProcess,
    directory: Directory,
    company: dict[str, Any],
    staff: dict[str, Any],
) -> None:
    app = _submitted(intake, company)
    other = new_company(infra, "Epsilon Rotors Oy")
    stranger = enrol_staff(directory, other["id"], "Eero Epsilon")
    nobody = "00000000-0000-0000-0000-000000000000"
    with portal(intake.url, stranger) as browser:
        theirs = browser.get(f"/applications/{app['id']}")
        unknown = browser.get(f"/applications/{nobody}")
        assert theirs.status_code == unknown.status_code == 404
        assert app["reference"] not in theirs.text and app["reference"] not in browser.get("/").text
        # The error page is the stranger's own page, with their navigation, and says of the
        # other company's application what it says of one that never was: nothing more.
        assert 'class="mainnav"' in theirs.text and 'href="/apply"' in theirs.text
        assert "Eero Epsilon" in theirs.text and "Epsilon Rotors Oy" in theirs.text
        assert theirs.text.replace(app["id"], nobody) == unknown.text
        for leak in ("Delta Drives AB", "Dana Delta", app["mofcom_application_number"]):
            assert leak not in theirs.text
        page = browser.get("/")
        refused = browser.post(
            f"/applications/{app['id']}/withdraw", data={"csrf": _csrf(page), "confirm": "yes"}
        )
        assert refused.status_code == 404
    with intake.client(company["api_key"]) as api:
        assert api.get(f"/v1/applications/{app['id']}").json()["status"] != "withdrawn"


def test_signed_out_every_page_sends_to_sign_in(
    intake: ServiceProcess, company: dict[str, Any]
) -> None:
    app = _submitted(intake, company)
    with httpx.Client(base_url=intake.url, timeout=20) as browser:
        for path in ("/", f"/applications/{app['id']}", f"/applications/{app['id']}/withdraw"):
            page = browser.get(path)
            assert page.status_code == 303 and page.headers["location"] == "/sign-in", path
        posted = browser.post(f"/applications/{app['id']}/withdraw", data={"confirm": "yes"})
        assert posted.status_code == 303 and posted.headers["location"] == "/sign-in"
