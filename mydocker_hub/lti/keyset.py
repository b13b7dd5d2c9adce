"""Platforms' public keys, fetched asynchronously and cached with a TTL.

A key is looked up in the cache first; an unknown ``kid`` triggers one asynchronous refresh of that
platform's keyset (at most every ``min_refresh_interval`` seconds, so forged tokens cannot make the hub
hammer Moodle). Nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import jwt
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.log import app_log

log = app_log  # the hub's log, where admins look


class KeysetError(Exception):
    """The platform's keyset could not be used; the message says why, without any token."""


@dataclass
class _Entry:
    keys: dict[str, jwt.PyJWK]
    fetched_at: float
    attempted_at: float


class KeysetCache:
    def __init__(self, ttl: float = 3600, min_refresh_interval: float = 10, timeout: float = 10):
        self.ttl = ttl
        self.min_refresh_interval = min_refresh_interval
        self.timeout = timeout
        self._entries: dict[str, _Entry] = {}
        self._failed_at: dict[str, tuple[float, KeysetError]] = {}  # last failed fetch of a keyset never read
        self._locks: dict[str, asyncio.Lock] = {}

    async def _fetch(self, url: str) -> dict[str, jwt.PyJWK]:
        request = HTTPRequest(url, request_timeout=self.timeout, headers={"Accept": "application/json"})
        try:
            response = await AsyncHTTPClient().fetch(request)
            document = json.loads(response.body)
            keyset = jwt.PyJWKSet.from_dict(document)
        except Exception as error:  # network, HTTP status, JSON, key format: all mean "unusable keyset"
            raise KeysetError(f"the keyset at {url} could not be read ({type(error).__name__}: {error})") from None
        return {key.key_id: key for key in keyset.keys if key.key_id}

    async def refresh(self, url: str) -> None:
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            entry = self._entries.get(url)
            now = time.monotonic()
            if entry is None and url in self._failed_at:
                failed_at, error = self._failed_at[url]
                if now - failed_at < self.min_refresh_interval:
                    raise error  # a platform that is down is not asked again at every launch: same reason
            if entry and now - entry.attempted_at < self.min_refresh_interval:
                return
            if entry:
                entry.attempted_at = now
            try:
                keys = await self._fetch(url)
            except KeysetError as error:
                self._failed_at[url] = (now, error)
                raise
            self._entries[url] = _Entry(keys=keys, fetched_at=time.monotonic(), attempted_at=time.monotonic())
            log.info("LTI keyset %s: %d key(s)", url, len(keys))

    async def key(self, url: str, kid: str) -> jwt.PyJWK:
        entry = self._entries.get(url)
        stale = entry is None or time.monotonic() - entry.fetched_at > self.ttl
        if stale or kid not in entry.keys:
            try:
                await self.refresh(url)
            except KeysetError as error:
                if entry is None or kid not in entry.keys:
                    raise
                # the platform cannot be reached just now: the key it published before still proves the launch
                log.warning("LTI keyset not refreshed, using the cached one: %s", error)
            entry = self._entries.get(url)
        if entry is None or kid not in entry.keys:
            raise KeysetError(f"the platform's keyset ({url}) has no key with kid {kid!r}")
        return entry.keys[kid]

    async def prefetch(self, urls: list[str]) -> None:
        """Warm the cache at start-up so the first launch does not wait for Moodle."""
        for url in urls:
            try:
                await self.refresh(url)
            except KeysetError as error:
                log.warning("LTI keyset not fetched yet: %s", error)
