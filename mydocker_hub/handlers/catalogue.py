"""The catalogue shown as the spawn page of the default server: the environments a user may start."""

from __future__ import annotations

import asyncio

from ..i18n import current_language, pick_language
from .views import card_view, format_bytes


async def render_catalogue(spawner) -> str:
    handler = getattr(spawner, "handler", None)
    if handler is not None:
        current_language.set(pick_language(handler.request.headers.get("Accept-Language")))
    lang = current_language.get()
    catalog = spawner.catalog
    await asyncio.to_thread(catalog.reload_if_changed)
    user = spawner.user
    groups = {group.name for group in user.groups}
    environments = catalog.visible_to(user.name, groups, bool(user.admin))
    cards = []
    for env in environments:
        available = spawner.availability(env)
        running = user.spawners.get(env.slug)
        if available.visible or (running is not None and running.active):
            cards.append(card_view(env, lang, running, available))
    jinja_env = handler.settings["jinja2_env"] if handler is not None else None
    if jinja_env is None:
        return ""
    template = jinja_env.get_template("catalogue.html")
    viewer = handler.current_user
    return await template.render_async(
        cards=cards,
        user=user,
        acting_for=user.name if viewer is not None and viewer.name != user.name else "",
        base_url=handler.hub.base_url,
        format_bytes=format_bytes,
    )
