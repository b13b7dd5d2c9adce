"""Names derived from users and environments.

These names are a contract: services, volumes and secrets are found again by them after a hub restart, so
changing any output here orphans running servers and home volumes. ``tests/test_names.py`` pins them.
A name is a readable slug plus, whenever the slug had to drop or change characters, a short hash of the
original so that two different users never share a name.
"""

import hashlib
import re
import unicodedata

_UNSAFE = re.compile(r"[^a-z0-9]+")
_HASH_LENGTH = 8


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LENGTH]


def _ascii(text: str) -> str:
    """Drop accents (é -> e) so that names stay readable."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def safe_slug(text: str, max_length: int = 24) -> str:
    """A lowercase ``[a-z0-9-]`` slug of ``text``, at most ``max_length`` characters.

    Text that is already a safe slug of acceptable length is returned unchanged; anything else gets
    ``-<hash of the original>`` appended so that distinct inputs stay distinct.
    """
    slug = _UNSAFE.sub("-", _ascii(text).lower()).strip("-")
    if slug == text and 0 < len(slug) <= max_length and not slug[0].isdigit():
        return slug
    keep = max(1, max_length - _HASH_LENGTH - 1)
    slug = slug[:keep].strip("-") or "x"
    if slug[0].isdigit():
        slug = "u" + slug[: keep - 1]
    return f"{slug}-{_short_hash(text)}"


SERVICE_NAME_MAX = 63  # Docker's limit (a DNS label)
SECRET_NAME_MAX = 64  # Docker's limit


def service_name(prefix: str, username: str, server_name: str) -> str:
    """Swarm service of one user's server: ``<prefix>-<user slug>--<server>`` (≤ 63 characters).

    A long username with a long environment slug would pass Docker's limit: then both slugs are cut
    (with a hash of the original, so names stay distinct). Names within the limit never change.
    """
    name = f"{prefix}-{safe_slug(username, 24)}--{safe_slug(server_name, 30)}"
    if len(name) <= SERVICE_NAME_MAX:
        return name
    room = SERVICE_NAME_MAX - len(prefix) - 3  # for the two slugs, after "-" and "--"
    user = safe_slug(username, min(24, max(10, room // 2)))
    return f"{prefix}-{user}--{safe_slug(server_name, max(10, room - len(user)))}"


def home_volume_name(prefix: str, username: str, environment_slug: str | None) -> str:
    """Docker volume holding a home: global per user when ``environment_slug`` is None."""
    base = f"{prefix}-home-{safe_slug(username, 40)}"
    return base if environment_slug is None else f"{base}--{safe_slug(environment_slug, 30)}"


def secret_name(service: str, generation: str, kind: str = "pw") -> str:
    """Swarm secret of one service start: ``pw`` holds the login's password, ``tk`` the hub API token.

    Found again by its label, not its name: a long service name is cut (with its hash) to fit Docker's limit.
    """
    suffix = f"-{kind}-{generation}"
    if len(service) + len(suffix) > SECRET_NAME_MAX:
        service = service[: SECRET_NAME_MAX - len(suffix) - _HASH_LENGTH - 1] + "-" + _short_hash(service)
    return f"{service}{suffix}"


_LOGIN_UNSAFE = re.compile(r"[^a-z0-9_]+")


def login_name(username: str) -> str:
    """A POSIX login for the user inside containers (``^[a-z_][a-z0-9_-]{0,31}$``)."""
    login = _LOGIN_UNSAFE.sub("_", _ascii(username.split("@", 1)[0]).lower()).strip("_")
    if login == username and login and len(login) <= 32 and not login[0].isdigit():
        return login
    login = login[:20].strip("_") or "user"
    if login[0].isdigit():
        login = "u" + login[:19]
    return f"{login}_{_short_hash(username)}"
