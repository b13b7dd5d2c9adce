"""Validation of an LTI 1.3 id_token, the way Moodle 4.x sends it.

Every check that fails raises :class:`LaunchRejected` naming the check and what to do, never echoing
the token. The order matters: nothing from the token is trusted before its signature is verified.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jwt
from ltiauthenticator.lti13.constants import LTI13_GENERAL_REQUIRED_CLAIMS
from ltiauthenticator.lti13.error import ValidationError
from ltiauthenticator.lti13.validator import LTI13LaunchValidator

from .keyset import KeysetCache, KeysetError
from .platforms import Platform, PlatformRegistry

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
RESOURCE_LINK = "LtiResourceLinkRequest"
DEEP_LINKING = "LtiDeepLinkingRequest"


class LaunchRejected(Exception):
    """A launch that must not log anyone in. ``check`` names what failed (issuer, signature, …)."""

    def __init__(self, check: str, message: str, status: int = 400):
        super().__init__(f"LTI launch refused ({check}): {message}")
        self.check = check
        self.message = message
        self.status = status


@dataclass(frozen=True)
class PendingLogin:
    """What the login initiation remembered, keyed by ``state``."""

    platform_name: str
    nonce: str
    client_id: str


@dataclass
class Launch:
    platform: Platform
    claims: dict
    message_type: str
    deployment_id: str
    roles: list[str]
    custom: dict[str, str]
    context_id: str = ""
    context_title: str = ""
    target_link_uri: str = ""
    deep_linking: dict = field(default_factory=dict)


def _minutes(seconds: float) -> int:
    return max(1, round(abs(seconds) / 60))


def check_times(claims: dict, *, now: float, leeway: float) -> None:
    """``iat``/``exp`` with a leeway; a token from the future or long expired means a wrong clock."""
    try:
        issued_at = float(claims["iat"])
        expires_at = float(claims["exp"])
    except (KeyError, TypeError, ValueError):
        raise LaunchRejected("time", "the launch has no valid iat/exp claims") from None
    if issued_at > now + leeway:
        ahead = issued_at - now
        raise LaunchRejected(
            "clock",
            f"the launch was issued {ahead:.0f} s in the future: the clock of this computer or of Moodle is "
            f"{_minutes(ahead)} minutes off (allowed: {leeway:.0f} s). Ask the administrators to synchronise "
            "the clocks (NTP), or raise the LTI clock leeway.",
        )
    late = now - expires_at
    if late > leeway:
        if late > leeway + 120:  # far more than a slow network: a clock is wrong
            raise LaunchRejected(
                "clock",
                f"the launch expired {late:.0f} s ago: if you have just clicked the activity, the clock of this "
                f"computer or of Moodle is {_minutes(late)} minutes off (allowed: {leeway:.0f} s). Ask the "
                "administrators to synchronise the clocks (NTP), or raise the LTI clock leeway.",
            )
        raise LaunchRejected("expired", "the launch expired before it reached the hub: open the activity again.")


def check_claims(claims: dict) -> None:
    """Required LTI claims. Resource links use ltiauthenticator's checks; for deep linking those wrongly
    require every optional claim (``azp``, ``tool_platform``…, which Moodle does not send), so only the
    claims the specification requires are checked."""
    validator = LTI13LaunchValidator(max_age=10**9)
    try:
        if claims.get(CLAIM + "message_type") == DEEP_LINKING:
            validator._check_arg_not_missing(claims, LTI13_GENERAL_REQUIRED_CLAIMS.keys())
            validator._check_lti_version(claims)
            settings = claims.get(DL_CLAIM + "deep_linking_settings") or {}
            if not settings.get("deep_link_return_url"):
                raise LaunchRejected("claims", "deep linking request without deep_link_return_url")
        else:
            validator.validate_id_token(claims)
    except ValidationError as error:
        raise LaunchRejected("claims", str(error)) from None


async def validate_launch(
    id_token: str,
    *,
    pending: PendingLogin,
    registry: PlatformRegistry,
    keys: KeysetCache,
    used_nonces,
    leeway: float = 60,
    now: float | None = None,
) -> Launch:
    """Check an id_token posted to the launch URL and return what it says."""
    now = time.time() if now is None else now
    try:
        header = jwt.get_unverified_header(id_token)
        unverified = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise LaunchRejected("format", "the id_token is not a JSON Web Token") from None
    algorithm = header.get("alg")
    if algorithm != "RS256":
        raise LaunchRejected("signature", f"algorithm {algorithm!r} is refused: platforms must sign with RS256")
    issuer = unverified.get("iss")
    audience = unverified.get("aud")
    client_id = audience if isinstance(audience, str) else (unverified.get("azp") or "")
    platform = registry.find(str(issuer), str(client_id)) or registry.find(str(issuer))
    if platform is None:
        raise LaunchRejected(
            "issuer", f"{issuer!r} is not a registered platform: an administrator must add it to lti_platforms"
        )
    if platform.name != pending.platform_name:
        raise LaunchRejected("issuer", "the launch does not come from the platform that initiated the login")
    kid = header.get("kid")
    if not kid:
        raise LaunchRejected("signature", "the id_token has no key id (kid)")
    try:
        key = await keys.key(platform.jwks_url, kid)
    except KeysetError as error:
        raise LaunchRejected("key", str(error)) from None
    try:
        claims = jwt.decode(
            id_token,
            key.key,
            algorithms=["RS256"],
            audience=platform.client_id,
            issuer=platform.issuer,
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "require": ["iat", "exp"]},
        )
    except jwt.InvalidSignatureError:
        raise LaunchRejected("signature", "the signature does not match the platform's key") from None
    except jwt.InvalidAudienceError:
        raise LaunchRejected(
            "audience", f"the launch is not meant for this tool (client id {platform.client_id!r} expected)"
        ) from None
    except jwt.InvalidIssuerError:
        raise LaunchRejected("issuer", "the issuer does not match the registered platform") from None
    except jwt.PyJWTError as error:
        raise LaunchRejected("token", f"the id_token is invalid ({type(error).__name__})") from None
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != platform.client_id:
        raise LaunchRejected("audience", "several audiences but no azp naming this tool")
    check_times(claims, now=now, leeway=leeway)

    deployment_id = claims.get(CLAIM + "deployment_id")
    if not deployment_id:
        raise LaunchRejected("deployment", "the launch has no deployment id")
    if str(deployment_id) not in platform.deployment_ids:
        raise LaunchRejected(
            "deployment",
            f"deployment {str(deployment_id)[:64]!r} is not registered for platform {platform.name!r}: "
            "an administrator must add it to its deployment_ids",
        )
    nonce = claims.get("nonce")
    if not nonce or nonce != pending.nonce:
        raise LaunchRejected("nonce", "the nonce does not match the login that started this launch")
    if used_nonces.get(nonce):
        raise LaunchRejected("nonce", "this launch was already used (replayed): open the activity again")
    used_nonces.put(True, key=nonce)

    check_claims(claims)

    context = claims.get(CLAIM + "context") or {}
    custom = {str(k).lower(): str(v) for k, v in (claims.get(CLAIM + "custom") or {}).items()}
    return Launch(
        platform=platform,
        claims=claims,
        message_type=claims[CLAIM + "message_type"],
        deployment_id=str(deployment_id),
        roles=[str(role) for role in claims.get(CLAIM + "roles") or []],
        custom=custom,
        context_id=str(context.get("id") or ""),
        context_title=str(context.get("title") or context.get("label") or ""),
        target_link_uri=str(claims.get(CLAIM + "target_link_uri") or ""),
        deep_linking=dict(claims.get(DL_CLAIM + "deep_linking_settings") or {}),
    )
