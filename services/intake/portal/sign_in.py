"""Signing in (e-mail, password, and a code if the person set up a factor), out, accepting a
staff invitation (the factor offered, not required) and resetting a password: the pages of
shared/web/accounts.py, for company staff, under the portal's own cookie."""

from __future__ import annotations

from fastapi import Request

from services.intake.portal.pages import render, router, words_of
from services.intake.portal.session import COOKIE_NAME, accounts_of, posted
from shared.accounts.models import PersonKind
from shared.accounts.web import LinkMailSettings
from shared.web.accounts import AccountSite, Words, add_account_pages


def _words(request: Request) -> Words:
    return words_of(request)


def _settings(request: Request) -> LinkMailSettings:
    settings: LinkMailSettings = request.app.state.settings  # IntakeSettings
    return settings


SITE = AccountSite(
    kind=PersonKind.staff,
    cookie=COOKIE_NAME,
    render=render,
    words_of=_words,
    accounts_of=accounts_of,
    posted=posted,
    settings_of=_settings,
)
add_account_pages(router, SITE)
