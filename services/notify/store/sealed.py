"""The endpoints' signing secrets sealed in their columns, whatever reads or writes them.

`SealedSecret` is the columns' type: every statement that binds a secret (the ORM's and
Core's alike) seals it with the ring's current key, and every row read opens it, so no path
can store or hand out a secret the wrong way. The ring is the process's, set once by the
service from its settings (`use_keys`) before anything touches the table, else read from
the environment's settings on first use.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, select, type_coerce, update
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.types import TypeDecorator

from services.notify.domain.sealing import KeyRing, UnknownKey, is_sealed, sealed_key_id

# Long enough for a sealed `whsec_` secret (about 130 characters).
SEALED_LENGTH = 255

_ring: KeyRing | None = None


def use_keys(ring: KeyRing) -> None:
    global _ring
    _ring = ring


def ring() -> KeyRing:
    """The process's ring; unless set, the one notify's settings in this environment give
    (an operator command or a test reading notify's tables)."""
    global _ring
    if _ring is None:
        from services.notify.settings import NotifySettings

        _ring = NotifySettings().key_ring()
    return _ring


class SealedSecret(TypeDecorator[str]):
    impl = String(SEALED_LENGTH)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or is_sealed(value):
            return value
        return ring().seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else ring().open(value)


def _raw_columns() -> Any:
    from services.notify.store.tables import WebhookEndpoint

    table = WebhookEndpoint.__table__  # type: ignore[attr-defined]
    # The stored text as it is, without the type's opening (type_coerce to plain String).
    return table, [
        table.c.id,
        type_coerce(table.c.secret, String),
        type_coerce(table.c.previous_secret, String),
    ]


def reseal(engine: Engine, only_plain: bool = False) -> tuple[int, int]:
    """Seal every secret with the current key (those sealed with an old key, and those from
    before sealing); `only_plain`: just the latter. Returns (endpoints, values resealed).

    Refuses (UnknownKey) before changing anything if a value was sealed with a key the ring
    does not hold: the operator dropped a key too early.
    """
    keys = ring()
    table, columns = _raw_columns()
    with engine.begin() as conn:
        rows = conn.execute(select(*columns)).all()
        for _id, *values in rows:
            for value in values:
                kid = sealed_key_id(value) if value else None
                if kid is not None and not keys.knows(kid):
                    raise UnknownKey(kid)
        changed = endpoints = 0
        for endpoint_id, *values in rows:
            fresh = [_resealed(keys, value, only_plain) for value in values]
            if fresh == values:
                continue
            endpoints += 1
            changed += sum(1 for a, b in zip(fresh, values, strict=True) if a != b)
            conn.execute(
                update(table)
                .where(table.c.id == endpoint_id)
                .values(secret=fresh[0], previous_secret=fresh[1])
            )
    return endpoints, changed


def _resealed(keys: KeyRing, value: str | None, only_plain: bool) -> str | None:
    if value is None:
        return None
    if is_sealed(value) and (only_plain or sealed_key_id(value) == keys.current_id):
        return value
    return keys.seal(keys.open(value))
