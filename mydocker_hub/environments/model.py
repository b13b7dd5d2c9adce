"""Typed, validated view of one environment profile (a teacher's YAML file).

Objects here are built by :mod:`mydocker_hub.environments.loader` from a document that already passed the
JSON Schema; they hold normalised values only (CPU in cores, memory in bytes, durations in seconds), so the
layers above never parse strings again. They import nothing else from mydocker_hub.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

INTERFACES = ("jupyterlab", "vscode", "desktop", "ssh", "custom")
PORT_TYPES = ("http", "ssh", "tcp")
HOME_TYPES = ("none", "environment", "global")
STATUSES = ("draft", "test", "ready", "archived")

#: where each interface lands inside jupyterhub-singleuser (jupyter-server-proxy provides /vscode and /desktop)
INTERFACE_DEFAULT_URLS = {"jupyterlab": "/lab", "vscode": "/vscode/", "desktop": "/desktop/"}


@dataclass(frozen=True)
class Port:
    name: str
    port: int
    type: str = "http"  # one of PORT_TYPES
    required: bool = True


@dataclass(frozen=True)
class Resources:
    cpu_limit: float | None = None  # cores; None = no limit
    cpu_reservation: float | None = None  # cores
    memory_limit: int | None = None  # bytes
    memory_reservation: int | None = None  # bytes
    gpus: int = 0
    node_pool: str | None = None  # value of the node label `mydocker.pool`


@dataclass(frozen=True)
class Home:
    type: str = "global"  # one of HOME_TYPES
    mount_path: str = "/home/jovyan"
    size: int | None = None  # bytes; given to the home volume's driver ({size} in home_volume_driver_options)


#: what a link button may open: web pages and the usual remote-access clients, never ``javascript:``/``data:``
LINK_SCHEMES = ("http", "https", "ssh", "sftp", "vnc", "rdp")
_LINK_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


def link_is_safe(url: str) -> bool:
    """A link a page may show: a relative URL (``/...``, ``//host``) or one of :data:`LINK_SCHEMES`."""
    if not url or url != url.strip() or any(ord(character) < 32 for character in url):
        return False  # browsers skip leading blanks and control characters before reading the scheme
    scheme = _LINK_SCHEME.match(url)
    if scheme is None:
        return url.startswith("/") or url.startswith("{")  # a path, or a placeholder filled by the hub
    return scheme.group(1).lower() in LINK_SCHEMES


def link_template_is_safe(template: str) -> bool:
    """A link button's template: a safe link, or one that starts with the server's address or a port's host.

    Not with ``{USERNAME}`` or ``{PASSWORD}``: their value would decide the link's scheme.
    """
    if template.startswith(("{SERVER_URL}", "{HOST[")):
        return not any(ord(character) < 32 for character in template)
    return not template.startswith("{") and link_is_safe(template)


@dataclass(frozen=True)
class Link:
    title: str
    url: str  # template: {HOST[8888]}, {PASSWORD}, {USERNAME}, {SERVER_URL}


@dataclass(frozen=True)
class Display:
    show_username: bool = False
    show_password: bool = False
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class Access:
    groups: tuple[str, ...] = ()  # who may see/start it once ready; empty = everyone
    owners: tuple[str, ...] = ()
    editors: tuple[str, ...] = ()
    viewers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Session:
    start: dt.datetime  # timezone-aware
    end: dt.datetime  # timezone-aware
    students: int
    block_before_start: bool = False
    stop_at_end: bool = False
    warn_before_end: int = 10  # minutes
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Environment:
    slug: str
    title: dict[str, str]  # language code -> text; always has "en"
    image: str
    description: dict[str, str] = field(default_factory=dict)  # language code -> Markdown
    interface: str = "jupyterlab"
    command: tuple[str, ...] = ()  # only for interface=custom (or to override); may hold {username}/{password}
    ports: tuple[Port, ...] = ()
    resources: Resources = Resources()
    home: Home = Home()
    env: dict[str, str] = field(default_factory=dict)
    idle_timeout: int = 20 * 60  # seconds
    max_lifetime: int | None = None  # seconds
    status: str = "ready"
    access: Access = Access()
    display: Display = Display()
    sessions: tuple[Session, ...] = ()
    software: tuple[str, ...] = ()
    source_file: str = ""  # path the profile was loaded from
    slug_line: int = 1  # line of ``slug:`` in that file (1 when the slug is the file's name)

    # -- small derived views used by pages and the spawner --------------------------------------------
    def localized_title(self, lang: str) -> str:
        return self.title.get(lang) or self.title["en"]

    def localized_description(self, lang: str) -> str:
        return self.description.get(lang) or self.description.get("en", "")

    @property
    def http_ports(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.type == "http")

    @property
    def published_ports(self) -> tuple[Port, ...]:
        """Ports published on the node (host mode): everything that is not HTTP."""
        return tuple(p for p in self.ports if p.type != "http")

    @property
    def serves_http(self) -> bool:
        """True when the container runs a server the hub proxies to (jupyterhub-singleuser or a custom one)."""
        if self.interface in INTERFACE_DEFAULT_URLS:
            return True
        if self.interface == "ssh":
            return False
        return bool(self.http_ports)

    def is_manager(self, username: str) -> bool:
        return username in self.access.owners or username in self.access.editors

    def can_view_config(self, username: str) -> bool:
        return self.is_manager(username) or username in self.access.viewers
