"""HTTP side of the LTI 1.3 tool: login initiation, launch, new-window continuation, deep linking,
the tool's public keyset and the page telling Moodle admins what to paste.

Launches are cross-site by nature: their POSTs carry no ``_xsrf``; they are protected by the single-use
``state`` (bound to the browser by a cookie), the nonce and the platform's signature instead.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import re
import secrets
import time
from urllib.parse import urlencode, urlsplit

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from ltiauthenticator.utils import get_browser_protocol
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..cookies import enable_partitioned_cookies
from ..environments import get_catalog
from ..handlers.errors import PageError
from ..i18n import Message, current_language
from .deep_linking import content_item, response_jwt
from .launch import DEEP_LINKING, RESOURCE_LINK, LaunchRejected
from .registration import (
    RegistrationError,
    check_platform_configuration,
    platform_entry,
    registration_key,
    registration_key_valid,
    tool_client_metadata,
)
from .tool import Continuation, DeepLinkTicket

STATE_COOKIE = "mydocker-lti-state"
enable_partitioned_cookies()
SLUG = r"[a-z0-9][a-z0-9-]{0,29}"


def next_url_for(launch, hub_base: str) -> str:
    """Where a launch lands: the join link of its target, its ``environment`` custom parameter, or home."""
    path = urlsplit(launch.target_link_uri).path
    if re.fullmatch(re.escape(url_path_join(hub_base, "join")) + rf"/{SLUG}(/user-redirect/[^\\]*)?/?", path):
        return path
    slug = launch.custom.get("environment", "")
    if re.fullmatch(SLUG, slug):
        return url_path_join(hub_base, "join", slug)
    return url_path_join(hub_base, "home")


# the error codes of OpenID Connect's authentication response (and OAuth 2's): the only text of such an answer
# shown on a page, since anyone can post one to the launch URL
OIDC_ERROR_CODES = frozenset(
    {
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
    }
)


class _LtiHandler(BaseHandler):
    @property
    def authenticator_tool(self):
        tool = getattr(self.authenticator, "lti_tool", None)
        if tool is None or not tool.registry:
            raise web.HTTPError(404, "LTI is not enabled on this hub: no platform is registered.")
        return tool

    def set_default_headers(self):
        super().set_default_headers()
        tool = getattr(self.authenticator, "lti_tool", None)
        origins = " ".join(tool.registry.frame_origins) if tool else ""
        # LTI pages are shown inside the platform's iframe even when embedding of the hub is not enabled
        self.set_header("Content-Security-Policy", f"frame-ancestors 'self' {origins}".strip())

    def check_xsrf_cookie(self):
        """Cross-site POSTs from the platform: protected by state, nonce and signature instead."""

    def public_url(self, path: str) -> str:
        base = self.authenticator.lti_public_url.rstrip("/")
        if not base:
            base = f"{get_browser_protocol(self.request)}://{self.request.host}"
        return base + path

    def hub_path(self, *parts: str) -> str:
        return url_path_join(self.hub.base_url, *parts)


class LtiLoginInitHandler(_LtiHandler):
    """``/hub/lti13/login``: step 1, the platform asks the tool to start an OIDC login."""

    async def post(self):
        tool = self.authenticator_tool
        issuer = self.get_argument("iss", "")
        login_hint = self.get_argument("login_hint", "")
        if not issuer or not login_hint or not self.get_argument("target_link_uri", ""):
            raise web.HTTPError(400, "LTI login initiation without iss, login_hint or target_link_uri.")
        client_id = self.get_argument("client_id", "")
        platform = tool.registry.find(issuer, client_id or None)
        if platform is None:
            self.log.warning("LTI login initiation from unregistered issuer %r", issuer[:200])
            raise web.HTTPError(
                400, f"The platform {issuer[:200]!r} is not registered on this hub: an administrator must add it."
            )
        deployment_id = self.get_argument("lti_deployment_id", "")
        if deployment_id and deployment_id not in platform.deployment_ids:
            raise web.HTTPError(
                400,
                f"Deployment {deployment_id[:64]!r} of {platform.display_name} is not registered on this hub: "
                "an administrator must add it to the platform's deployment_ids.",
            )
        state, nonce = tool.begin_login(platform, platform.client_id)
        self.set_secure_cookie(
            STATE_COOKIE,
            state,
            expires_days=None,
            path=self.hub_path("lti13") + "/",
            httponly=True,
            secure=True,
            samesite="None",  # the launch comes back as a cross-site POST, possibly inside an iframe
            partitioned=True,  # kept inside Moodle's iframe even where third-party cookies are blocked
        )
        params = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": platform.client_id,
            "redirect_uri": self.public_url(self.hub_path("lti13", "launch")),
            "login_hint": login_hint,
            "state": state,
            "nonce": nonce,
        }
        message_hint = self.get_argument("lti_message_hint", None)
        if message_hint is not None:
            params["lti_message_hint"] = message_hint
        # a self-submitting form rather than a 302: the request log would show the nonce in a Location header
        fields = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
            for name, value in params.items()
        )
        self.finish(
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>LTI</title></head><body>"
            f'<form id="lti-auth" method="get" action="{html.escape(platform.auth_login_url)}">{fields}'
            '<noscript><button type="submit">Continue</button></noscript></form>'
            '<script>document.getElementById("lti-auth").submit()</script></body></html>'
        )

    get = post


class LtiLaunchHandler(_LtiHandler):
    """``/hub/lti13/launch``: step 3, the platform posts the signed id_token (resource link or deep linking)."""

    async def get(self):
        raise web.HTTPError(405, "LTI launches are POSTed by the platform; open the activity from Moodle.")

    async def post(self):
        tool = self.authenticator_tool
        id_token = self.get_body_argument("id_token", "")
        state = self.get_body_argument("state", "")
        error = self.get_body_argument("error", "")
        if error:
            # anyone can post here: the page names the standard error code only, the log keeps the details
            description = self.get_body_argument("error_description", "")[:300]
            self.log.warning("LTI launch: the platform answered %r: %r", error[:100], description)
            code = error if error in OIDC_ERROR_CODES else Message("an error")
            refused = Message(
                "The platform refused the login (%(code)s): open the activity again from Moodle.", code=code
            )
            raise PageError(400, refused)
        if not id_token or not state:
            raise PageError(400, Message("LTI launch without id_token or state: open the activity again from Moodle."))
        pending = tool.take_pending(state)
        if pending is None:
            raise PageError(
                400, Message("LTI launch refused (state): unknown, expired or already used. Open the activity again.")
            )
        cookie = self.get_secure_cookie(STATE_COOKIE, max_age_days=1)
        self.clear_cookie(STATE_COOKIE, path=self.hub_path("lti13") + "/")
        in_frame = self.request.headers.get("Sec-Fetch-Dest", "") == "iframe"
        bound = cookie is not None and cookie.decode() == state
        if cookie is not None and not bound:
            raise PageError(400, Message("LTI launch refused (state): it does not belong to this browser."))
        if not bound and not in_frame:
            raise PageError(
                400,
                Message(
                    "LTI launch refused (state): this browser did not keep the hub's cookie. Allow cookies for this "
                    "site, or open the activity again."
                ),
            )
        try:
            launch = await tool.validate(id_token, pending)
        except LaunchRejected as rejected:
            self.log.warning("%s", rejected)
            raise web.HTTPError(rejected.status, str(rejected)) from None
        auth_model = self.authenticator.lti_auth_model(launch, self)
        if launch.message_type == DEEP_LINKING:
            await self._deep_linking(tool, launch, auth_model)
            return
        if launch.message_type != RESOURCE_LINK:
            raise web.HTTPError(400, f"LTI message type {launch.message_type!r} is not supported.")
        next_url = next_url_for(launch, self.hub.base_url)
        if bound and not in_frame:
            user = await self.authenticator.login_lti_user(self, launch, auth_model)
            self.log.info("LTI launch: %s from %s -> %s", user.name, launch.platform.name, next_url)
            self.redirect(next_url)
            return
        # inside Moodle's iframe: continue in a new window, where cookies and storage work, unless embedding is
        # enabled for this platform and the browser lets the frame keep cookies and storage (checked in the page)
        embed_here = bound and launch.platform.allow_embedding
        if embed_here:
            user = await self.authenticator.login_lti_user(self, launch, auth_model)
            self.log.info("LTI launch in Moodle's frame: %s from %s -> %s", user.name, launch.platform.name, next_url)
        continuation = Continuation(launch, auth_model, next_url, opener_key=secrets.token_urlsafe(16))
        token = tool.continuations.put(continuation)
        html = await self.render_template(
            "lti_continue.html",
            continue_url=self.hub_path("lti13", "continue", token),
            opener_key=continuation.opener_key,
            embedded_url=next_url if embed_here else "",
            platform=launch.platform,
        )
        self.finish(html)

    async def _deep_linking(self, tool, launch, auth_model):
        if auth_model["mydocker_role"] == "student":
            raise PageError(403, Message("Only teachers can add environments to a course."))
        if not launch.deep_linking.get("deep_link_return_url"):
            raise web.HTTPError(400, "LTI deep linking request without deep_link_return_url.")
        ticket = tool.deep_link_tickets.put(
            DeepLinkTicket(
                launch=launch,
                username=auth_model["name"],
                groups=frozenset(auth_model.get("groups", [])),
                is_admin=bool(auth_model.get("admin")),
            )
        )
        self.redirect(self.hub_path("lti13", "deep-link", ticket), status=303)


class LtiContinueHandler(_LtiHandler):
    """``/hub/lti13/continue/<token>``: the "open in a new window" link of a launch made inside an iframe.

    The link signs in whoever opens it as the launch's user: the window the launch's frame opened proves it
    is that one (the frame gives it the launch's key through ``postMessage``) and goes on by itself; a
    window opened otherwise (a link from another person's launch, sent to someone) asks first, with a
    button (XSRF-checked), so that nobody is signed in as someone else without seeing it."""

    def check_xsrf_cookie(self):
        return BaseHandler.check_xsrf_cookie(self)  # this one's POST comes from the hub's own page

    def _entry(self, token: str, take: bool = False):
        """The launch behind the link (taken out when ``take``: single use)."""
        continuations = self.authenticator_tool.continuations
        entry = continuations.pop(token) if take else continuations.get(token)
        if entry is None:
            raise PageError(
                400, Message("This link has expired or was already used: open the activity again from Moodle.")
            )
        return entry

    def set_default_headers(self):
        super().set_default_headers()
        self.set_header("Content-Security-Policy", "frame-ancestors 'none'")  # opened in a window of its own

    async def get(self, token: str):
        continuation = self._entry(token)
        launch, auth_model = continuation.launch, continuation.auth_model
        signed_in = self.current_user
        if signed_in is not None and signed_in.name == auth_model["name"]:
            await self._continue(token)  # already them: nothing to switch
            return
        # the page asks the window that opened it (the launch's frame) for the launch's key and goes on by
        # itself with it; opened otherwise (a link someone sent), it asks the person
        html = await self.render_template(
            "lti_continue_confirm.html",
            signed_in=signed_in.name if signed_in is not None else "",
            launch_user=auth_model["name"],
            platform=launch.platform,
            xsrf=self.xsrf_token.decode("ascii"),
        )
        self.finish(html)

    async def post(self, token: str):
        # only this page posts here: no other site's form, even one that got hold of an XSRF token (a browser
        # withholds the _xsrf cookie from cross-site posts, and JupyterHub then derives the token from the
        # address and browser alone)
        site = self.request.headers.get("Sec-Fetch-Site")  # what the browser says of the page that posts
        if site is not None and site != "same-origin":
            raise PageError(403, Message("This form can only be sent from the hub's own page."))
        opener_key = self._entry(token).opener_key
        offered = self.get_body_argument("opener_key", "")
        if offered and not hmac.compare_digest(offered.encode(), opener_key.encode()):
            raise PageError(400, Message("This link belongs to another launch: open the activity again from Moodle."))
        await self._continue(token)  # the launch's own window, or the person's answer to the question

    async def _continue(self, token: str):
        continuation = self._entry(token, take=True)
        await self.authenticator.login_lti_user(self, continuation.launch, continuation.auth_model)
        self.redirect(continuation.next_url)


class LtiDeepLinkHandler(_LtiHandler):
    """``/hub/lti13/deep-link/<ticket>``: the teacher picks environments; Moodle gets a signed response."""

    def _ticket(self, ticket_id: str):
        ticket = self.authenticator_tool.deep_link_tickets.get(ticket_id)
        if ticket is None:
            raise PageError(400, Message('This selection has expired: choose "Select content" in Moodle again.'))
        return ticket

    async def _publishable(self, ticket):
        catalog = get_catalog(self.settings["mydocker_environments_dir"])
        await asyncio.to_thread(catalog.reload_if_changed)
        visible = catalog.visible_to(ticket.username, set(ticket.groups), ticket.is_admin)
        return [env for env in visible if env.status in ("ready", "test")]

    async def get(self, ticket_id: str):
        ticket = self._ticket(ticket_id)
        environments = await self._publishable(ticket)
        lang = current_language.get()
        html = await self.render_template(
            "lti_picker.html",
            environments=environments,
            titles={env.slug: env.localized_title(lang) for env in environments},
            multiple=bool(ticket.launch.deep_linking.get("accept_multiple", False)),
            course=ticket.launch.context_title,
            course_group=self.authenticator.course_group_of(ticket.launch),
            platform=ticket.launch.platform,
            action=self.hub_path("lti13", "deep-link", ticket_id),
        )
        self.finish(html)

    async def post(self, ticket_id: str):
        tool = self.authenticator_tool
        ticket = self._ticket(ticket_id)
        by_slug = {env.slug: env for env in await self._publishable(ticket)}
        chosen = [slug for slug in self.get_body_arguments("environment") if slug in by_slug]
        if not chosen:
            raise PageError(400, Message("Pick at least one environment you may publish."))
        if not ticket.launch.deep_linking.get("accept_multiple", False):
            chosen = chosen[:1]
        lang = current_language.get()
        items = [
            content_item(
                title=by_slug[slug].localized_title(lang),
                url=self.public_url(self.hub_path("join", slug)),
                slug=slug,
            )
            for slug in chosen
        ]
        launch = ticket.launch
        token = response_jwt(
            key=tool.tool_key,
            platform=launch.platform,
            deployment_id=launch.deployment_id,
            items=items,
            data=launch.deep_linking.get("data"),
        )
        tool.deep_link_tickets.pop(ticket_id)
        self.log.info("LTI deep linking: %s published %s to %s", ticket.username, chosen, launch.platform.name)
        html = await self.render_template(
            "lti_return.html", return_url=launch.deep_linking["deep_link_return_url"], jwt=token, items=items
        )
        self.finish(html)


class LtiKeysetHandler(_LtiHandler):
    """``/hub/lti13/jwks``: the tool's public keys (Moodle: "Public keyset URL")."""

    async def get(self):
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "public, max-age=300")
        self.finish(json.dumps(self.authenticator_tool.tool_key.jwks()))


class LtiSetupHandler(_LtiHandler):
    """``/hub/lti13/setup``: what a Moodle administrator pastes into "Manage tools" (admins only)."""

    @web.authenticated
    async def get(self):
        if not self.current_user.admin:
            raise PageError(403, Message("Only administrators can see the LTI registration values."))
        tool = getattr(self.authenticator, "lti_tool", None)
        urls = {
            "tool_url": self.public_url(self.hub_path("lti13", "launch")),
            "login_url": self.public_url(self.hub_path("lti13", "login")),
            "redirect_urls": [self.public_url(self.hub_path("lti13", "launch"))],
            "keyset_url": self.public_url(self.hub_path("lti13", "jwks")),
            "content_selection_url": self.public_url(self.hub_path("lti13", "launch")),
            "join_url_example": self.public_url(self.hub_path("join", "python")),
        }
        registration_url, registration_expires = "", 0
        if self.authenticator.lti_dynamic_registration:
            registration_expires = int(time.time()) + self.authenticator.lti_registration_link_ttl
            key = registration_key(self.settings["cookie_secret"], int(time.time() * 1000), registration_expires)
            registration_url = self.public_url(self.hub_path("lti13", "register")) + "?" + urlencode({"key": key})
        html = await self.render_template(
            "lti_setup.html",
            urls=urls,
            platforms=tool.registry.platforms if tool else [],
            username_source=self.authenticator.username_source,
            registration_url=registration_url,
            registration_expires=time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(registration_expires)),
        )
        self.finish(html)


