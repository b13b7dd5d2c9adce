"""A line for server starts: at most so many servers starting at once, the others wait their turn.

When a whole class asks at once, every server starting at the same time shares the node's CPUs with
all the others, and they all become ready together at the end. Letting a few start at a time, first come
first served, gives the first students their server in seconds and the last ones no later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable


class StartSlots:
    """At most ``size`` holders at once (``size`` < 1: no limit); the others wait in arrival order."""

    def __init__(self, size: int = 0):
        self.size = size
        self.holders = 0
        self._line: deque[asyncio.Future] = deque()

    @property
    def waiting(self) -> int:
        """How many are in line."""
        return len(self._line)

    def _free(self) -> bool:
        return self.size < 1 or self.holders < self.size

    @contextlib.asynccontextmanager
    async def slot(
        self, on_wait: Callable[[int], None] | None = None, report_every: float = 2.0
    ) -> AsyncIterator[None]:
        """Hold a slot for the ``async with`` body. While in line, ``on_wait(ahead)`` is called when the
        number of starts ahead changes (checked every ``report_every`` seconds)."""
        if self._free() and not self._line:
            self.holders += 1
        else:
            turn = asyncio.get_running_loop().create_future()
            self._line.append(turn)
            reported = None
            try:
                while not turn.done():
                    ahead = self._line.index(turn)
                    if on_wait and ahead != reported:
                        reported = ahead
                        on_wait(ahead)
                    await asyncio.wait({turn}, timeout=report_every)
            except BaseException:
                if turn in self._line:
                    self._line.remove(turn)
                elif turn.done():
                    self._release()  # the slot was handed to us as we were cancelled
                raise
        try:
            yield
        finally:
            self._release()

    def resize(self, size: int) -> None:
        """Change the number of slots; waiters get the slots this frees."""
        self.size = size
        while self._line and self._free():
            self.holders += 1
            self._line.popleft().set_result(None)

    def _release(self) -> None:
        if self._line and (self.size < 1 or self.holders <= self.size):
            self._line.popleft().set_result(None)  # the slot goes straight to the next in line
        else:
            self.holders -= 1
