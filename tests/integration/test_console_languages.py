"""The console in English and Simplified Chinese, over real HTTP (issue 19).

The page's language is the official's stored choice, else the browser's Accept-Language,
else English; the switch stores the choice with the official; refusals are said in the
page's language; the API stays codes only unless a language is asked for.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from shared.directory import Directory, open_directory
from tests.integration.test_review_flow import case_of, submit, token
from tests.people import enrol_official, settings_of, signed_in
from tests.support import Infra, ServiceProcess

Officials = dict[str, dict[str, Any]]


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def _lang_of(page: httpx.Response) -> str:
    found = re.search(r'<html lang="([^"]+)"', page.text)
    assert found is not None, page.text[:300]
    return found.group(1)


@pytest.fixture(scope="module")
def directory(infra: Infra) -> Iterator[Directory]:
    made = open_directory(settings_of(infra))
    yield made
    made.engine.dispose()


@pytest.fixture
def cn_officer(directory: Directory) -> dict[str, Any]:
    """An official of their own: a stored choice must not change other tests' pages."""
    return enrol_official(directory, f"Wang Fang {uuid.uuid4().hex[:6]}", "CN", "officer")


@contextmanager
def _console(
    review: ServiceProcess, official: dict[str, Any], headers: dict[str, str] | None = None
) -> Iterator[httpx.Client]:
    """A browser signed in through the console's form (e-mail, password and code)."""
    with httpx.Client(base_url=review.url, timeout=20, headers=headers) as client:
        answer = signed_in(client, official)
        assert answer.status_code == 303, answer.text[:500]
        yield client


def test_the_browser_language_chooses_the_page_language_when_none_is_stored(
    review: ServiceProcess, cn_officer: dict[str, Any]
) -> None:
    with _console(review, cn_officer) as console:
        english = console.get("/")
        chinese = console.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
        traditional = console.get("/", headers={"Accept-Language": "zh-TW"})
    assert _lang_of(english) == "en" and "CN queue" in english.text
    assert _lang_of(chinese) == "zh-Hans"
    assert chinese.headers["content-language"] == "zh-Hans"
    assert "中方案件队列" in chinese.text and "CN queue" not in chinese.text
    assert "中方审查" in chinese.text, "the state filter names states in Chinese"
    assert _lang_of(traditional) == "en", "Traditional Chinese is not Simplified: English"


def test_the_switch_stores_the_officials_choice_and_every_page_follows_it(
    review: ServiceProcess, cn_officer: dict[str, Any]
) -> None:
    with _console(review, cn_officer, {"Accept-Language": "en"}) as console:
        page = console.get("/dashboard")
        assert 'action="/language"' in page.text, "a switch on the page"
        switched = console.post(
            "/language", data={"csrf": _csrf(page), "lang": "zh-Hans", "next": "/dashboard"}
        )
        assert switched.status_code == 303
        assert switched.headers["location"] == "/dashboard"
        for path in ("/", "/dashboard", "/priority-lists"):
            shown = console.get(path)
            assert _lang_of(shown) == "zh-Hans", path
        assert "批准率与办理时间" in console.get("/dashboard").text
    # The choice is the official's, not the session's: a new sign-in keeps it.
    with _console(review, cn_officer, {"Accept-Language": "en"}) as again:
        assert _lang_of(again.get("/")) == "zh-Hans"


def test_a_switch_to_a_language_not_offered_or_without_the_form_token_changes_nothing(
    review: ServiceProcess, cn_officer: dict[str, Any]
) -> None:
    with _console(review, cn_officer) as console:
        csrf = _csrf(console.get("/"))
        refused = console.post("/language", data={"csrf": csrf, "lang": "fr", "next": "/"})
        assert refused.status_code == 422
        assert "lang" in refused.text
        forged = console.post("/language", data={"csrf": "0" * 64, "lang": "zh-Hans"})
        assert forged.status_code == 403
        elsewhere = console.post(
            "/language", data={"csrf": csrf, "lang": "en", "next": "//evil.example/"}
        )
        assert elsewhere.headers["location"] == "/", "never sent to another site"
        assert _lang_of(console.get("/")) == "en"


