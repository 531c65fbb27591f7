"""The simulator's output: a one-line progress bar and its messages."""

from __future__ import annotations

import sys
import time


class Progress:
    """A one-line progress bar on stderr (\\r), quiet when stderr is not a terminal-ish stream."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, max(total, 1), 0
        self.started = time.monotonic()
        self._last = 0.0
        self.draw(force=True)

    def step(self, n: int = 1) -> None:
        self.done += n
        self.draw()

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.2 and self.done < self.total:
            return
        self._last = now
        share = min(self.done / self.total, 1.0)
        bar = "█" * int(share * 30) + "░" * (30 - int(share * 30))
        elapsed = now - self.started
        sys.stderr.write(
            f"\r{self.label:<26} {bar} {share * 100:5.1f}%  "
            f"{self.done}/{self.total}  {elapsed:5.0f}s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        self.done = self.total
        self.draw(force=True)
        sys.stderr.write("\n")


def say(message: str) -> None:
    print(f"[simulate] {message}", flush=True)
