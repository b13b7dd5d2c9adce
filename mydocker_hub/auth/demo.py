"""The demo login of the embedded default: three fixed accounts (student, teacher, admin).

It is only installed by ``mydocker_hub.config`` in demo mode; it refuses to start otherwise. Every
authenticator of ours also mounts the extra hub pages (join links, connection pages, environment status)
through ``get_handlers``, the non-deprecated way to add hub handlers.
"""

from __future__ import annotations

import hmac

from jupyterhub.auth import Authenticator
from traitlets import Bool, Dict, Unicode, default

from ..handlers.pages import TEACHER_GROUP, extra_handlers

#: demo account -> (is admin, groups)
DEMO_ACCOUNTS = {
    "student": (False, []),
    "teacher": (False, [TEACHER_GROUP]),
    "admin": (True, [TEACHER_GROUP]),
}


class PagesMixin:
    """Adds mydocker-hub's pages to the hub's handlers."""

    def get_handlers(self, app):
        return list(super().get_handlers(app)) + extra_handlers()


class DemoAuthenticator(PagesMixin, Authenticator):
    demo_mode = Bool(
        False,
        config=True,
        help="""Must be True for this authenticator to accept anyone: set only by the embedded demo
        (``mydocker-hub demo``), never in production. Default: False.""",
    )
    demo_password = Unicode(
        config=True,
        help="""Password of the demo accounts. Default: empty, which refuses every login.""",
    )
    demo_accounts = Dict(
        {name: {"admin": admin, "groups": groups} for name, (admin, groups) in DEMO_ACCOUNTS.items()},
        config=True,
        help="""Demo accounts: name -> {"admin": bool, "groups": [...]}. Default: student, teacher
        (group ``teacher``) and admin (administrator and teacher).""",
    )

    @default("manage_groups")
    def _default_manage_groups(self):
        return True

    @default("any_allow_config")
    def _default_any_allow_config(self):
        return True  # the demo accounts are the allow list

    def check_allowed(self, username, authentication=None):
        return username in self.demo_accounts

    async def authenticate(self, handler, data):
        if not self.demo_mode or not self.demo_password:
            return None
        username = (data.get("username") or "").strip().lower()
        password = data.get("password") or ""
        account = self.demo_accounts.get(username)
        if account is None or not hmac.compare_digest(password.encode(), self.demo_password.encode()):
            self.log.warning("Failed demo login for %r", username[:40])
            return None
        return {"name": username, "admin": bool(account.get("admin")), "groups": list(account.get("groups", []))}
