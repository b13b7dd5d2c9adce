"""The LTI 1.3 tool: registered platforms, keys and the short-lived state of launches, in one object.

The authenticator owns one :class:`LtiTool`; the handlers in :mod:`.handlers` only do HTTP.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from tornado.log import app_log

from .keyset import KeysetCache
from .launch import Launch, PendingLogin, validate_launch
from .platforms import Platform, PlatformRegistry
from .store import ExpiringStore
from .toolkey import ToolKey

log = app_log  # the hub's log, where admins look


@dataclass
class DeepLinkTicket:
    """A deep-linking request waiting for the teacher's choice (the ticket in the URL is its secret)."""

    launch: Launch
    username: str
    groups: frozenset[str]
    is_admin: bool


@dataclass(frozen=True)
class Continuation:
    """A launch made in the platform's frame, waiting for the window its "new window" link opens."""

    launch: Launch
    auth_model: dict
    next_url: str
    opener_key: str  # the frame hands it to the window it opened (postMessage), and to nobody else


class LtiTool:
    def __init__(
        self,
        platforms: list[Platform],
        *,
        key_file: str,
        clock_leeway: float = 60,
        keyset_ttl: float = 3600,
        keyset_min_refresh_interval: float = 10,
        login_ttl: float = 600,
    ):
        self.registry = PlatformRegistry(platforms)
        self.clock_leeway = clock_leeway
        self.keys = KeysetCache(ttl=keyset_ttl, min_refresh_interval=keyset_min_refresh_interval)
        self.pending_logins = ExpiringStore(ttl=login_ttl)
        # a nonce must stay "used" for as long as a token carrying it could still pass the time checks
        self.used_nonces = ExpiringStore(ttl=max(login_ttl, 2 * clock_leeway + 300))
        self.continuations = ExpiringStore(ttl=300)
        self.deep_link_tickets = ExpiringStore(ttl=3600, max_entries=2000)
        self._key_file = key_file
        self._tool_key: ToolKey | None = None
        self._prefetch_task: asyncio.Task | None = None

    @property
    def tool_key(self) -> ToolKey:
        if self._tool_key is None:
            self._tool_key = ToolKey.load_or_create(self._key_file)
        return self._tool_key

    def start_background_prefetch(self) -> None:
        """Fetch every platform's keyset once the event loop runs (the first launch then waits for nothing)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._prefetch_task is None and self.registry:
            urls = sorted({p.jwks_url for p in self.registry.platforms})
            self._prefetch_task = loop.create_task(self.keys.prefetch(urls))

    def begin_login(self, platform: Platform, client_id: str) -> tuple[str, str]:
        """Remember a login initiation; return ``(state, nonce)`` for the authorization request."""
        nonce = secrets.token_urlsafe(24)
        state = self.pending_logins.put(PendingLogin(platform.name, nonce, client_id))
        return state, nonce

    def take_pending(self, state: str) -> PendingLogin | None:
        return self.pending_logins.pop(state)

    async def validate(self, id_token: str, pending: PendingLogin, now: float | None = None) -> Launch:
        return await validate_launch(
            id_token,
            pending=pending,
            registry=self.registry,
            keys=self.keys,
            used_nonces=self.used_nonces,
            leeway=self.clock_leeway,
            now=now,
        )