class LtiRegisterHandler(_LtiHandler):
    """``/hub/lti13/register``: LTI Dynamic Registration, opened by the platform's administration page.

    No hub login here (the platform's page is another site: the admin's cookies are not sent); the link's
    key, signed with the hub's cookie secret and given on the admins-only setup page, stands for it.
    """

    def set_default_headers(self):
        super().set_default_headers()
        configuration_url = self.get_argument("openid_configuration", "")
        if self._key_valid() and urlsplit(configuration_url).scheme in ("http", "https"):
            # shown inside the platform's page, before the platform is registered
            self.set_header("Content-Security-Policy", f"frame-ancestors 'self' {_origin_of(configuration_url)}")

    def _key_valid(self) -> bool:
        return registration_key_valid(
            self.settings["cookie_secret"],
            self.get_argument("key", ""),
            last_registration_ms=self.authenticator.last_lti_registration_ms(),
        )

    async def get(self):
        if not getattr(self.authenticator, "lti_dynamic_registration", False):
            raise web.HTTPError(404, "Dynamic registration is turned off on this hub (lti_dynamic_registration).")
        if not self._key_valid():
            raise web.HTTPError(
                403,
                "This registration link is wrong, expired or already used (each link registers one platform): "
                "take a new one from the hub's page /hub/lti13/setup.",
            )
        configuration_url = self.get_argument("openid_configuration", "")
        if urlsplit(configuration_url).scheme not in ("http", "https"):
            raise web.HTTPError(
                400,
                "Open this link from the platform: in Moodle, Site administration › Plugins › External tool › "
                "Manage tools, paste it into Tool URL and press Add LTI Advantage.",
            )
        try:
            configuration = check_platform_configuration(await _fetch_json(configuration_url), configuration_url)
            metadata = tool_client_metadata(
                launch_url=self.public_url(self.hub_path("lti13", "launch")),
                login_url=self.public_url(self.hub_path("lti13", "login")),
                keyset_url=self.public_url(self.hub_path("lti13", "jwks")),
                client_name=self.authenticator.lti_client_name,
            )
            answer = await _post_json(
                configuration["registration_endpoint"], metadata, self.get_argument("registration_token", "")
            )
            if not self._key_valid():  # another page used this link while the platform answered
                raise RegistrationError(
                    "this registration link was used meanwhile: take a new one from /hub/lti13/setup"
                )
            taken = {platform.name for platform in self.authenticator.lti_tool.registry.platforms}
            entry = platform_entry(configuration, answer, taken, registered_at_ms=int(time.time() * 1000))
            platform = self.authenticator.register_platform(entry)
        except (RegistrationError, ValueError) as error:
            self.log.warning("LTI dynamic registration from %s failed: %s", configuration_url[:200], error)
            self.set_status(400)
            self.finish(await self.render_template("lti_registered.html", platform=None, error=str(error)))
            return
        self.finish(await self.render_template("lti_registered.html", platform=platform, error=""))


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def _fetch_json(url: str) -> dict:
    try:
        response = await AsyncHTTPClient().fetch(HTTPRequest(url, request_timeout=15, follow_redirects=False))
        return json.loads(response.body)
    except (HTTPClientError, OSError, ValueError) as error:
        raise RegistrationError(f"the platform's configuration at {url} could not be read: {error}") from None


async def _post_json(url: str, body: dict, bearer: str) -> dict:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    request = HTTPRequest(url, method="POST", body=json.dumps(body), headers=headers, request_timeout=15)
    try:
        response = await AsyncHTTPClient().fetch(request)
        return json.loads(response.body)
    except HTTPClientError as error:
        said = error.response.body.decode("utf-8", "replace")[:300] if error.response is not None else ""
        raise RegistrationError(f"the platform refused the registration ({error.code}): {said}") from None
    except (OSError, ValueError) as error:
        raise RegistrationError(f"the platform's registration endpoint {url} failed: {error}") from None


def lti_handlers() -> list[tuple]:
    return [
        (r"/lti13/login", LtiLoginInitHandler),
        (r"/lti13/launch", LtiLaunchHandler),
        (r"/lti13/continue/([A-Za-z0-9_-]{20,100})", LtiContinueHandler),
        (r"/lti13/deep-link/([A-Za-z0-9_-]{20,100})", LtiDeepLinkHandler),
        (r"/lti13/jwks", LtiKeysetHandler),
        (r"/lti13/setup", LtiSetupHandler),
        (r"/lti13/register", LtiRegisterHandler),
    ]
