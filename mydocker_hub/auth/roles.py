"""Who is a student, a teacher or an administrator: one function for every way of logging in.

LTI 1.3 platforms (Moodle) send role URIs; the federation (Renater through an OIDC bridge) sends
``eduPersonAffiliation`` values, possibly scoped (``faculty@example.fr``); administrators may also be
named in configuration or come from an identity-provider group. Roles are recomputed at every login.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

#: the hub group of teachers (admins are in it too): it sees environment files, class sessions and builds
TEACHER_GROUP = "teacher"

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


class Role(str, enum.Enum):
    STUDENT = "student"
    TEACHER = "teacher"
    ADMIN = "admin"


#: LTI role URIs (and the deprecated short names LTI 1.1 platforms still send) that make a teacher
LTI_TEACHER_ROLES = frozenset(
    {
        LIS + "membership#Instructor",
        LIS + "membership/Instructor#TeachingAssistant",
        LIS + "membership#ContentDeveloper",
        LIS + "membership#Manager",
        LIS + "institution/person#Faculty",
        LIS + "institution/person#Instructor",
        LIS + "institution/person#Staff",
        "Instructor",
        "TeachingAssistant",
        "ContentDeveloper",
    }
)
#: LTI role URIs of administrators of the platform or of the institution
LTI_ADMIN_ROLES = frozenset(
    {
        LIS + "system/person#Administrator",
        LIS + "system/person#SysAdmin",
        LIS + "institution/person#Administrator",
        LIS + "membership#Administrator",
        "Administrator",
    }
)
#: LTI membership roles that make someone a teacher *of the course* the launch comes from
LTI_COURSE_TEACHER_ROLES = frozenset(
    {
        LIS + "membership#Instructor",
        LIS + "membership/Instructor#TeachingAssistant",
        LIS + "membership#ContentDeveloper",
        LIS + "membership#Manager",
        LIS + "membership#Administrator",
        "Instructor",
        "TeachingAssistant",
        "ContentDeveloper",
    }
)
#: eduPersonAffiliation values that make a teacher (``student``, ``member``, ``affiliate``… stay students)
TEACHER_AFFILIATIONS = frozenset({"faculty", "staff", "employee", "teacher", "researcher"})


def _affiliation(value: str) -> str:
    """``faculty@example.fr`` (eduPersonScopedAffiliation) -> ``faculty``."""
    return value.split("@", 1)[0].strip().lower()


def map_role(
    *,
    username: str = "",
    lti_roles: Iterable[str] = (),
    affiliations: Iterable[str] = (),
    idp_groups: Iterable[str] = (),
    admin_users: Iterable[str] = (),
    admin_groups: Iterable[str] = (),
    teacher_affiliations: Iterable[str] = TEACHER_AFFILIATIONS,
    trust_lti_admin_roles: bool = True,
) -> Role:
    """The role of one login. Anything unknown or missing gives :attr:`Role.STUDENT`.

    ``lti_roles``: the ``https://purl.imsglobal.org/spec/lti/claim/roles`` claim of a launch.
    ``affiliations``: eduPersonAffiliation or eduPersonScopedAffiliation values of a federation login.
    ``idp_groups``: groups the identity provider says the person is in; any of ``admin_groups`` makes an admin.
    ``admin_users``: usernames that are always administrators.
    ``trust_lti_admin_roles``: whether a platform's (Moodle's) site administrators are hub administrators.
    """
    lti_roles = {str(role).strip() for role in lti_roles}
    if username and username in set(admin_users):
        return Role.ADMIN
    if set(admin_groups) & {str(group) for group in idp_groups}:
        return Role.ADMIN
    if trust_lti_admin_roles and lti_roles & LTI_ADMIN_ROLES:
        return Role.ADMIN
    if lti_roles & LTI_TEACHER_ROLES:
        return Role.TEACHER
    teacher_values = {value.lower() for value in teacher_affiliations}
    if {_affiliation(str(value)) for value in affiliations} & teacher_values:
        return Role.TEACHER
    return Role.STUDENT


def teaches_course(lti_roles: Iterable[str]) -> bool:
    """Whether a launch's roles make its user a teacher of the launch's course (context)."""
    return bool({str(role).strip() for role in lti_roles} & LTI_COURSE_TEACHER_ROLES)