def test_the_sign_in_page_switches_language_without_a_session(review: ServiceProcess) -> None:
    page = httpx.get(review.url + "/sign-in", params={"lang": "zh-Hans"}, timeout=20)
    assert _lang_of(page) == "zh-Hans"
    assert "电子邮件地址" in page.text and "身份验证器应用中的验证码" in page.text
    assert "E-mail address" not in page.text, "the form's labels in Chinese too"
    assert 'method="get"' in page.text, "the signed-out switch stores nothing"


def test_a_refusal_is_said_in_the_pages_language(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: Officials,
    company_a: dict[str, Any],
) -> None:
    case = case_of(review, officials, submit(intake, company_a)["reference"])
    with _console(review, officials["eu_officer"], {"Accept-Language": "zh-Hans"}) as console:
        page = console.get(f"/cases/{case['id']}")
        assert "欧方初审" in page.text, "the state in Chinese"
        version = re.search(r'name="version" value="(\d+)"', page.text)
        assert version is not None
        refused = console.post(
            f"/cases/{case['id']}/actions",
            data={
                "csrf": _csrf(page),
                "action": "decline",
                "version": version.group(1),
                "reason": "other",
            },
        )
    assert refused.status_code == 422, refused.text[:500]
    # The sentence with its particulars (which action, which field, why), as in English.
    said = "详细说明：当原因为 其他（见详细说明） 时必填"  # the reason by its label
    assert f"“不予受理”的参数无效：{said}" in refused.text
    assert f"<li>{said}</li>" in refused.text
    assert "invalid parameters" not in refused.text and "Some fields" not in refused.text


def test_the_protocol_is_codes_only_unless_a_language_is_asked(
    review: ServiceProcess, officials: Officials
) -> None:
    with review.client(token(officials, "cn_officer")) as api:
        plain = api.get("/v1/protocol").json()
        asked = api.get("/v1/protocol", params={"lang": "zh-Hans"}).json()
        browser = api.get("/v1/protocol", headers={"Accept-Language": "zh-CN"}).json()
        unknown = api.get("/v1/protocol", params={"lang": "fr"})
    assert "labels" not in plain
    assert plain["states"]["cn_review"]["label"] == {"en": "CN review"}
    assert asked["labels"]["language"] == "zh-Hans"
    assert asked["labels"]["states"]["cn_review"] == "中方审查"
    assert asked["labels"]["reason_codes"]["refuse"]["diversion_risk"] == "存在转用或再出口风险"
    assert asked["labels"]["elements"]["Dy"] == "镝 (Dy)"
    assert asked["states"]["cn_review"]["label"] == {"en": "CN review", "zh-Hans": "中方审查"}
    assert browser["labels"] == asked["labels"]
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "lang"


def test_the_pages_added_since_and_the_account_refusals_are_in_chinese(
    review: ServiceProcess, cn_officer: dict[str, Any]
) -> None:
    chinese = {"Accept-Language": "zh-Hans"}
    with httpx.Client(base_url=review.url, timeout=20, headers=chinese) as browser:
        nonce = _csrf(browser.get("/sign-in"))
        wrong = {"csrf": nonce, "email": cn_officer["email"], "password": "wrong", "code": ""}
        refused = browser.post("/sign-in", data=wrong)
        assert refused.status_code == 403
        assert "电子邮件地址、密码或验证码错误" in refused.text
        assert "is wrong" not in refused.text
        forgot = browser.get("/forgot-password")
        assert "忘记密码" in forgot.text and "发送链接" in forgot.text
    with _console(review, cn_officer, chinese) as console:
        report = console.get("/reports/monthly")
        assert report.status_code == 200
        assert "月度报告" in report.text and "本月结果" in report.text
        assert "Monthly report" not in report.text and "Outcomes of the month" not in report.text
