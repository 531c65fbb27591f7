"""Redis users: what each service may read and write there, as data, and how to set them up.

Each service connects as a Redis user of its own (issue 17, F4), allowed only the commands
it runs on the keys it uses: its producer may add to its own stream and to no other; a
consumer may read the streams it consumes and work its consumer group there (XREADGROUP,
XACK, XAUTOCLAIM, XPENDING), but not add to them; it writes the dead-letter stream
`<stream>.dlq` and the errors hash of its group; and the outbox relay's lock and memory
keys of its own database. Each grant is one ACL selector, so a command is allowed only with
the keys of the same grant: a consumer's EVAL can run the dead-letter script on its streams,
and Redis checks every command inside the script against the same grants again.

Set up with ACL SETUSER (`apply`, `provision_embedded`) or as an ACL file for a Redis that
starts with `--aclfile` (`acl_file`, used by docker-compose.yml). `reechannel redis`
(reechannel/redis_users.py) is the operator's command for both.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import redis

from shared import ratelimit
from shared.accounts import throttle
from shared.events import INTAKE_STREAM, REVIEW_STREAM

SERVICES = ("intake", "review", "notify")
OPERATOR = "operator"
# The `default` user of Redis; it keeps every right, behind a password.
ADMIN = "admin"


@dataclass(frozen=True)
class StreamRoles:
    """The streams a service adds to (its outbox relay) and those it consumes."""

    produces: tuple[str, ...]
    consumes: tuple[str, ...]


STREAM_ROLES: dict[str, StreamRoles] = {
    "intake": StreamRoles(produces=(INTAKE_STREAM,), consumes=(REVIEW_STREAM,)),
    "review": StreamRoles(produces=(REVIEW_STREAM,), consumes=(INTAKE_STREAM,)),
    "notify": StreamRoles(produces=(), consumes=(INTAKE_STREAM, REVIEW_STREAM)),
}

# Without keys: the connection's own commands (redis-py pings idle connections) and the
# MULTI/EXEC around an acknowledgement (the commands inside are checked one by one).
SESSION = ("ping", "hello", "select", "multi", "exec", "discard")
PRODUCE = ("xadd",)
# shared/retention.py: the producer trims what every group of its stream has acknowledged.
RETAIN = ("xinfo|groups", "xpending", "xtrim")
# shared/consumer.py and notify's backlog (services/notify/backlog.py); no XADD.
CONSUME = (
    "xgroup|create",
    "xreadgroup",
    "xack",
    "xautoclaim",
    "xpending",
    "xinfo|groups",
    "xrange",
)
# XRANGE: shared/pruning.py keeps processed-event ids as old as the oldest dead letter.
DEAD_LETTERS = ("xadd", "xlen", "xrange")
ERRORS = ("hset", "hget", "hdel")
# The dead-letter script names the stream, its dead-letter stream and the errors hash.
DEAD_LETTERING = ("eval",)
# shared/outbox.py: the lock taken and released by scripts, the memory key set directly.
RELAY_LOCK = ("eval", "get", "set", "exists", "del")
# `reechannel dlq list | replay` (shared/deadletters.py), and reading a stream by hand.
OPERATE_STREAMS = ("xrange", "xlen", "xinfo|groups", "xadd")
OPERATE_DEAD_LETTERS = ("xrange", "xlen", "xdel")
# Must match the keys of shared/outbox.py's OutboxRelay (a test checks that they do).
RELAY_KEYS = ("reechannel:outbox-lock:", "reechannel:outbox-memory:")
# The services where people sign in (the companies' portal on intake, the console on
# review) keep the sign-in delays of shared/accounts/throttle.py; notify has no sign-in.
SIGNS_IN = ("intake", "review")


@dataclass(frozen=True)
class Grant:
    """Commands allowed on keys matching the patterns together: one ACL selector."""

    commands: tuple[str, ...]
    keys: tuple[str, ...]

    def selector(self) -> str:
        rules = [*(f"~{k}" for k in self.keys), *(f"+{c}" for c in self.commands)]
        return "(" + " ".join(rules) + ")"


@dataclass(frozen=True)
class RedisUser:
    name: str
    grants: tuple[Grant, ...]

    def rules(self, password_rule: str) -> list[str]:
        """ACL rules from nothing: `reset` drops whatever the user was allowed before."""
        return ["reset", "on", password_rule, *(f"+{c}" for c in SESSION)] + [
            g.selector() for g in self.grants
        ]


def literal(text: str) -> str:
    """`text` as an ACL key pattern matching only itself (prefixes come from settings)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def service_user(
    service: str, stream_prefix: str = "", schema_prefix: str = "", name: str | None = None
) -> RedisUser:
    """The Redis user of one service; group and lock names follow shared/runtime.py."""
    roles = STREAM_ROLES[service]
    group = schema_prefix + service
    grants = [Grant((*PRODUCE, *RETAIN), (literal(stream_prefix + s),)) for s in roles.produces]
    for stream in roles.consumes:
        key = literal(stream_prefix + stream)
        dlq, errors = f"{key}.dlq", f"{key}.errors:{literal(group)}"
        grants += [
            Grant(CONSUME, (key,)),
            Grant(DEAD_LETTERS, (dlq,)),
            Grant(ERRORS, (errors,)),
            Grant(DEAD_LETTERING, (key, dlq, errors)),
        ]
    grants.append(Grant(RELAY_LOCK, tuple(f"{k}{literal(group)}:*" for k in RELAY_KEYS)))
    # The shared rate limit's windows of this service's replicas (shared/ratelimit.py).
    limits = f"{ratelimit.KEY_PREFIX}{literal(schema_prefix + service)}:*"
    grants.append(Grant(ratelimit.COMMANDS, (limits,)))
    if service in SIGNS_IN:
        # Shared by both services: one account's failures count wherever it tries.
        keys = f"{throttle.KEY_PREFIX}{literal(schema_prefix)}:*"
        grants.append(Grant(throttle.COMMANDS, (keys,)))
    return RedisUser(name or service, tuple(grants))


