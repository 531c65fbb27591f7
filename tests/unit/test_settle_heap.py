"""A booted service freezes what it holds, so full collections stop walking it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared.runtime import settle_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_what_lives_at_boot_is_frozen_and_later_garbage_is_still_collected(
    unfrozen: None,
) -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    survivor = Cycle()
    settle_heap()
    assert gc.get_freeze_count() > 10_000, "the imported modules' objects are frozen"
    assert gc.is_tracked(survivor) and survivor.me is survivor

    collected_before = sum(s["collected"] for s in gc.get_stats())
    garbage = Cycle()
    del garbage
    gc.collect()
    assert sum(s["collected"] for s in gc.get_stats()) > collected_before, (
        "a cycle made after the freeze is still collected"
    )
