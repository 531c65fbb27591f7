"""shared/runtime.py: every — the background rounds of the deadline check and the statistics."""

from __future__ import annotations

import asyncio

from shared.runtime import every


def test_rounds_go_on_after_a_failure_and_stop_with_the_service() -> None:
    rounds: list[int] = []
    seen: list[int] = []

    def work() -> int:
        rounds.append(len(rounds))
        if len(rounds) == 2:
            raise RuntimeError("database away")
        return len(rounds)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(every(0.01, work, "test", then=seen.append)(stop))
        while len(rounds) < 4:
            await asyncio.sleep(0.005)
        stop.set()
        await asyncio.wait_for(task, timeout=1)

    asyncio.run(main())
    assert seen[:3] == [1, 3, 4], "the failed second round handed nothing on"
    assert len(rounds) >= 4


def test_the_first_round_runs_at_once_and_a_stop_ends_the_wait() -> None:
    rounds: list[None] = []

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(every(3600, lambda: rounds.append(None), "test")(stop))
        while not rounds:
            await asyncio.sleep(0.005)
        stop.set()
        await asyncio.wait_for(task, timeout=1)  # not an hour

    asyncio.run(main())
    assert rounds == [None]


def test_a_coroutine_function_is_awaited_on_the_loop() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def work() -> int:
        loops.append(asyncio.get_running_loop())
        return len(loops)

    async def main() -> asyncio.AbstractEventLoop:
        stop = asyncio.Event()
        seen: list[int] = []
        task = asyncio.create_task(every(0.01, work, "test", then=seen.append)(stop))
        while len(seen) < 2:
            await asyncio.sleep(0.005)
        stop.set()
        await asyncio.wait_for(task, timeout=1)
        return asyncio.get_running_loop()

    loop = asyncio.run(main())
    assert loops and all(seen is loop for seen in loops), "awaited on the service's own loop"
