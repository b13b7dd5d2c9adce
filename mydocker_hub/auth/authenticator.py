"""One authenticator, several doors: the federation (any OIDC provider, e.g. Renater through SATOSA or
Keycloak), LTI 1.3 launches from registered platforms (Moodle), and the demo accounts of the embedded
default (only in demo mode).

The federation door is oauthenticator's GenericOAuthenticator; LTI 1.3 reuses ltiauthenticator's claim
checks and adds what it lacks (several platforms, cached keysets, deployment and replay checks, deep
linking, Moodle's iframe); see :mod:`mydocker_hub.lti`. Whatever the door, the username and the role are
computed by :mod:`.usernames` and :func:`.roles.map_role`, at every login.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from jupyterhub import orm
from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from traitlets import Bool, Dict, Float, Int, List, Set, Unicode, default, validate

from ..handlers.errors import PageError
from ..handlers.pages import extra_handlers
from ..i18n import Message
from ..lti.handlers import lti_handlers
from ..lti.platforms import Platform, parse_platforms
from ..lti.registration import RegisteredPlatformsFile
from ..lti.tool import LtiTool
from .course_roles import COURSE_PREFIX, course_group_name, sync_course_teacher_role
from .roles import TEACHER_AFFILIATIONS, TEACHER_GROUP, Role, map_role, teaches_course
from .usernames import USERNAME_SOURCES, email_is_verified, username_from_claims

STUDENT_GROUP = "student"
ROLE_GROUPS = {Role.STUDENT: [STUDENT_GROUP], Role.TEACHER: [TEACHER_GROUP], Role.ADMIN: [TEACHER_GROUP]}


class _PrepareredLogin:
    """Key of the data dict that carries a login prepared by our own handlers (never a form field)."""


LTI_LOGIN = _PrepareredLogin()


class MyDockerAuthenticator(GenericOAuthenticator):
    # -- which doors are open ------------------------------------------------------------------------
    federation_enabled = Bool(
        config=True,
        help="""Offer the federation login (OIDC). Default: True when client_id, authorize_url, token_url
        and userdata_url are all set (the usual ``GenericOAuthenticator`` settings).""",
    )

    @default("federation_enabled")
    def _default_federation_enabled(self):
        return bool(self.client_id and self.authorize_url and self.token_url and self.userdata_url)

    @default("login_service")
    def _default_login_service(self):
        return "Renater"

    demo_mode = Bool(
        False,
        config=True,
        help="""Accept the demo accounts' password form. Set only by the embedded demo (MYDOCKER_DEMO=1),
        never in production. Default: False.""",
    )
    demo_password = Unicode(
        config=True, help="""Password of the demo accounts. Default: empty, which refuses every demo login."""
    )
    demo_accounts = Dict(
        {"student": {"role": "student"}, "teacher": {"role": "teacher"}, "admin": {"role": "admin"}},
        config=True,
        help="""Demo accounts: name -> {"role": "student" | "teacher" | "admin"}. Default: one of each.""",
    )

    # -- usernames and roles -------------------------------------------------------------------------
    username_source = Unicode(
        "email",
        config=True,
        help="""Which identifier becomes the hub username: ``email``, ``eppn`` (eduPersonPrincipalName) or
        ``sub`` (scoped by issuer: ``<sub>@<issuer name>``). With ``email`` or ``eppn`` the same teacher
        arriving from Moodle and from the federation is one user; when the attribute is missing the
        issuer-scoped ``sub`` is used, so usernames never collide. Default: ``email``. Each LTI platform
        may override it with its own ``username_source``.""",
    )

    @validate("username_source")
    def _validate_username_source(self, proposal):
        if proposal.value not in USERNAME_SOURCES:
            raise ValueError(f"username_source must be one of {list(USERNAME_SOURCES)}, not {proposal.value!r}")
        return proposal.value

    eppn_claim = Unicode(
        "eduperson_principal_name",
        config=True,
        help="""OIDC claim holding eduPersonPrincipalName (SATOSA: ``eduperson_principal_name``).""",
    )
    affiliation_claims = List(
        Unicode(),
        ["eduperson_affiliation", "eduperson_scoped_affiliation", "eduPersonAffiliation", "affiliation"],
        config=True,
        help="""OIDC claims read for eduPersonAffiliation values (scoped values like ``faculty@x.fr`` work).""",
    )
    teacher_affiliations = Set(
        Unicode(),
        set(TEACHER_AFFILIATIONS),
        config=True,
        help="""Affiliations that make a teacher. Default: faculty, staff, employee, teacher, researcher.""",
    )
    idp_groups_claim = Unicode(
        "groups",
        config=True,
        help="""OIDC claim listing the person's groups at the identity provider; see ``admin_groups``.""",
    )
    federation_scope = Unicode(
        config=True,
        help="""Suffix of federation usernames made from ``sub`` (``<sub>@<scope>``). Default: the host
        of the authorization URL.""",
    )

    @default("federation_scope")
    def _default_federation_scope(self):
        return urlsplit(self.authorize_url or "").hostname or "federation"

    allowed_domains = Set(
        Unicode(),
        config=True,
        help="""Federation logins whose e-mail, eppn or scoped affiliation ends in one of these domains are
        allowed (e.g. ``{"centralesupelec.fr", "universite-paris-saclay.fr"}``), in addition to
        ``allow_all``, ``allowed_users`` and ``admin_users``. An e-mail marked ``email_verified: false``
        does not count. Default: empty.""",
    )

    # -- LTI 1.3 -------------------------------------------------------------------------------------
    lti_platforms = List(
        Dict(),
        config=True,
        help="""LTI 1.3 platforms (Moodle sites) allowed to launch the hub. Each entry: ``name`` (short,
        e.g. ``moodle``), ``issuer`` (Moodle's URL), ``client_id``, ``deployment_ids`` (list),
        ``auth_login_url`` (Moodle: ``<moodle>/mod/lti/auth.php``), ``jwks_url`` (Moodle:
        ``<moodle>/mod/lti/certs.php``), and optionally ``title``, ``username_source``,
        ``eppn_parameter`` (custom parameter carrying the eppn), ``allow_embedding`` (log in inside
        Moodle's iframe; needs HTTPS) and ``trust_admin_roles`` (Moodle site admins are hub admins,
        default true). Default: none.""",
    )

    @validate("lti_platforms")
    def _validate_lti_platforms(self, proposal):
        parse_platforms(proposal.value, default_username_source="sub")  # fail at start-up with the fix
        return proposal.value

    lti_clock_leeway = Float(
        60,
        config=True,
        help="""Seconds of clock difference tolerated between Moodle and the hub when checking a launch's
        ``iat``/``exp`` (Moodle's tokens live 60 s). Default: 60.""",
    )
    lti_keyset_ttl = Int(
        3600, config=True, help="""Seconds a platform's public keyset is cached (refreshed early on an unknown kid)."""
    )
    lti_keyset_min_refresh_interval = Float(
        10,
        config=True,
        help="""Least number of seconds between two fetches of a platform's keyset triggered by unknown key
        ids (a forged token cannot make the hub hammer Moodle; a real key rotation waits at most this).
        Default: 10.""",
    )
    lti_tool_key_file = Unicode(
        config=True,
        help="""PEM file of the tool's private RSA key (created on first start, mode 0600); its public half
        is served at /hub/lti13/jwks. Default: ``lti_tool_key.pem`` in the working directory.""",
    )

    @default("lti_tool_key_file")
    def _default_lti_tool_key_file(self):
        return "lti_tool_key.pem"

    lti_public_url = Unicode(
        "",
        config=True,
        help="""Public base URL of the hub (``https://hub.example.fr``) used in the URLs given to Moodle.
        Default: empty, guessed from each request (and X-Forwarded-Proto).""",
    )

    lti_dynamic_registration = Bool(
        True,
        config=True,
        help="""Let administrators register the hub in a platform in one step (LTI Dynamic Registration:
        Moodle 4.x's "Add LTI Advantage" with a tool URL): /hub/lti13/setup shows a registration link,
        valid for ``lti_registration_link_ttl`` seconds, and the platforms registered through it are kept
        in ``lti_registered_platforms_file`` beside those of ``lti_platforms``. Default: true.""",
    )
    lti_client_name = Unicode(
        "MyDocker",
        config=True,
        help="""The tool's name given to a platform at dynamic registration (Moodle's tool list shows it).""",
    )
    lti_registration_link_ttl = Int(
        3600,
        config=True,
        help="""Seconds a registration link shown on /hub/lti13/setup stays valid; it also stops working as soon
        as any platform registers after the link was issued (one link, one platform). Default: 3600 (an
        hour).""",
    )
    lti_registered_platforms_file = Unicode(
        config=True,
        help="""JSON file of the platforms registered through dynamic registration (mode 0600), read at
        start-up. Default: ``lti_platforms_registered.json`` in the working directory.""",
    )

    @default("lti_registered_platforms_file")
    def _default_lti_registered_platforms_file(self):
        return "lti_platforms_registered.json"

    @default("manage_groups")
    def _default_manage_groups(self):
        return True

    @default("any_allow_config")
    def _default_any_allow_config(self):
        return True  # LTI platforms and demo accounts are allow lists of their own

    # -- set-up --------------------------------------------------------------------------------------
    _lti_tool: LtiTool | None = None

    @property
    def lti_tool(self) -> LtiTool | None:
        if self._lti_tool is None and (self.lti_platforms or self.lti_dynamic_registration):
            self._lti_tool = LtiTool(
                parse_platforms(
                    list(self.lti_platforms) + self._registered_platform_entries(),
                    default_username_source=self.username_source,
                ),
                key_file=self.lti_tool_key_file,
                clock_leeway=self.lti_clock_leeway,
                keyset_ttl=self.lti_keyset_ttl,
                keyset_min_refresh_interval=self.lti_keyset_min_refresh_interval,
            )
        return self._lti_tool

    def _registered_platform_entries(self) -> list[dict]:
        """Platforms registered through dynamic registration; a broken file is reported, never fatal."""
        store = RegisteredPlatformsFile(self.lti_registered_platforms_file)
        try:
            # sub-scoped usernames unless an admin said otherwise: entries saved before registrations wrote
            # it, read with the hub's default (e-mail), let the platform's admins into any account by address
            entries = [{"username_source": "sub", **e} if isinstance(e, dict) else e for e in store.load()]
            parse_platforms(list(self.lti_platforms) + entries, default_username_source=self.username_source)
        except (OSError, ValueError) as error:
            self.log.error("LTI platforms registered through dynamic registration are ignored: %s", error)
            return []
        return entries

    _links_spent_before: int | None = None

    def last_lti_registration_ms(self) -> int:
        """When a platform last registered through a registration link (links issued before are spent)."""
        if self._links_spent_before is None:  # read once; register_platform keeps it up to date
            store = RegisteredPlatformsFile(self.lti_registered_platforms_file)
            self._links_spent_before = store.links_spent_before()
        return self._links_spent_before

    def register_platform(self, entry: dict) -> Platform:
        """Keep a platform registered through dynamic registration: checked, saved, usable at once."""
        tool = self.lti_tool
        store = RegisteredPlatformsFile(self.lti_registered_platforms_file)
        entries = list(self.lti_platforms) + self._registered_platform_entries() + [entry]
        platform = parse_platforms(entries, default_username_source=self.username_source)[-1]
        store.add(entry)
        self._links_spent_before = max(self.last_lti_registration_ms(), int(entry.get("registered_at_ms") or 0))
        tool.registry.add(platform)
        self.log.info(
            "LTI platform %s (%s) registered, client ID %s", platform.name, platform.issuer, platform.client_id
        )
        return platform

    def login_url(self, base_url):
        if self.federation_enabled:
            return super().login_url(base_url)
        return base_url.rstrip("/") + "/login"

    def get_handlers(self, app):
        handlers = list(super().get_handlers(app)) if self.federation_enabled else []
        if self.lti_tool is not None:
            self.lti_tool.tool_key  # noqa: B018  (read or create the key now, not in a request)
            self.lti_tool.start_background_prefetch()
            handlers += lti_handlers()
        return handlers + extra_handlers()

    # -- dispatch ------------------------------------------------------------------------------------
    async def authenticate(self, handler, data=None, **kwargs):
        if data and LTI_LOGIN in data:
            return data[LTI_LOGIN]
        if data and "username" in data:
            return self._demo_login(data)
        if not self.federation_enabled:
            return None
        return await super().authenticate(handler, data, **kwargs)

    async def get_authenticated_user(self, handler, data):
        model = await super().get_authenticated_user(handler, data)
        if model and self.manage_groups and handler is not None:
            # course groups come from LTI launches: a login through another door must not drop them
            existing = handler.find_user(model["name"])
            kept = {g.name for g in existing.groups if g.name.startswith(COURSE_PREFIX)} if existing else set()
            model["groups"] = sorted(set(model.get("groups") or []) | kept)
        return model

    async def check_allowed(self, username, auth_model):
        door = (auth_model or {}).get("mydocker_door")
        if door in ("lti", "demo"):
            return True  # a registered platform's signed launch, or a demo account checked by password
        if await super().check_allowed(username, auth_model):
            return True
        state = (auth_model or {}).get("auth_state") or {}
        return any(self._domain_allowed(value) for value in state.get("mydocker_domains_checked", []))

    def _domain_allowed(self, value: str) -> bool:
        domain = value.rsplit("@", 1)[-1].lower() if "@" in value else ""
        return any(domain == d or domain.endswith("." + d) for d in self.allowed_domains)

    # -- demo door -----------------------------------------------------------------------------------
    def _demo_login(self, data):
        if not self.demo_mode or not self.demo_password:
            return None
        username = str(data.get("username") or "").strip().lower()
        password = str(data.get("password") or "")
        account = self.demo_accounts.get(username)
        if account is None or not hmac.compare_digest(password.encode(), self.demo_password.encode()):
            self.log.warning("Failed demo login for %r", username[:40])
            return None
        role = Role(account.get("role", "student"))
        return {
            "name": username,
            "admin": role is Role.ADMIN,
            "groups": ROLE_GROUPS[role] + list(account.get("groups", [])),
            "mydocker_door": "demo",
            "mydocker_role": role.value,
        }

    # -- federation door -----------------------------------------------------------------------------
    def user_info_to_username(self, user_info):
        username, used = username_from_claims(
            user_info, source=self.username_source, scope=self.federation_scope, eppn_claim=self.eppn_claim
        )
        if used != self.username_source:
            self.log.info("Federation login without %s: using the issuer-scoped sub", self.username_source)
        return username

    async def update_auth_model(self, auth_model):
        user_info = (auth_model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        affiliations: list[str] = []
        for claim in self.affiliation_claims:
            value = user_info.get(claim)
            affiliations += [value] if isinstance(value, str) else list(value or [])
        idp_groups = user_info.get(self.idp_groups_claim) or []
        role = map_role(
            username=auth_model["name"],
            affiliations=affiliations,
            idp_groups=[idp_groups] if isinstance(idp_groups, str) else idp_groups,
            admin_users=self.admin_users,
            admin_groups=self.admin_groups,
            teacher_affiliations=self.teacher_affiliations,
        )
        auth_model["admin"] = role is Role.ADMIN
        auth_model["mydocker_door"] = "federation"
        auth_model["mydocker_role"] = role.value
        auth_model["auth_state"]["mydocker_domains_checked"] = self._institutional_addresses(user_info, affiliations)
        auth_model["auth_state"]["mydocker_groups"] = ROLE_GROUPS[role]
        return auth_model

    def _institutional_addresses(self, user_info: dict, affiliations: list) -> list[str]:
        """What ``allowed_domains`` is checked against: the addresses the identity provider vouches for.

        Not the username: when the claims lack a usable e-mail/eppn it is ``sub@<federation_scope>``,
        whose domain is the provider's, not the person's institution. Not an e-mail marked unverified.
        """
        addresses = []
        email = user_info.get("email")
        if isinstance(email, str) and email_is_verified(user_info):
            addresses.append(email)
        eppn = user_info.get(self.eppn_claim)
        addresses += [eppn] if isinstance(eppn, str) else [e for e in eppn or [] if isinstance(e, str)]
        addresses += [a for a in affiliations if isinstance(a, str) and "@" in a]
        return [a for a in addresses if "@" in a]

    async def get_user_groups(self, auth_state):
        return set(auth_state.get("mydocker_groups") or [])

    # -- LTI door (called by mydocker_hub.lti.handlers) ----------------------------------------------
    def course_group_of(self, launch) -> str | None:
        return course_group_name(launch.platform.name, launch.context_id) if launch.context_id else None

    def lti_auth_model(self, launch, handler) -> dict:
        platform = launch.platform
        claims = dict(launch.claims)
        if platform.eppn_parameter in launch.custom:
            claims["eppn"] = launch.custom[platform.eppn_parameter]
        username, used = username_from_claims(claims, source=platform.username_source, scope=platform.name)
        if used != platform.username_source:
            self.log.info(
                "LTI launch from %s without %s: using the issuer-scoped sub", platform.name, platform.username_source
            )
        username = self.normalize_username(username)
        if not platform.trust_admin_roles and self._is_admin_account(handler.db, username):
            # a platform's administrators can set any of its users' e-mail: one not trusted with admin rights
            # must not reach an administrator's account through it either
            self.log.warning(
                "LTI launch from %s refused: %s is a hub administrator's account (the platform's entry does not "
                'say "trust_admin_roles": true)',
                platform.name,
                username,
            )
            refused = Message(
                "This launch leads to a hub administrator's account, and %(platform)s is not trusted with "
                "administrators' accounts: sign in on the hub's login page instead.",
                platform=platform.display_name,
            )
            raise PageError(403, refused)
        role = map_role(
            username=username,
            lti_roles=launch.roles,
            admin_users=self.admin_users,
            trust_lti_admin_roles=platform.trust_admin_roles,
        )
        groups = list(ROLE_GROUPS[role])
        course_group = self.course_group_of(launch)
        if course_group:
            groups.append(course_group)
        return {
            "name": username,
            "admin": role is Role.ADMIN,
            "groups": groups,
            "mydocker_door": "lti",
            "mydocker_role": role.value,
            "auth_state": {"lti_platform": platform.name, "lti_context": launch.context_id},
        }

    def _is_admin_account(self, db, username: str) -> bool:
        """Whether ``username`` is a hub administrator: in ``admin_users``, made one in the admin panel, or
        given JupyterHub's ``admin`` role (itself or through a group)."""
        if username in self.admin_users:
            return True
        existing = orm.User.find(db, username)
        if existing is None:
            return False
        roles = {role.name for role in existing.roles}
        roles |= {role.name for group in existing.groups for role in group.roles}
        return bool(existing.admin) or "admin" in roles

    async def login_lti_user(self, handler, launch, auth_model):
        """Log the launch's user in (sets the hub cookie) and sync their course-teacher role."""
        user = await handler.login_user({LTI_LOGIN: auth_model})
        if user is None:
            raise web.HTTPError(403, "This account may not use the hub.")
        group = self.course_group_of(launch)
        if group:
            sync_course_teacher_role(handler.db, user.orm_user, group, teaches=teaches_course(launch.roles))
        return user
