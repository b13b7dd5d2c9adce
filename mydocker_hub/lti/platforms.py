"""Registered LTI 1.3 platforms (one Moodle, or several), checked once at start-up."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..auth.usernames import USERNAME_SOURCES

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,29}$")
REQUIRED = ("name", "issuer", "client_id", "deployment_ids", "auth_login_url", "jwks_url")
#: registered_at_ms: when a platform registered itself (dynamic registration); informative
KNOWN = set(REQUIRED) | {
    "title",
    "username_source",
    "eppn_parameter",
    "allow_embedding",
    "trust_admin_roles",
    "registered_at_ms",
}


@dataclass(frozen=True)
class Platform:
    """One registration of this hub as a tool in a platform (what the Moodle admin created)."""

    name: str  # short name: scopes usernames (``sub@name``) and names course groups
    issuer: str
    client_id: str
    deployment_ids: frozenset[str]
    auth_login_url: str  # the platform's OIDC authorization endpoint (Moodle: /mod/lti/auth.php)
    jwks_url: str  # the platform's public keyset (Moodle: /mod/lti/certs.php)
    title: str = ""
    username_source: str = "sub"
    eppn_parameter: str = "eppn"  # custom parameter carrying the eduPersonPrincipalName
    allow_embedding: bool = False  # log in inside Moodle's iframe (needs HTTPS: SameSite=None; Secure cookies)
    trust_admin_roles: bool = True
    origins: frozenset[str] = field(default=frozenset())  # web origins that may frame the LTI pages

    @property
    def display_name(self) -> str:
        return self.title or self.name


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def parse_platforms(entries: list[dict], *, default_username_source: str = "sub") -> list[Platform]:
    """Check the ``lti_platforms`` setting; a ValueError names the entry, the field and the fix."""
    platforms: list[Platform] = []
    seen_names: set[str] = set()
    seen_registrations: set[tuple[str, str]] = set()
    for index, entry in enumerate(entries):
        where = f"lti_platforms[{index}]" + (f" ({entry.get('name')})" if isinstance(entry, dict) else "")
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping with {', '.join(REQUIRED)}")
        unknown = set(entry) - KNOWN
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}; known fields: {sorted(KNOWN)}")
        missing = [key for key in REQUIRED if not entry.get(key)]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)} (copy them from the platform's tool page)")
        name = str(entry["name"])
        if not NAME.match(name):
            raise ValueError(f"{where}: name {name!r} must be 1-30 lowercase letters, digits or dashes, like 'moodle'")
        if name in seen_names:
            raise ValueError(f"{where}: the name {name!r} is used twice; give each platform its own name")
        deployment_ids = entry["deployment_ids"]
        if isinstance(deployment_ids, (str, int)):
            deployment_ids = [deployment_ids]
        source = entry.get("username_source", default_username_source)
        if source not in USERNAME_SOURCES:
            raise ValueError(f"{where}: username_source must be one of {list(USERNAME_SOURCES)}, not {source!r}")
        for key in ("issuer", "auth_login_url", "jwks_url"):
            if urlsplit(str(entry[key])).scheme not in ("http", "https"):
                raise ValueError(f"{where}: {key} must be an http(s) URL, not {entry[key]!r}")
        registration = (str(entry["issuer"]), str(entry["client_id"]))
        if registration in seen_registrations:
            raise ValueError(f"{where}: issuer and client_id {registration} are registered twice")
        seen_names.add(name)
        seen_registrations.add(registration)
        platforms.append(
            Platform(
                name=name,
                issuer=str(entry["issuer"]),
                client_id=str(entry["client_id"]),
                deployment_ids=frozenset(str(value) for value in deployment_ids),
                auth_login_url=str(entry["auth_login_url"]),
                jwks_url=str(entry["jwks_url"]),
                title=str(entry.get("title", "")),
                username_source=source,
                eppn_parameter=str(entry.get("eppn_parameter", "eppn")).lower(),
                allow_embedding=bool(entry.get("allow_embedding", False)),
                trust_admin_roles=bool(entry.get("trust_admin_roles", True)),
                origins=frozenset({_origin(str(entry["issuer"])), _origin(str(entry["auth_login_url"]))}),
            )
        )
    return platforms


class PlatformRegistry:
    """Look platforms up by issuer (and client id when an issuer registered the tool several times)."""

    def __init__(self, platforms: list[Platform]):
        self.platforms = list(platforms)

    def __bool__(self) -> bool:
        return bool(self.platforms)

    def add(self, platform: Platform) -> None:
        """A platform registered while the hub runs (dynamic registration)."""
        self.platforms.append(platform)

    def find(self, issuer: str, client_id: str | None = None) -> Platform | None:
        matches = [p for p in self.platforms if p.issuer == issuer]
        if client_id:
            matches = [p for p in matches if p.client_id == client_id]
        return matches[0] if len(matches) == 1 else None

    def by_name(self, name: str) -> Platform | None:
        return next((p for p in self.platforms if p.name == name), None)

    @property
    def frame_origins(self) -> list[str]:
        """Origins of every platform: the LTI pages themselves are always framable by them."""
        return sorted({origin for p in self.platforms for origin in p.origins})

    @property
    def embedding_origins(self) -> list[str]:
        """Origins allowed to frame every hub page (platforms where an admin enabled embedding)."""
        return sorted({origin for p in self.platforms if p.allow_embedding for origin in p.origins})