def operator_user(stream_prefix: str = "", name: str = OPERATOR) -> RedisUser:
    streams = tuple(literal(stream_prefix + s) for s in (INTAKE_STREAM, REVIEW_STREAM))
    return RedisUser(
        name,
        (
            Grant(OPERATE_STREAMS, streams),
            Grant(OPERATE_DEAD_LETTERS, tuple(f"{s}.dlq" for s in streams)),
        ),
    )


def users(
    stream_prefix: str = "", schema_prefix: str = "", name_prefix: str = ""
) -> dict[str, RedisUser]:
    """Every user, by role (each service's name, and `operator`)."""
    made = {s: service_user(s, stream_prefix, schema_prefix, name_prefix + s) for s in SERVICES}
    made[OPERATOR] = operator_user(stream_prefix, name_prefix + OPERATOR)
    return made


def apply(admin: redis.Redis, user: RedisUser, password: str) -> None:
    """Create or redefine the user, with this password, on a Redis reached as an admin."""
    admin.execute_command("ACL", "SETUSER", user.name, *user.rules(f">{password}"))


def delete(admin: redis.Redis, *names: str) -> None:
    if names:
        admin.execute_command("ACL", "DELUSER", *names)


def acl_file(defined: Mapping[RedisUser, str], admin_password: str) -> str:
    """An ACL file (`redis-server --aclfile`) with these users and passwords, and the
    `default` user behind `admin_password`. Passwords are written only as SHA-256."""
    lines = [f"user default on #{_sha256(admin_password)} ~* &* +@all"]
    lines += [
        " ".join(["user", user.name, *user.rules(f"#{_sha256(password)}")])
        for user, password in defined.items()
    ]
    return "\n".join(lines) + "\n"


def _sha256(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def url_for(redis_url: str, username: str, password: str) -> str:
    """`redis_url` with these credentials in place of any it carried."""
    parts = urlsplit(redis_url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def provision_embedded(
    redis_url: str, data_dir: Path, stream_prefix: str = "", schema_prefix: str = ""
) -> dict[str, str]:
    """Set up the users on the Redis `reechannel run` started, and lock its `default` user.

    Passwords are made once and kept in `<data_dir>/redis/users.json` (mode 0600, with each
    role's URL), so they survive restarts; the users themselves are set up again on every
    start, since Redis keeps them only in memory. Returns the URL of each role (each service,
    `operator`, `admin`).
    """
    path = data_dir / "redis" / "users.json"
    saved: dict[str, dict[str, str]] = json.loads(path.read_text()) if path.exists() else {}
    kept = saved.get("passwords", {})
    roles = users(stream_prefix, schema_prefix)
    passwords = {role: kept.get(role) or secrets.token_urlsafe(24) for role in [*roles, ADMIN]}
    urls = {role: url_for(redis_url, user.name, passwords[role]) for role, user in roles.items()}
    urls[ADMIN] = url_for(redis_url, "default", passwords[ADMIN])
    # Written before Redis is changed: a crash in between must not lose the admin password.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps({"passwords": passwords, "urls": urls}, indent=2) + "\n")
    admin = _admin(redis_url, passwords[ADMIN])
    try:
        for role, user in roles.items():
            apply(admin, user, passwords[role])
        admin.execute_command(
            "ACL", "SETUSER", "default", "on", "resetpass", f">{passwords[ADMIN]}"
        )
    finally:
        admin.close()
    return urls


def _admin(redis_url: str, password: str) -> redis.Redis:
    """The `default` user: open on a freshly started Redis, behind `password` after a
    provisioning of the same running server."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.ping()
        return client
    except redis.AuthenticationError:
        client.close()
    return redis.Redis.from_url(redis_url, username="default", password=password)
