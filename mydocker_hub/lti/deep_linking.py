"""The signed ``LtiDeepLinkingResponse`` that makes Moodle create an activity for an environment."""

from __future__ import annotations

import secrets
import time

from .launch import CLAIM, DL_CLAIM
from .platforms import Platform
from .toolkey import ToolKey


def content_item(*, title: str, url: str, slug: str, text: str = "") -> dict:
    """An ``ltiResourceLink`` opening ``url`` (the environment's join link)."""
    item = {"type": "ltiResourceLink", "title": title, "url": url, "custom": {"environment": slug}}
    if text:
        item["text"] = text
    return item


def response_jwt(
    *,
    key: ToolKey,
    platform: Platform,
    deployment_id: str,
    items: list[dict],
    data: str | None,
    now: float | None = None,
) -> str:
    """The JWT to post back as ``JWT`` to the platform's ``deep_link_return_url``."""
    now = int(time.time() if now is None else now)
    claims = {
        "iss": platform.client_id,
        "aud": platform.issuer,
        "iat": now,
        "exp": now + 300,
        "nonce": secrets.token_urlsafe(16),
        CLAIM + "deployment_id": deployment_id,
        CLAIM + "message_type": "LtiDeepLinkingResponse",
        CLAIM + "version": "1.3.0",
        DL_CLAIM + "content_items": items,
    }
    if data is not None:
        claims[DL_CLAIM + "data"] = data
    return key.sign(claims)
