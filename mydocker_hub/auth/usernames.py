"""Which hub username a person gets, whichever door they come through.

``email`` and ``eppn`` are global identifiers: the same teacher arriving from Moodle and from the
federation becomes the same hub user. ``sub`` is only unique per issuer, so it is scoped with the
issuer's short name (``sub@scope``): two platforms can never produce the same username.
"""

from __future__ import annotations

import hashlib
import re

USERNAME_SOURCES = ("email", "eppn", "sub")

_SAFE = re.compile(r"[^a-z0-9._@+-]")


def _clean(value: str) -> str:
    return value.strip().lower()


def scoped_sub(sub: str, scope: str) -> str:
    """``sub`` made unique across issuers: ``<sub>@<scope>``; odd or long subjects are hashed."""
    sub = _clean(str(sub))
    if not sub or _SAFE.search(sub) or len(sub) > 64:
        sub = hashlib.sha256(str(sub).encode()).hexdigest()[:20]
    return f"{sub}@{scope}"


def email_is_verified(claims: dict) -> bool:
    """Unless the provider says it did not verify the e-mail (``email_verified: false``, or the string
    ``"false"`` some providers send from their userinfo endpoint)."""
    verified = claims.get("email_verified", True)
    if isinstance(verified, str):
        return verified.strip().lower() not in ("false", "0", "no")
    return verified is not False


def username_from_claims(claims: dict, *, source: str, scope: str, eppn_claim: str = "eppn") -> tuple[str, str]:
    """Return ``(username, source actually used)``.

    Falls back to the issuer-scoped ``sub`` when the configured claim is missing (Moodle, by default,
    sends neither the name nor the e-mail) or, for the e-mail, marked unverified (``email_verified: false``),
    so a login never fails for lack of an attribute.
    """
    if source == "email":
        value = claims.get("email")
        # an address the provider says it did not verify could be anyone's: it is not a global identity
        if isinstance(value, str) and "@" in value and email_is_verified(claims):
            return _clean(value), "email"
    elif source == "eppn":
        value = claims.get(eppn_claim)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value.strip():
            return _clean(value), "eppn"
    sub = claims.get("sub")
    if not sub:
        raise ValueError("the identity has no 'sub' claim")
    return scoped_sub(str(sub), scope), "sub"
