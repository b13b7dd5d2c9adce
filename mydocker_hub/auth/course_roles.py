"""LTI courses as JupyterHub groups, and the role that lets a course's teachers manage its servers.

A launch from course C of platform P puts the user in group ``course-P-C``. Its teachers also get the
role ``course-teacher-P-C``: through JupyterHub's RBAC they can list the course's users in the admin
panel and start or stop their servers (not open them). The role is granted or withdrawn at every
launch from that course, so a teacher who becomes a student there loses it.
"""

from __future__ import annotations

import hashlib
import re

from jupyterhub import orm, roles

COURSE_PREFIX = "course-"
_UNSAFE_IN_CONTEXT = re.compile(r"[^a-z0-9]")


def course_group_name(platform_name: str, context_id: str) -> str:
    """``course-<platform>-<context>``. The context part never holds a ``-`` (one that would, or any other
    odd character, is hashed), so two platforms' courses never share a group: platform ``moodle``'s
    course ``2-5`` is not platform ``moodle-2``'s course ``5``."""
    context = context_id.strip().lower()
    if not context or _UNSAFE_IN_CONTEXT.search(context) or len(context) > 40:
        context = hashlib.sha256(context_id.encode()).hexdigest()[:12]
    return f"{COURSE_PREFIX}{platform_name}-{context}"


def course_teacher_role(group: str) -> dict:
    """The JupyterHub role of the teachers of the course whose group is ``group``."""
    return {
        "name": f"{COURSE_PREFIX}teacher-{group.removeprefix(COURSE_PREFIX)}",
        "description": f"Teachers of {group}: see its members and start or stop their servers",
        "scopes": [
            "admin-ui",
            f"list:users!group={group}",
            f"read:users!group={group}",
            f"read:servers!group={group}",
            f"servers!group={group}",  # start and stop; not admin:servers, which reads and writes their state
            f"read:groups!group={group}",
        ],
    }


def sync_course_teacher_role(db, orm_user: orm.User, group: str, *, teaches: bool) -> None:
    """Grant (``teaches``) or withdraw the course-teacher role of ``group`` for ``orm_user``."""
    spec = course_teacher_role(group)
    role = orm.Role.find(db, spec["name"])
    if teaches:
        if role is None or sorted(role.scopes) != sorted(spec["scopes"]):
            # managed_by_auth: kept across hub restarts (JupyterHub deletes unmanaged roles missing from load_roles);
            # an existing role gets this version's scopes
            roles.create_role(db, {**spec, "managed_by_auth": True}, commit=False)
        if orm.Role.find(db, spec["name"]) not in orm_user.roles:
            roles.grant_role(db, orm_user, spec["name"], managed=True, commit=False)
    elif role is not None and role in orm_user.roles:
        roles.strip_role(db, orm_user, spec["name"], managed=True, commit=False)
    db.commit()
