"""Whether a started server answers yet: its web interface over HTTP, its SSH/TCP ports by connecting.

Starts wait with :func:`probe_until`, which asks often while few servers are starting (a refused connection
costs nothing and servers start in seconds) and calms down when a whole class starts at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

log = logging.getLogger(__name__)


async def http_answers(url: str) -> bool:
    """Whether ``url`` gives any HTTP answer (a status, even an error: the server is up)."""
    try:
        request = HTTPRequest(url, request_timeout=3, connect_timeout=2)
        await AsyncHTTPClient().fetch(request, raise_error=False)
        return True
    except Exception as error:  # refused / reset while the server boots
        log.debug("%s not answering yet: %s", url, error)
        return False


async def tcp_answers(ip: str, port: int) -> bool:
    """Whether ``ip:port`` accepts a connection."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), 2)
        writer.close()
        return True
    except (OSError, asyncio.TimeoutError):
        return False


class _Pace:
    probing = 0  # starts of this hub waiting for their server to answer

    @classmethod
    def interval(cls) -> float:
        """0.1 s for a lone start; with a class starting at once, about 20 probes a second in all."""
        return min(2.0, max(0.1, cls.probing / 20))


async def probe_until(answers: Callable[[], Awaitable[bool]], failure: Callable[[], Exception | None]) -> None:
    """Ask ``answers()`` until it says yes; raise ``failure()`` as soon as it returns one (the start has failed)."""
    _Pace.probing += 1
    try:
        while True:
            failed = failure()
            if failed:
                raise failed
            if await answers():
                return
            await asyncio.sleep(_Pace.interval())
    finally:
        _Pace.probing -= 1
