"""The look of the hub services' pages (class sessions, images): the hub's navigation bar and stylesheet, and
the reader's language, as on the hub's own pages.
"""

from __future__ import annotations

import os
from html import escape

from jupyterhub.utils import url_path_join

from .i18n import Message, current_language, pick_language


def said(message: Message) -> str:
    """``message`` in the reader's language, escaped for HTML."""
    return escape(message.localized())


class LocalizedPage:
    """Mixin for a service's tornado handler: its pages speak the browser's language."""

    def prepare(self):
        current_language.set(pick_language(self.request.headers.get("Accept-Language")))
        return super().prepare()


def page_shell(title: str, body: str, *, username: str = "") -> str:
    """A whole page: the hub's stylesheet and navigation bar (to the hub's pages and both services), ``title``
    (plain text) and ``body`` (HTML, escaped by the caller)."""
    prefix = os.environ.get("JUPYTERHUB_BASE_URL", "/")
    hub = url_path_join(prefix, "hub/")
    links = [
        (url_path_join(hub, "home"), Message("My environments").localized()),
        (url_path_join(hub, "spawn"), Message("Catalogue").localized()),
        (url_path_join(hub, "environments"), Message("Environment files").localized()),
        (url_path_join(prefix, "services/scheduler/"), Message("Class sessions").localized()),
        (url_path_join(prefix, "services/builder/"), Message("Images").localized()),
    ]
    items = "".join(
        f"<li class='nav-item'><a class='nav-link' href='{href}'>{escape(text)}</a></li>" for href, text in links
    )
    signed_in = (
        f"<span class='navbar-text me-2'>{escape(username)}</span>"
        f"<a class='btn btn-sm btn-outline-secondary' href='{url_path_join(hub, 'logout')}'>"
        f"{escape(Message('Sign out').localized())}</a>"
        if username
        else ""
    )
    return (
        f"<!DOCTYPE html><html lang='{current_language.get()}'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{escape(title)}</title>"
        f"<link rel='stylesheet' href='{url_path_join(hub, 'static/css/style.min.css')}'></head><body>"
        "<nav class='navbar navbar-expand-md border-bottom mb-3'><div class='container-fluid'>"
        f"<a class='navbar-brand' href='{url_path_join(hub, 'home')}'>MyDocker</a>"
        f"<ul class='navbar-nav me-auto flex-wrap'>{items}</ul>{signed_in}</div></nav>"
        f"<div class='container py-2'><h1 class='h3'>{escape(title)}</h1>{body}</div></body></html>"
    )
