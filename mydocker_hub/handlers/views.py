"""Plain data the pages show about environments and servers (no tornado, no Docker calls)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markupsafe import Markup

from ..environments.model import Environment, link_is_safe
from ..i18n import Message

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

#: names of the interfaces, put in words in the reader's language
INTERFACE_NAMES = {
    "jupyterlab": Message("JupyterLab"),
    "vscode": Message("VS Code"),
    "desktop": Message("Desktop (noVNC)"),
    "ssh": Message("SSH"),
    "custom": Message("Custom"),
}


def render_markdown(text: str) -> Markup:
    """Markdown from a teacher's file, with raw HTML disabled (escaped) and unsafe links dropped."""
    return Markup(_markdown.render(text or ""))


#: unit symbols by language (French writes octets: Go, Mo)
_BYTE_UNITS = {"en": ("TB", "GB", "MB", "B"), "fr": ("To", "Go", "Mo", "o")}


def format_bytes(size: int | None, lang: str = "en") -> str:
    if not size:
        return ""
    tera, giga, mega, byte = _BYTE_UNITS.get(lang, _BYTE_UNITS["en"])
    for unit, factor in ((tera, 1024**4), (giga, 1024**3), (mega, 1024**2)):
        if size >= factor:
            value = size / factor
            text = f"{value:.0f}" if value == int(value) else f"{value:.1f}"
            return f"{text if lang == 'en' else text.replace('.', ',')} {unit}"
    return f"{size} {byte}"


def interfaces_of(env: Environment) -> list[str]:
    main = INTERFACE_NAMES[env.interface].localized() if env.interface in INTERFACE_NAMES else env.interface
    names = [] if env.interface in ("ssh", "custom") and env.ports else [main]
    for port in env.ports:
        names.append(
            f"{port.name} ({port.type.upper()} {port.port})"
            if port.name.upper() != port.type.upper()
            else f"{port.type.upper()} ({port.port})"
        )
    return names


_PLACEHOLDER = re.compile(r"\{(HOST\[(\d+)\]|PASSWORD|USERNAME|SERVER_URL)\}")


def render_link(template: str, *, host_of_port, password: str, username: str, server_url: str) -> str:
    """Fill a display link template. ``host_of_port(port)`` gives ``host:port`` or a proxied ``host/path``.

    An empty string when the filled link is not one a page may show (:func:`link_is_safe`)."""

    def replace(match: re.Match) -> str:
        if match.group(2):
            return host_of_port(int(match.group(2)))
        return {"PASSWORD": password, "USERNAME": username, "SERVER_URL": server_url}[match.group(1)]

    url = _PLACEHOLDER.sub(replace, template)
    return url if link_is_safe(url) else ""  # checked again once filled: the page shows no unsafe link


@dataclass(frozen=True)
class CardView:
    env: Environment
    title: str
    description: Markup
    interfaces: list[str]
    running: bool
    pending: bool
    availability: object = None  # sessions.policy.Availability, when known


def card_view(env: Environment, lang: str, spawner=None, availability=None) -> CardView:
    return CardView(
        env=env,
        title=env.localized_title(lang),
        description=render_markdown(env.localized_description(lang)),
        interfaces=interfaces_of(env),
        running=bool(spawner and spawner.ready),
        pending=bool(spawner and spawner.pending),
        availability=availability,
    )
