"""LTI 1.3 Dynamic Registration: Moodle 4.x's "Add LTI Advantage" with the hub's registration link.

The platform opens the link in its administration page with ``openid_configuration`` (its OpenID
configuration URL) and ``registration_token``; the tool reads that configuration, posts its own client
metadata to the platform's registration endpoint, and keeps what the platform answers (client ID,
deployment ID) as a platform entry in the same form as the ``lti_platforms`` setting.

The link carries a key signed with the hub's cookie secret and valid for a limited time (the page that
shows it is for admins only): the platform's page is another site, where the admin's hub cookies are not
sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"


class RegistrationError(Exception):
    """What went wrong, worded for the administrator who is registering the hub."""


# -- the registration link's key ------------------------------------------------------------------------
def registration_key(secret: bytes, issued_at_ms: int, expires_at: int) -> str:
    """``<issued ms>.<expiry>.<signature>``: valid until ``expires_at`` (epoch seconds) for a hub with this
    secret, and until a platform registers through it or through any later link (see ``registration_key_valid``)."""
    return f"{issued_at_ms}.{expires_at}.{_signature(secret, issued_at_ms, expires_at)}"


def registration_key_valid(secret: bytes, key: str, *, last_registration_ms: int = 0, now: float | None = None) -> bool:
    """Signed by this hub, not expired, and issued after the last registration: each link registers one
    platform (a link that leaked after its use registers nothing)."""
    issued, _, rest = key.partition(".")
    expiry, _, signature = rest.partition(".")
    if not (issued.isdigit() and expiry.isdigit()) or len(issued) > 15 or len(expiry) > 12:
        return False
    if int(expiry) < (time.time() if now is None else now) or int(issued) <= last_registration_ms:
        return False
    return hmac.compare_digest(signature, _signature(secret, int(issued), int(expiry)))


def _signature(secret: bytes, issued_at_ms: int, expires_at: int) -> str:
    message = f"mydocker-lti-registration:{issued_at_ms}:{expires_at}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:40]


# -- what the platform says about itself ----------------------------------------------------------------
def check_platform_configuration(configuration: dict, configuration_url: str) -> dict:
    """The platform's OpenID configuration, checked: the fields the hub needs, from the issuer's site."""
    if not isinstance(configuration, dict):
        raise RegistrationError("the platform's OpenID configuration is not a JSON object")
    needed = ("issuer", "authorization_endpoint", "jwks_uri", "registration_endpoint")
    missing = [key for key in needed if not configuration.get(key)]
    if missing:
        raise RegistrationError(f"the platform's OpenID configuration lacks {', '.join(missing)}")
    issuer = str(configuration["issuer"])
    for key in needed:
        if urlsplit(str(configuration[key])).scheme not in ("http", "https"):
            raise RegistrationError(f"the platform's {key} is not an http(s) URL: {configuration[key]!r}")
    # the specification: the configuration must come from the issuer's own site
    site = issuer.rstrip("/")
    if configuration_url != site and not configuration_url.startswith(site + "/"):
        raise RegistrationError(
            f"the OpenID configuration at {configuration_url} names the issuer {issuer}, which is not its site"
        )
    return configuration


# -- what the hub says about itself -----------------------------------------------------------------------
def tool_client_metadata(*, launch_url: str, login_url: str, keyset_url: str, client_name: str) -> dict:
    """The hub's registration request: an LTI 1.3 tool with launches and deep linking, names and e-mails."""
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": login_url,
        "redirect_uris": [launch_url],
        "client_name": client_name,
        "jwks_uri": keyset_url,
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": "",
        TOOL_CONFIGURATION: {
            "domain": urlsplit(launch_url).netloc,
            "target_link_uri": launch_url,
            "description": "Ready-to-use environments: JupyterLab, VS Code, a desktop, a terminal over SSH.",
            "claims": ["iss", "sub", "name", "given_name", "family_name", "email"],
            "messages": [
                {"type": "LtiResourceLinkRequest"},
                {"type": "LtiDeepLinkingRequest", "target_link_uri": launch_url},
            ],
        },
    }


def platform_entry(configuration: dict, answer: dict, taken_names: set[str], registered_at_ms: int) -> dict:
    """An ``lti_platforms`` entry from the platform's configuration and its answer to the registration.

    Such a platform is not trusted yet: its users are ``<sub>@<name>`` (``username_source: sub``), never the
    account of the e-mail address it sends (its site administrators can give any of its accounts any
    address), and its own administrators are not made hub admins (``trust_admin_roles: false``). A hub
    admin may change either once they trust that platform (docs/identity.md).
    """
    if not isinstance(answer, dict) or not answer.get("client_id"):
        raise RegistrationError("the platform's answer to the registration has no client_id")
    tool_configuration = answer.get(TOOL_CONFIGURATION) or {}
    deployment_id = tool_configuration.get("deployment_id") if isinstance(tool_configuration, dict) else None
    if not deployment_id:
        raise RegistrationError(
            "the platform gave no deployment ID: register the hub by hand (values on this page) instead"
        )
    platform_details = configuration.get(PLATFORM_CONFIGURATION) or {}
    product = str(platform_details.get("product_family_code", "")) if isinstance(platform_details, dict) else ""
    return {
        "name": platform_name(str(configuration["issuer"]), taken_names),
        "title": f"{product.capitalize() or 'LTI platform'} ({urlsplit(str(configuration['issuer'])).netloc})",
        "issuer": str(configuration["issuer"]),
        "client_id": str(answer["client_id"]),
        "deployment_ids": [str(deployment_id)],
        "auth_login_url": str(configuration["authorization_endpoint"]),
        "jwks_url": str(configuration["jwks_uri"]),
        "username_source": "sub",
        "trust_admin_roles": False,
        "registered_at_ms": registered_at_ms,
    }


def platform_name(issuer: str, taken: set[str]) -> str:
    """A short name for a platform (it scopes usernames: ``<sub>@<name>``): its host's first label."""
    host = urlsplit(issuer).hostname or "platform"
    base = re.sub(r"[^a-z0-9-]+", "-", host.split(".")[0].lower()).strip("-")[:26] or "platform"
    if not base[0].isalnum():
        base = "p" + base[:25]
    name, number = base, 2
    while name in taken:
        name = f"{base}-{number}"
        number += 1
    return name


# -- where registered platforms are kept ---------------------------------------------------------------------
class RegisteredPlatformsFile:
    """The platforms registered through dynamic registration: a JSON list in the hub's data directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def load(self) -> list[dict]:
        if not self.path.exists():
            return []
        entries = json.loads(self.path.read_text(encoding="utf-8"))
        if not isinstance(entries, list):
            raise ValueError(f"{self.path}: expected a JSON list of platforms")
        return entries

    @property
    def _spent_mark(self) -> Path:
        return self.path.with_name(self.path.name + ".links-spent-before")

    def links_spent_before(self) -> int:
        """Registration links issued before this time (ms) are spent: the last registration's time, kept
        apart from the list, so that removing a platform from it (or a list that no longer reads) does
        not bring its link back to life."""
        try:
            return int(self._spent_mark.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def spend_links_before(self, moment_ms: int) -> None:
        if moment_ms > self.links_spent_before():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._spent_mark.write_text(f"{moment_ms}\n")

    def add(self, entry: dict) -> None:
        self.spend_links_before(int(entry.get("registered_at_ms") or 0))
        entries = self.load() + [entry]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".lti-platforms-")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as f:
                json.dump(entries, f, indent=2)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)  # all or nothing: a crash leaves the previous list
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
