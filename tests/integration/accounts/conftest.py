"""Fixtures of the accounts tests: the credential directory of the test deployment and
Redis clients connected as the services' own users (shared/redis_acl.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import redis

from shared.config import CommonSettings
from shared.directory import Directory, open_directory
from shared.redis_acl import apply, delete, service_user, url_for
from tests.integration.accounts.support import Kit, kit
from tests.support import Infra


@pytest.fixture(scope="module")
def directory(infra: Infra) -> Iterator[Directory]:
    made = open_directory(
        CommonSettings(
            DATABASE_URL=infra.database_url,
            REE_DATA_DIR=infra.data_dir,
            REE_SCHEMA_PREFIX=infra.prefix,
        )
    )
    yield made
    made.engine.dispose()


@pytest.fixture(scope="module")
def service_redis(infra: Infra) -> Iterator[dict[str, redis.Redis]]:
    """Clients of intake's and review's own Redis users (as made by shared/redis_acl.py)."""
    admin = infra.redis()
    made: dict[str, redis.Redis] = {}
    names = []
    try:
        for service in ("intake", "review", "notify"):
            user = service_user(service, infra.prefix, infra.prefix, name=infra.prefix + service)
            password = secrets.token_urlsafe(24)
            apply(admin, user, password)
            names.append(user.name)
            made[service] = redis.Redis.from_url(
                url_for(infra.redis_url, user.name, password), decode_responses=True
            )
        yield made
    finally:
        for key in admin.scan_iter(match=f"reechannel:signin:{infra.prefix}*"):
            admin.delete(key)
        delete(admin, *names)


@pytest.fixture
def k(directory: Directory, service_redis: dict[str, redis.Redis], infra: Infra) -> Kit:
    """The account operations as review would run them."""
    return kit(directory, service_redis["review"], infra)
