"""The Redis users as data, and the Redis settings: pure rules, no server."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.intake.views import SOURCE as INTAKE_SOURCE
from services.review.service import SOURCE as REVIEW_SOURCE
from shared.config import CommonSettings
from shared.events import INTAKE_STREAM, REVIEW_STREAM, STREAM_SOURCES
from shared.outbox import OutboxRelay
from shared.redis_acl import RELAY_KEYS, STREAM_ROLES, literal, service_user, url_for

PRODUCTION = {"REE_ENV": "production", "REE_TOKEN_SECRET": "s" * 40}


def test_each_stream_has_one_producer_and_its_source_is_the_one_consumers_expect() -> None:
    producers = {s: svc for svc, roles in STREAM_ROLES.items() for s in roles.produces}
    assert producers == {INTAKE_STREAM: "intake", REVIEW_STREAM: "review"}
    assert STREAM_SOURCES == {INTAKE_STREAM: INTAKE_SOURCE, REVIEW_STREAM: REVIEW_SOURCE}
    assert STREAM_ROLES["notify"].produces == ()


def test_no_service_may_add_to_a_stream_it_consumes() -> None:
    for service in STREAM_ROLES:
        user = service_user(service, "p_", "p_")
        adding = {k for g in user.grants if "xadd" in g.commands for k in g.keys}
        assert adding == {f"p_{s}" for s in STREAM_ROLES[service].produces} | {
            f"p_{s}.dlq" for s in STREAM_ROLES[service].consumes
        }


def test_the_relay_lock_grant_matches_the_relays_own_keys_and_no_other_services() -> None:
    relay = OutboxRelay(None, None, lock_name="p_intake:/data/intake.db")  # type: ignore[arg-type]
    assert relay.lock_key.startswith(RELAY_KEYS[0]) and relay.memory_key.startswith(RELAY_KEYS[1])
    [lock] = [g for g in service_user("intake", "p_", "p_").grants if "get" in g.commands]
    for key in (relay.lock_key, relay.memory_key):
        assert any(fnmatchcase(key, pattern) for pattern in lock.keys)
    assert not any(
        fnmatchcase("reechannel:outbox-lock:p_review:/data/review.db", p) for p in lock.keys
    )


def test_prefixes_are_matched_literally_in_key_patterns() -> None:
    assert literal("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
    [produce] = service_user("review", "run*_", "").grants[:1]
    assert produce.keys == ("run\\*_review.events",)


def test_a_url_gets_the_credentials_quoted_in_place_of_its_own() -> None:
    assert (
        url_for("rediss://old:pw@redis.example:6380/2", "intake", "p@ss/w:rd")
        == "rediss://intake:p%40ss%2Fw%3Ard@redis.example:6380/2"
    )


@pytest.mark.parametrize("url", ["redis://redis:6379/0", "redis://intake@redis:6379/0"])
def test_production_refuses_redis_without_a_password(url: str) -> None:
    with pytest.raises(ValidationError, match="Redis authentication is required in production"):
        CommonSettings(**PRODUCTION, REDIS_URL=url)


@pytest.mark.parametrize(
    "extra",
    [
        {"REDIS_URL": "redis://intake:secret@redis:6379/0"},
        {"REDIS_URL": "rediss://redis:6379/0", "REE_REDIS_PASSWORD": "secret"},
    ],
)
def test_production_accepts_a_password_in_the_url_or_from_its_own_setting(
    extra: dict[str, str],
) -> None:
    assert CommonSettings(**PRODUCTION, **extra).environment == "production"


def test_the_redis_settings_become_connection_options() -> None:
    settings = CommonSettings(
        REDIS_URL="rediss://redis:6379/0",
        REE_REDIS_USERNAME="review",
        REE_REDIS_PASSWORD="secret",
        REE_REDIS_CA_FILE=Path("/etc/ree/ca.pem"),
    )
    assert settings.redis_options() == {
        "username": "review",
        "password": "secret",
        "ssl_ca_certs": "/etc/ree/ca.pem",
    }
    assert CommonSettings(REDIS_URL="redis://a:b@redis/0").redis_options() == {}


def test_a_ca_file_without_tls_is_refused_rather_than_ignored() -> None:
    with pytest.raises(ValidationError, match="rediss://"):
        CommonSettings(REDIS_URL="redis://redis:6379/0", REE_REDIS_CA_FILE=Path("/ca.pem"))


def test_a_refused_setting_shows_no_value_of_another_setting() -> None:
    # Pydantic shows the start and the end of the values it refused: here the token secret.
    with pytest.raises(ValidationError) as refused:
        CommonSettings(
            REDIS_URL="redis://r/0",
            REE_REDIS_CA_FILE=Path("/c"),
            REE_TOKEN_SECRET="0123456789abcdef0123456789abcdef-never-shown",
        )
    assert "rediss://" in str(refused.value)
    assert "never-shown" not in str(refused.value)
