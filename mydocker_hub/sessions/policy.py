"""What a session means for one user at one moment: pure functions, the clock is a parameter.

- An environment without sessions is always open (to whoever may start it).
- With sessions, students see it from ``early_access`` before a session's start until its end; outside
  them it is hidden. With ``block_before_start`` they see when it opens instead of a start button.
- Teachers (the ``teacher`` group), admins and the environment's owners, editors and viewers are not
  bound by sessions.
- A session's groups, when given, limit it to students of those groups.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from ..environments.model import Environment, Session
from ..i18n import Message

DEFAULT_EARLY_ACCESS = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Availability:
    visible: bool
    startable: bool
    session: Session | None = None  # the session in force or about to start
    opens_at: dt.datetime | None = None  # set when the user must wait (blocked, or hidden until then)

    @property
    def ends_at(self) -> dt.datetime | None:
        return self.session.end if self.session else None

    @property
    def stops_at_end(self) -> bool:
        return bool(self.session and self.session.stop_at_end)

    def warning_from(self) -> dt.datetime | None:
        """When students start being warned that the session's end stops their environment."""
        if not self.stops_at_end:
            return None
        return self.session.end - dt.timedelta(minutes=self.session.warn_before_end)


def is_privileged(env: Environment, username: str, groups: Iterable[str], is_admin: bool, teacher_group: str) -> bool:
    access = env.access
    return (
        is_admin
        or teacher_group in set(groups)
        or username in access.owners
        or username in access.editors
        or username in access.viewers
    )


def sessions_for(env: Environment, groups: Iterable[str]) -> list[Session]:
    """The sessions that concern a student of ``groups`` (a session without groups concerns everyone)."""
    groups = set(groups)
    return [s for s in env.sessions if not s.groups or set(s.groups) & groups]


def availability(
    env: Environment,
    now: dt.datetime,
    *,
    groups: Iterable[str] = (),
    privileged: bool = False,
    early_access: dt.timedelta = DEFAULT_EARLY_ACCESS,
) -> Availability:
    groups = list(groups)
    if not env.sessions:
        return Availability(visible=True, startable=True)
    mine = sorted(sessions_for(env, groups) if not privileged else env.sessions, key=lambda s: s.start)
    current = next((s for s in mine if s.start <= now < s.end), None)
    if current is not None:
        return Availability(visible=True, startable=True, session=current)
    upcoming = next((s for s in mine if s.start > now), None)
    if privileged:
        return Availability(visible=True, startable=True, session=upcoming)
    if upcoming is not None and upcoming.start - early_access <= now:
        if upcoming.block_before_start:
            return Availability(visible=True, startable=False, session=upcoming, opens_at=upcoming.start)
        return Availability(visible=True, startable=True, session=upcoming)
    return Availability(visible=False, startable=False, opens_at=upcoming.start if upcoming else None)


def format_moment(moment: dt.datetime) -> str:
    """A session time as its teacher wrote it (their time zone), e.g. ``2026-01-12 14:00 (UTC+01:00)``."""
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M} (UTC{offset[:3]}:{offset[3:]})" if offset else f"{moment:%Y-%m-%d %H:%M}"


def closed_message(env: Environment, available: Availability) -> Message:
    """Why ``env`` cannot be started now, and when it can (in the reader's language)."""
    title = env.localized_title
    if available.opens_at is not None and available.visible:
        return Message(
            "%(title)s opens at %(opens)s: come back then.", title=title, opens=format_moment(available.opens_at)
        )
    if available.opens_at is not None:
        opens = format_moment(available.opens_at)
        return Message(
            "%(title)s is only open during its class sessions; the next one starts at %(opens)s.",
            title=title,
            opens=opens,
        )
    return Message("%(title)s is only open during its class sessions, and none is planned.", title=title)
