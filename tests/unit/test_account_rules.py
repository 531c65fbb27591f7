"""The pure rules of personal accounts: passwords, e-mails, TOTP codes and their QR code,
token lifetimes, the session cookie and the Redis grant of the sign-in delays."""

from __future__ import annotations

from fnmatch import fnmatchcase
from xml.etree import ElementTree

import pyotp
import pytest
import typer
from starlette.responses import Response

from reechannel.people import parse_lifetime
from shared.accounts import throttle, totp
from shared.accounts.errors import InvalidInput
from shared.accounts.passwords import (
    MIN_LENGTH,
    Passwords,
    WeakPassword,
    check_new_password,
    common_passwords,
)
from shared.accounts.people import normalise_email
from shared.accounts.sessions import set_session_cookie
from shared.redis_acl import service_user


def test_the_common_password_list_is_the_10000_most_frequent() -> None:
    listed = common_passwords()
    assert len(listed) == 10_000 and {"123456", "password", "qwertyuiop"} <= listed
    assert "1qaz2wsx3edc" in listed  # 12 characters and common: the list matters


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("a" * (MIN_LENGTH - 1), "at least 12"),
        ("1qaz2wsx3edc", "most common"),
        ("1QAZ2WSX3EDC", "most common"),
        ("passwordpasswordpassword", "most common"),
        ("zzzzzzzzzzzzzzzz", "most common"),
        ("eva.europa@example.eu", "e-mail"),
        ("x" * 257, "at most"),
    ],
)
def test_a_weak_password_is_refused_with_its_rule(password: str, rule: str) -> None:
    with pytest.raises(WeakPassword, match=rule):
        check_new_password(password, "Eva.Europa@example.eu")


def test_a_long_uncommon_password_is_taken() -> None:
    check_new_password("correct horse battery staple", "eva@example.eu")


def test_passwords_are_argon2id_and_an_unknown_hash_costs_one_verification() -> None:
    passwords = Passwords()
    stored = passwords.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "correct horse battery staple")
    assert not passwords.verify(stored, "wrong horse battery staple")
    # No such person: the dummy hash is checked, and even its own password does not match.
    assert not passwords.verify(None, "dummy password, never anyone's")


def test_e_mails_are_normalised_and_checked() -> None:
    assert normalise_email("  Eva.Europa@Example.EU ") == "eva.europa@example.eu"
    for bad in ("eva", "eva@", "@example.eu", "eva@example", "e va@example.eu", "a@b@c.eu"):
        with pytest.raises(InvalidInput):
            normalise_email(bad)


def test_a_totp_code_matches_its_secret_one_step_either_side_only() -> None:
    secret = totp.new_secret()
    clock = pyotp.TOTP(secret)
    now = 1_800_000_000
    for step in (-1, 0, 1):
        code = clock.at(now + 30 * step)
        assert clock.verify(code, for_time=now, valid_window=totp.VALID_WINDOW)
    assert not clock.verify(clock.at(now + 90), for_time=now, valid_window=totp.VALID_WINDOW)
    assert totp.code_matches(secret, totp.current_code(secret))
    assert not totp.code_matches(secret, "12345") and not totp.code_matches(secret, "abcdef")


def test_a_code_is_matched_to_its_own_time_step_within_the_window() -> None:
    secret = totp.new_secret()
    clock = pyotp.TOTP(secret)
    now = 1_800_000_000
    step = now // 30
    for offset in (-1, 0, 1):
        code = clock.generate_otp(step + offset)
        assert totp.matched_step(secret, code, now=now) == step + offset
    assert totp.matched_step(secret, clock.generate_otp(step + 2), now=now) is None
    assert totp.matched_step(secret, f" {clock.generate_otp(step)[:3]} ", now=now) is None


def test_only_a_base32_secret_of_sensible_length_is_taken_back_from_a_form() -> None:
    assert totp.is_secret(totp.new_secret())
    for bad in ("", "SHORT", "not base32 at all!!", "A" * 65, "0189" * 8):
        assert not totp.is_secret(bad), bad


def test_the_provisioning_qr_code_is_an_svg_drawn_here() -> None:
    secret = totp.new_secret()
    svg = totp.qr_svg(secret, "eva@example.eu")
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg") and "http" not in svg.replace("http://www.w3.org/2000/svg", "")
    assert totp.provisioning_uri(secret, "eva@example.eu").startswith(
        "otpauth://totp/REE%20Channel:eva%40example.eu?secret="
    )


@pytest.mark.parametrize(
    ("text", "days", "hours"), [("90d", 90, 0), ("30", 30, 0), ("12h", 0, 12), (" 7D ", 7, 0)]
)
def test_a_token_lifetime_is_days_or_hours(text: str, days: int, hours: int) -> None:
    lifetime = parse_lifetime(text)
    assert lifetime.days == days and lifetime.seconds == hours * 3600


@pytest.mark.parametrize("text", ["0", "0d", "-1d", "soon", "1w", "3661d"])
def test_a_bad_token_lifetime_is_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_lifetime(text)


@pytest.mark.parametrize(("host", "secure"), [("127.0.0.1", False), ("console.ree.eu", True)])
def test_the_session_cookie_is_http_only_strict_and_secure_off_this_machine(
    host: str, secure: bool
) -> None:
    response = Response()
    set_session_cookie(response, "ree_ss_secret", host, 43_200)
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
    assert ("Secure" in cookie) is secure


def test_only_the_services_where_people_sign_in_may_keep_the_delays() -> None:
    key = throttle.SignInThrottle(None, "p_").account_key("eva@example.eu")  # type: ignore[arg-type]
    for service, allowed in (("intake", True), ("review", True), ("notify", False)):
        grants = service_user(service, "p_", "p_").grants
        granted = [g for g in grants if any(fnmatchcase(key, k) for k in g.keys)]
        assert bool(granted) is allowed, service
        if allowed:
            assert set(throttle.COMMANDS) <= set(granted[0].commands)
    other = throttle.SignInThrottle(None, "q_").account_key("eva@example.eu")  # type: ignore[arg-type]
    assert not any(
        fnmatchcase(other, k) for g in service_user("intake", "p_", "p_").grants for k in g.keys
    )
