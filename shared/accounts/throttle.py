"""A growing delay after failed sign-ins, per account and per client address, in Redis.

Kept in Redis so every replica of every service sees the same count: an attacker spreading
guesses over replicas gets no more tries. One hash a key, `reechannel:signin:<schema
prefix>:<scope>:<digest>` with the failure count and the time (Redis's clock, so replicas
agree) before which no attempt is taken; it expires a while after the last failure.

The first failures cost nothing (a typo); from then on each doubles the wait, up to a cap.
An account is keyed by a digest of the e-mail as typed, whether or not anyone has it, so
the delay itself tells nothing about which e-mails exist.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import redis

KEY_PREFIX = "reechannel:signin:"
# Commands the scripts below run (shared/redis_acl.py grants them on KEY_PREFIX's keys).
COMMANDS = ("eval", "hget", "hincrby", "hset", "pexpire", "del", "time")


@dataclass(frozen=True)
class Policy:
    """After `free_failures`, each failure makes the next attempt wait twice as long as the
    last, from `first_delay_ms` up to `max_delay_ms`; forgotten `memory_ms` after the last."""

    free_failures: int
    first_delay_ms: int
    max_delay_ms: int
    memory_ms: int


ACCOUNT = Policy(
    free_failures=3, first_delay_ms=1_000, max_delay_ms=15 * 60_000, memory_ms=3_600_000
)
# Many people may share one address (an office behind NAT): more free tries.
ADDRESS = Policy(
    free_failures=20, first_delay_ms=1_000, max_delay_ms=15 * 60_000, memory_ms=3_600_000
)

# KEYS[1]: the hash; ARGV: free failures, first delay, max delay, memory (ms).
_FAIL = """
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local free = tonumber(ARGV[1])
if n > free then
  local grown = tonumber(ARGV[2]) * 2 ^ math.min(n - free - 1, 40)
  local delay = math.floor(math.min(grown, tonumber(ARGV[3])))
  redis.call('HSET', KEYS[1], 'until', now + delay)
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return n
"""
# KEYS: the hashes; returns the longest wait left, in ms (0: go ahead).
_WAIT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local wait = 0
for _, key in ipairs(KEYS) do
  local untilms = tonumber(redis.call('HGET', key, 'until') or '0')
  if untilms - now > wait then wait = untilms - now end
end
return wait
"""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class SignInThrottle:
    def __init__(self, client: redis.Redis, schema_prefix: str = "") -> None:
        self.client = client
        self.prefix = f"{KEY_PREFIX}{schema_prefix}:"

    def account_key(self, email: str) -> str:
        return f"{self.prefix}account:{_digest(email)}"

    def address_key(self, address: str) -> str:
        return f"{self.prefix}address:{_digest(address)}"

    def wait_ms(self, email: str, address: str) -> int:
        """How long, in ms, before this account may try again from this address (0: now)."""
        keys = [self.account_key(email), self.address_key(address)]
        return int(self.client.eval(_WAIT, len(keys), *keys))

    def failed(self, email: str, address: str) -> None:
        for key, policy in (
            (self.account_key(email), ACCOUNT),
            (self.address_key(address), ADDRESS),
        ):
            self.client.eval(
                _FAIL,
                1,
                key,
                policy.free_failures,
                policy.first_delay_ms,
                policy.max_delay_ms,
                policy.memory_ms,
            )

    def succeeded(self, email: str) -> None:
        """The account's count starts again; the address's does not (it may be guessing others)."""
        self.client.delete(self.account_key(email))

    def failures(self, email: str) -> int:
        value = self.client.hget(self.account_key(email), "n")
        return int(value or 0)
