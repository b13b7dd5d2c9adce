"""A Moodle-like LTI 1.3 platform for the tests: a real HTTP server on loopback that signs launches the
way Moodle 4.x does.

- login initiation is a form POST (iss, target_link_uri, login_hint, lti_message_hint, client_id,
  lti_deployment_id) from a "course page";
- its authorization endpoint (``/mod/lti/auth.php``) checks the tool's request and answers with a
  self-submitting form (``form_post``) carrying ``id_token`` and ``state``;
- id_tokens live 60 s (``exp = iat + 60``), ``aud`` is a plain string, there is no ``azp``, no name nor
  e-mail unless asked, custom parameters are lower-cased;
- its keyset is at ``/mod/lti/certs.php``; deep-linking responses are posted back to
  ``/mod/lti/contentitem_return.php`` and verified against the tool's JWKS;
- LTI Dynamic Registration as Moodle's "Add LTI Advantage": its administration page frames the tool's
  registration URL with ``openid_configuration`` (``/mod/lti/openid-configuration.php``) and a single-use
  ``registration_token``; its registration endpoint (``/mod/lti/openid-registration.php``) checks the
  tool's metadata the way Moodle's ``registration_helper`` does, then answers with a new client ID and
  deployment ID, which its launches use from then on.

A launch is described by a :class:`LaunchSpec`; ``tamper`` breaks it on purpose for negative tests.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from .hubprocess import LoopbackSession

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
INSTRUCTOR = LIS + "membership#Instructor"
LEARNER = LIS + "membership#Learner"
SITE_ADMIN = LIS + "system/person#Administrator"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"


@dataclass
class LaunchSpec:
    user_id: str = "42"
    roles: list[str] = field(default_factory=lambda: [LEARNER])
    target: str = ""  # target_link_uri (default: the tool's launch URL)
    custom: dict[str, str] = field(default_factory=dict)
    course_id: str = "7"
    course_title: str = "Cryptographie"
    email: str | None = None
    deep_linking: bool = False
    tamper: str = ""  # expired, future, past, wrong_aud, wrong_iss, bad_signature, unknown_kid, alg_none,
    #                   no_deployment, wrong_deployment


class LtiTestPlatform:
    def __init__(self, tool_base: str, client_id: str = "mydocker-tool", deployment_id: str = "1"):
        self.tool_base = tool_base.rstrip("/")  # http://127.0.0.1:PORT (the hub)
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "moodle-key-1"
        self.specs: dict[str, LaunchSpec] = {}
        self.deep_link_results: list[dict] = []
        self.issued_tokens: list[tuple[str, str]] = []  # (id_token, state) as posted to the tool
        self.nonces: list[str] = []  # the tool's nonces, as received in authentication requests
        self.registration_token = secrets.token_urlsafe(24)  # single use, as Moodle's
        self.registered_tools: list[dict] = []  # the tool metadata received by dynamic registration
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        # "localhost", not 127.0.0.1: another site than the hub, as Moodle is
        self.url = f"http://localhost:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- registration values (what the hub's lti_platforms entry holds) ------------------------------
    @property
    def registration(self) -> dict:
        return {
            "name": "moodle",
            "title": "Moodle de test",
            "issuer": self.url,
            "client_id": self.client_id,
            "deployment_ids": [self.deployment_id],
            "auth_login_url": self.url + "/mod/lti/auth.php",
            "jwks_url": self.url + "/mod/lti/certs.php",
        }

    def start(self) -> LtiTestPlatform:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()

    # -- launches -------------------------------------------------------------------------------------
    def register(self, spec: LaunchSpec) -> str:
        hint = uuid.uuid4().hex
        self.specs[hint] = spec
        return hint

    def course_page_url(self, spec: LaunchSpec, embed: bool = False) -> str:
        return f"{self.url}/course?{urlencode({'hint': self.register(spec), 'embed': int(embed)})}"

    def login_initiation_form(self, hint: str) -> dict:
        spec = self.specs[hint]
        return {
            "iss": self.url,
            "target_link_uri": spec.target or self.tool_base + "/hub/lti13/launch",
            "login_hint": spec.user_id,
            "lti_message_hint": hint,
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
        }

    def id_token(self, spec: LaunchSpec, nonce: str, now: float | None = None) -> str:
        now = int(time.time() if now is None else now)
        if spec.tamper == "future":
            now += 600
        elif spec.tamper in ("past", "expired"):
            now -= 600 if spec.tamper == "past" else 150
        claims = {
            "iss": self.url if spec.tamper != "wrong_iss" else "https://evil.example.org",
            "aud": self.client_id if spec.tamper != "wrong_aud" else "someone-else",
            "sub": spec.user_id,
            "iat": now,
            "exp": now + 60,
            "nonce": nonce,
            CLAIM + "deployment_id": self.deployment_id if spec.tamper != "wrong_deployment" else "999",
            CLAIM + "version": "1.3.0",
            CLAIM + "roles": spec.roles,
            CLAIM + "context": {"id": spec.course_id, "label": "CRYPTO", "title": spec.course_title},
            CLAIM + "custom": {key.lower(): value for key, value in spec.custom.items()},
            CLAIM + "tool_platform": {"guid": "localhost", "product_family_code": "moodle", "version": "2024100700"},
        }
        if spec.tamper == "no_deployment":
            del claims[CLAIM + "deployment_id"]
        if spec.email:
            claims["email"] = spec.email
        if spec.deep_linking:
            claims[CLAIM + "message_type"] = "LtiDeepLinkingRequest"
            claims[CLAIM + "target_link_uri"] = spec.target or self.tool_base + "/hub/lti13/launch"
            claims[DL + "deep_linking_settings"] = {
                "deep_link_return_url": self.url + "/mod/lti/contentitem_return.php",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["frame", "iframe", "window"],
                "accept_multiple": True,
                "auto_create": False,
                "data": "moodle-opaque-data",
            }
        else:
            claims[CLAIM + "message_type"] = "LtiResourceLinkRequest"
            claims[CLAIM + "target_link_uri"] = spec.target or self.tool_base + "/hub/lti13/launch"
            claims[CLAIM + "resource_link"] = {"id": "12", "title": "TP"}
        if spec.tamper == "alg_none":
            return jwt.encode(claims, None, algorithm="none", headers={"kid": self.kid})
        key = self.other_key if spec.tamper == "bad_signature" else self.key
        kid = "rotated-away" if spec.tamper == "unknown_kid" else self.kid
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    def rotate_key(self) -> None:
        """Moodle regenerating its key: a new key and kid, the old one no longer published."""
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = f"moodle-key-{uuid.uuid4().hex[:8]}"

    def jwks(self) -> dict:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    # -- the non-browser flow, for negative cases -------------------------------------------------------
    def launch_with_requests(self, spec: LaunchSpec, session: requests.Session | None = None):
        """Login initiation -> auth redirect -> form_post, like a browser without JavaScript.

        Returns ``(response of the tool to the form_post, form fields posted)``.
        """
        session = session or LoopbackSession()
        hint = self.register(spec)
        init = session.post(
            self.tool_base + "/hub/lti13/login", data=self.login_initiation_form(hint), allow_redirects=False
        )
        assert init.status_code == 200, init.text[:500]
        auth = session.get(_form_action(init.text), params=_form_fields(init.text), allow_redirects=False)
        assert auth.status_code == 200, auth.text[:500]
        fields = _form_fields(auth.text)
        action = _form_action(auth.text)
        response = session.post(action, data=fields, allow_redirects=False)
        return response, fields

    # -- HTTP -------------------------------------------------------------------------------------------
    def _handler_class(self):
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: str, content_type: str = "text/html; charset=utf-8"):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/mod/lti/certs.php":
                    self._send(200, json.dumps(platform.jwks()), "application/json")
                elif parts.path == "/course":
                    self._send(200, platform._course_page(query["hint"], query.get("embed") == "1"))
                elif parts.path == "/launch-frame":
                    self._send(200, platform._login_form_page(query["hint"]))
                elif parts.path == "/mod/lti/openid-configuration.php":
                    self._send(200, json.dumps(platform.openid_configuration()), "application/json")
                elif parts.path == "/admin/tool-registration":
                    self._send(200, platform._registration_page(query["url"]))
                elif parts.path == "/mod/lti/auth.php":
                    status, body = platform._authorize(query)
                    self._send(status, body)
                else:
                    self._send(404, "not found")

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                if urlsplit(self.path).path == "/mod/lti/openid-registration.php":
                    status, answer = platform._register_tool(self.headers.get("Authorization", ""), body)
                    self._send(status, json.dumps(answer), "application/json")
                    return
                form = {k: v[0] for k, v in parse_qs(body).items()}
                if urlsplit(self.path).path == "/mod/lti/contentitem_return.php":
                    self._send(*platform._deep_link_return(form))
                else:
                    self._send(404, "not found")

        return Handler

    def _login_form_page(self, hint: str) -> str:
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in self.login_initiation_form(hint).items()
        )
        return (
            f'<html><body><form id="init" method="post" action="{self.tool_base}/hub/lti13/login">{fields}'
            '<button type="submit">Launch</button></form>'
            '<script>document.getElementById("init").submit()</script></body></html>'
        )

    def _course_page(self, hint: str, embed: bool) -> str:
        if embed:  # Moodle's default launch container: an iframe in the course page
            return (
                "<html><body><h1>Course: Cryptographie</h1>"
                f'<iframe id="lti-frame" src="/launch-frame?hint={hint}" width="1000" height="700"></iframe>'
                "</body></html>"
            )
        return (
            "<html><body><h1>Course: Cryptographie</h1>"
            f'<a id="activity" href="/launch-frame?hint={hint}" target="_blank">TP (new window)</a>'
            "</body></html>"
        )

    def _authorize(self, query: dict) -> tuple[int, str]:
        required = ("scope", "response_type", "client_id", "redirect_uri", "login_hint", "state", "nonce")
        missing = [name for name in required if not query.get(name)]
        if missing or query.get("response_type") != "id_token" or query.get("response_mode") != "form_post":
            return 400, f"bad authentication request: missing {missing}"
        if query["client_id"] != self.client_id:
            return 400, "unknown client_id"
        if query["redirect_uri"] != self.tool_base + "/hub/lti13/launch":
            return 400, f"redirect_uri {query['redirect_uri']} is not registered"
        spec = self.specs.get(query.get("lti_message_hint", ""))
        if spec is None or spec.user_id != query["login_hint"]:
            return 400, "unknown lti_message_hint/login_hint"
        self.nonces.append(query["nonce"])
        token = self.id_token(spec, query["nonce"])
        self.issued_tokens.append((token, query["state"]))
        return 200, (
            f'<html><body><form id="post" method="post" action="{html.escape(query["redirect_uri"])}">'
            f'<input type="hidden" name="id_token" value="{token}">'
            f'<input type="hidden" name="state" value="{html.escape(query["state"])}">'
            '</form><script>document.getElementById("post").submit()</script></body></html>'
        )

    # -- dynamic registration -------------------------------------------------------------------------
    def openid_configuration(self) -> dict:
        return {
            "issuer": self.url,
            "authorization_endpoint": self.url + "/mod/lti/auth.php",
            "jwks_uri": self.url + "/mod/lti/certs.php",
            "token_endpoint": self.url + "/mod/lti/token.php",
            "registration_endpoint": self.url + "/mod/lti/openid-registration.php",
            "response_types_supported": ["id_token"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle",
                "version": "4.4",
            },
        }

    def registration_page_url(self, tool_registration_url: str) -> str:
        return f"{self.url}/admin/tool-registration?{urlencode({'url': tool_registration_url})}"

    def _registration_page(self, tool_registration_url: str) -> str:
        """Moodle's "Add LTI Advantage": the tool's page in a frame, closed by its ``lti.close`` message."""
        separator = "&" if "?" in tool_registration_url else "?"
        source = (
            tool_registration_url
            + separator
            + urlencode(
                {
                    "openid_configuration": self.url + "/mod/lti/openid-configuration.php",
                    "registration_token": self.registration_token,
                }
            )
        )
        return (
            "<html><body><h1>Manage tools</h1><p id='status'>Registering…</p>"
            f'<iframe id="registration" src="{html.escape(source)}" width="900" height="500"></iframe>'
            "<script>window.addEventListener('message', function (event) {"
            " if (event.data && event.data.subject === 'org.imsglobal.lti.close') {"
            "  document.getElementById('registration').remove();"
            "  document.getElementById('status').textContent = 'Tool registration closed'; } });</script>"
            "</body></html>"
        )

    def _register_tool(self, authorization: str, body: str) -> tuple[int, dict]:
        """Moodle's registration endpoint: a single-use token, the same checks, a new client and deployment."""
        if not self.registration_token or authorization != f"Bearer {self.registration_token}":
            return 401, {"error": "invalid or already used registration token"}
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, {"error": "not JSON"}
        tool = payload.get("https://purl.imsglobal.org/spec/lti-tool-configuration") or {}
        required = ("response_types", "initiate_login_uri", "redirect_uris", "client_name", "jwks_uri")
        missing = [key for key in required if not payload.get(key)] + [
            key for key in ("domain", "target_link_uri") if not tool.get(key)
        ]
        if missing:
            return 400, {"error": f"missing required attribute {missing[0]}"}
        if "id_token" not in payload["response_types"]:
            return 400, {"error": "invalid_response_types"}
        if not isinstance(payload["redirect_uris"], list):
            return 400, {"error": "invalid_redirect_uris"}
        if payload.get("token_endpoint_auth_method") != "private_key_jwt":
            return 400, {"error": "invalid_token_endpoint_auth_method"}
        if payload.get("application_type", "web") != "web":
            return 400, {"error": "invalid_application_type"}
        self.registration_token = ""  # used
        self.registered_tools.append(payload)
        self.client_id = f"dyn-{secrets.token_hex(6)}"
        self.deployment_id = str(secrets.randbelow(900) + 100)
        deep_linking = [m for m in tool.get("messages", []) if m.get("type") == "LtiDeepLinkingRequest"]
        return 200, {
            "client_id": self.client_id,
            "response_types": ["id_token"],
            "jwks_uri": payload["jwks_uri"],
            "initiate_login_uri": payload["initiate_login_uri"],
            "grant_types": ["client_credentials", "implicit"],
            "redirect_uris": payload["redirect_uris"],
            "application_type": ["web"],
            "token_endpoint_auth_method": "private_key_jwt",
            "client_name": payload["client_name"],
            "scope": "",
            "https://purl.imsglobal.org/spec/lti-tool-configuration": {
                "deployment_id": self.deployment_id,
                "target_link_uri": tool["target_link_uri"],
                "domain": tool["domain"],
                "messages": deep_linking,
                "claims": ["sub", "iss", "name", "family_name", "middle_name", "email"],
            },
        }

    def _deep_link_return(self, form: dict) -> tuple[int, str]:
        token = form.get("JWT", "")
        try:
            header = jwt.get_unverified_header(token)
            keyset = requests.get(self.tool_base + "/hub/lti13/jwks", timeout=10).json()
            keys = {k["kid"]: k for k in keyset["keys"]}
            key = jwt.PyJWK(keys[header["kid"]]).key
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=self.url, issuer=self.client_id)
        except Exception as error:  # what Moodle would say: the activity is not created
            self.deep_link_results.append({"error": repr(error)})
            return 400, f"invalid deep linking response: {html.escape(repr(error))}"
        self.deep_link_results.append(claims)
        titles = ", ".join(item["title"] for item in claims.get(DL + "content_items", []))
        return 200, f'<html><body><p id="created">Activity created: {html.escape(titles)}</p></body></html>'


def _form_fields(page: str) -> dict:
    import re

    return {m.group(1): html.unescape(m.group(2)) for m in re.finditer(r'name="([^"]+)" value="([^"]*)"', page)}


def _form_action(page: str) -> str:
    import re

    return html.unescape(re.search(r'action="([^"]+)"', page).group(1))


def random_user_id() -> str:
    return str(secrets.randbelow(10**6) + 1000)
