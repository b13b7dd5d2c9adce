"""Short-lived, single-use values of the LTI flow, kept in the hub's memory.

``state`` of each login initiation (with its nonce), nonces already consumed (replays are refused),
continuation tokens ("open in a new window") and deep-linking tickets. Entries expire; the store is
bounded so a flood of login initiations cannot exhaust memory.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from typing import Any


class ExpiringStore:
    def __init__(self, ttl: float, max_entries: int = 20000, clock=time.monotonic):
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._values: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def _expire(self) -> None:
        now = self.clock()
        while self._values:
            key, (expires, _) = next(iter(self._values.items()))
            if expires > now and len(self._values) <= self.max_entries:
                break
            self._values.popitem(last=False)

    def put(self, value: Any, key: str | None = None) -> str:
        self._expire()
        key = key or secrets.token_urlsafe(32)
        self._values[key] = (self.clock() + self.ttl, value)
        return key

    def get(self, key: str) -> Any | None:
        self._expire()
        item = self._values.get(key)
        return item[1] if item else None

    def pop(self, key: str) -> Any | None:
        self._expire()
        item = self._values.pop(key, None)
        return item[1] if item else None

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None
