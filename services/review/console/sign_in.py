"""Signing in (e-mail, password and code), out, accepting an invitation (password and second
factor) and resetting a password: the pages of shared/web/accounts.py, for officials."""

from __future__ import annotations

from fastapi import Request

from services.review.console.pages import render, router, words_of
from services.review.console.session import accounts_of, posted
from shared.accounts.models import PersonKind
from shared.accounts.sessions import COOKIE_NAME
from shared.accounts.web import LinkMailSettings
from shared.web.accounts import AccountSite, Words, add_account_pages


def _words(request: Request) -> Words:
    return words_of(request, None)


def _settings(request: Request) -> LinkMailSettings:
    settings: LinkMailSettings = request.app.state.settings  # ReviewSettings
    return settings


SITE = AccountSite(
    kind=PersonKind.official,
    cookie=COOKIE_NAME,
    render=render,
    words_of=_words,
    accounts_of=accounts_of,
    posted=posted,
    settings_of=_settings,
)
add_account_pages(router, SITE)
