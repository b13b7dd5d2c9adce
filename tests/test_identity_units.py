"""Identity building blocks without a hub: role mapping, usernames, platform registrations, time checks."""

from __future__ import annotations

import json
import re

import pytest
from traitlets.config import Config

from mydocker_hub import config as mydocker_config
from mydocker_hub.auth.course_roles import course_group_name, course_teacher_role
from mydocker_hub.auth.roles import LIS, Role, map_role, teaches_course
from mydocker_hub.auth.usernames import scoped_sub, username_from_claims
from mydocker_hub.lti.keyset import KeysetCache, KeysetError
from mydocker_hub.lti.launch import LaunchRejected, check_times
from mydocker_hub.lti.platforms import parse_platforms
from mydocker_hub.lti.registration import (
    RegisteredPlatformsFile,
    RegistrationError,
    check_platform_configuration,
    platform_entry,
    platform_name,
    registration_key,
    registration_key_valid,
)
from mydocker_hub.lti.store import ExpiringStore

ROLE_CASES = {
    "moodle learner": (dict(lti_roles=[LIS + "membership#Learner"]), Role.STUDENT),
    "moodle teacher": (dict(lti_roles=[LIS + "membership#Instructor"]), Role.TEACHER),
    "moodle non-editing teacher": (dict(lti_roles=[LIS + "membership/Instructor#TeachingAssistant"]), Role.TEACHER),
    "moodle site admin": (
        dict(lti_roles=[LIS + "system/person#Administrator", LIS + "institution/person#Administrator"]),
        Role.ADMIN,
    ),
    "moodle site admin, not trusted": (
        dict(lti_roles=[LIS + "system/person#Administrator"], trust_lti_admin_roles=False),
        Role.STUDENT,
    ),
    "lti 1.1 short name": (dict(lti_roles=["Instructor"]), Role.TEACHER),
    "institution faculty": (dict(lti_roles=[LIS + "institution/person#Faculty"]), Role.TEACHER),
    "unknown lti role": (dict(lti_roles=["http://example.org/role#Wizard"]), Role.STUDENT),
    "no role at all": (dict(), Role.STUDENT),
    "affiliation faculty": (dict(affiliations=["faculty", "member"]), Role.TEACHER),
    "affiliation staff": (dict(affiliations=["staff"]), Role.TEACHER),
    "affiliation employee": (dict(affiliations=["employee"]), Role.TEACHER),
    "scoped affiliation": (dict(affiliations=["faculty@universite.example"]), Role.TEACHER),
    "affiliation student": (dict(affiliations=["student", "member"]), Role.STUDENT),
    "affiliation affiliate": (dict(affiliations=["affiliate"]), Role.STUDENT),
    "admin by list": (dict(username="boss@x.fr", admin_users={"boss@x.fr"}), Role.ADMIN),
    "admin by idp group": (dict(idp_groups=["hub-admins"], admin_groups={"hub-admins"}), Role.ADMIN),
    "group without admin config": (dict(idp_groups=["hub-admins"]), Role.STUDENT),
}


@pytest.mark.parametrize("arguments, expected", ROLE_CASES.values(), ids=ROLE_CASES.keys())
def test_role_mapping(arguments, expected):
    assert map_role(**arguments) is expected


def test_course_teacher_roles_are_membership_roles_only():
    assert teaches_course([LIS + "membership#Instructor"])
    assert not teaches_course([LIS + "membership#Learner", LIS + "institution/person#Faculty"])


@pytest.mark.parametrize(
    "claims, source, expected",
    [
        ({"sub": "42", "email": "Prof@Universite.example"}, "email", ("prof@universite.example", "email")),
        ({"sub": "42"}, "email", ("42@moodle", "sub")),  # Moodle's default: no e-mail shared
        # an address the provider did not verify is nobody's identity: not the account of its owner
        ({"sub": "42", "email": "prof@universite.example", "email_verified": False}, "email", ("42@moodle", "sub")),
        (
            {"sub": "42", "email": "prof@universite.example", "email_verified": True},
            "email",
            ("prof@universite.example", "email"),
        ),
        ({"sub": "42", "eppn": "jdupont@universite.example"}, "eppn", ("jdupont@universite.example", "eppn")),
        ({"sub": "42", "email": "a@b.fr"}, "sub", ("42@moodle", "sub")),
    ],
)
def test_usernames(claims, source, expected):
    assert username_from_claims(claims, source=source, scope="moodle") == expected


def test_scoped_subs_never_collide_across_platforms_and_odd_subs_are_hashed():
    assert scoped_sub("42", "moodle") != scoped_sub("42", "moodle-test")
    odd = scoped_sub("a/b c", "moodle")
    assert odd.endswith("@moodle") and "/" not in odd and " " not in odd


MOODLE = {
    "name": "moodle",
    "issuer": "https://moodle.example.fr",
    "client_id": "abc",
    "deployment_ids": ["1"],
    "auth_login_url": "https://moodle.example.fr/mod/lti/auth.php",
    "jwks_url": "https://moodle.example.fr/mod/lti/certs.php",
}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"client_id": ""}, "missing client_id"),
        ({"name": "Moodle UPS"}, "lowercase letters"),
        ({"jwks_url": "moodle/certs.php"}, "jwks_url must be an http(s) URL"),
        ({"username_source": "login"}, "username_source must be one of"),
        ({"deploymnet_ids": ["1"]}, "unknown field(s) ['deploymnet_ids']"),
    ],
)
def test_bad_platform_registration_says_which_field(change, message):
    with pytest.raises(ValueError) as error:
        parse_platforms([{**MOODLE, **change}])
    assert message in str(error.value) and "lti_platforms[0]" in str(error.value)


def test_platform_registration_defaults():
    (platform,) = parse_platforms([{**MOODLE, "deployment_ids": 3}])
    assert platform.deployment_ids == {"3"} and not platform.allow_embedding
    assert platform.origins == {"https://moodle.example.fr"}


@pytest.mark.parametrize(
    "iat, fragment",
    [(1000 + 600, "10 minutes off"), (1000 - 600, "9 minutes off"), (1000 - 100, "expired before it reached")],
    ids=["moodle clock 10 min ahead", "moodle clock 10 min behind", "just expired"],
)
def test_time_checks_explain_clock_skew(iat, fragment):
    with pytest.raises(LaunchRejected) as error:
        check_times({"iat": iat, "exp": iat + 60}, now=1000, leeway=30)
    assert fragment in error.value.message


def test_time_checks_accept_skew_within_leeway():
    check_times({"iat": 1020, "exp": 1080}, now=1000, leeway=30)
    check_times({"iat": 900, "exp": 960}, now=1000, leeway=60)


def test_expiring_store_is_single_use_and_expires():
    clock = [0.0]
    store = ExpiringStore(ttl=10, clock=lambda: clock[0])
    key = store.put("value")
    assert store.pop(key) == "value" and store.pop(key) is None
    key = store.put("value")
    clock[0] = 11
    assert store.get(key) is None


def test_expiring_store_is_bounded():
    store = ExpiringStore(ttl=100, max_entries=3)
    keys = [store.put(i) for i in range(5)]
    store.put("last")
    assert store.get(keys[0]) is None and store.get(keys[-1]) == 4


def test_course_groups_and_roles_are_valid_jupyterhub_names():
    group = course_group_name("moodle", "7")
    assert group == "course-moodle-7"
    assert course_group_name("moodle", "Weird ID/…").startswith("course-moodle-")
    # two platforms' courses never share a group, whatever their names and course IDs
    assert course_group_name("moodle", "2-5") != course_group_name("moodle-2", "5") == "course-moodle-2-5"
    role = course_teacher_role(group)
    assert role["name"] == "course-teacher-moodle-7"
    assert "servers!group=course-moodle-7" in role["scopes"]
    assert not any(scope.startswith("admin:server") for scope in role["scopes"])  # not their servers' state
    assert not any(scope.startswith("access:servers") for scope in role["scopes"])  # stop, not open


def test_embedding_sets_cross_site_cookies_and_frame_ancestors():
    c = Config()
    c.MyDockerAuthenticator.lti_platforms = [{**MOODLE, "allow_embedding": True}]
    mydocker_config.finalize(c)
    assert c.JupyterHub.tornado_settings["cookie_options"] == {"SameSite": "None", "Secure": True, "Partitioned": True}
    csp = c.JupyterHub.tornado_settings["headers"]["Content-Security-Policy"]
    assert csp == "frame-ancestors 'self' https://moodle.example.fr"
    assert c.SwarmEnvironmentSpawner.frame_ancestors == ["https://moodle.example.fr"]


def test_no_embedding_keeps_jupyterhub_cookie_defaults():
    c = Config()
    c.MyDockerAuthenticator.lti_platforms = [MOODLE]
    mydocker_config.finalize(c)
    assert "tornado_settings" not in c.JupyterHub


# -- dynamic registration ---------------------------------------------------------------------------------------
MOODLE_CONFIGURATION = {
    "issuer": "https://moodle.example.org",
    "authorization_endpoint": "https://moodle.example.org/mod/lti/auth.php",
    "jwks_uri": "https://moodle.example.org/mod/lti/certs.php",
    "registration_endpoint": "https://moodle.example.org/mod/lti/openid-registration.php",
    "https://purl.imsglobal.org/spec/lti-platform-configuration": {"product_family_code": "moodle"},
}


def test_registration_links_expire_cannot_be_forged_and_register_one_platform():
    secret = b"cookie-secret"
    key = registration_key(secret, 500_000, 2_000)  # issued at 500 s (in ms), valid until 2 000 s
    assert registration_key_valid(secret, key, now=1_000)
    assert not registration_key_valid(secret, key, now=2_001)  # expired
    assert not registration_key_valid(b"another hub", key, now=1_000)
    issued, _, signature = key.split(".")
    assert not registration_key_valid(secret, f"{issued}.9999999999.{signature}", now=1_000)  # expiry moved
    assert not registration_key_valid(secret, f"900000.2000.{signature}", now=1_000)  # issue time moved
    assert not registration_key_valid(secret, "", now=1_000)
    # a platform registered (through it or a newer link) after it was issued: spent
    assert not registration_key_valid(secret, key, last_registration_ms=600_000, now=1_000)
    assert registration_key_valid(secret, key, last_registration_ms=400_000, now=1_000)


@pytest.mark.parametrize(
    "url, change, fragment",
    [
        ("https://moodle.example.org/mod/lti/openid-configuration.php", {"registration_endpoint": ""}, "lacks"),
        ("https://moodle.example.org.evil.example/openid", {}, "not its site"),
        ("https://evil.example/moodle.example.org", {}, "not its site"),
        ("https://moodle.example.org/c", {"jwks_uri": "file:///etc/passwd"}, "not an http(s) URL"),
    ],
)
def test_a_platform_configuration_is_checked(url, change, fragment):
    with pytest.raises(RegistrationError, match=re.escape(fragment)):
        check_platform_configuration({**MOODLE_CONFIGURATION, **change}, url)


def test_a_registered_platform_becomes_a_valid_platform_entry_with_a_free_name(tmp_path):
    answer = {"client_id": "abc", "https://purl.imsglobal.org/spec/lti-tool-configuration": {"deployment_id": "4"}}
    entry = platform_entry(MOODLE_CONFIGURATION, answer, taken_names={"moodle"}, registered_at_ms=5)
    assert entry["name"] == "moodle-2" and entry["deployment_ids"] == ["4"] and entry["client_id"] == "abc"
    (platform,) = parse_platforms([entry])
    assert platform.trust_admin_roles is False  # its site administrators are not the hub's
    assert platform.username_source == "sub"  # nor its e-mail addresses: they are whatever its admins typed
    (defaulted,) = parse_platforms([entry], default_username_source="email")  # the hub's own default for others
    assert defaulted.username_source == "sub"
    assert platform.jwks_url.endswith("/mod/lti/certs.php") and platform.display_name.startswith("Moodle")
    with pytest.raises(RegistrationError, match="no deployment ID"):
        platform_entry(MOODLE_CONFIGURATION, {"client_id": "abc"}, taken_names=set(), registered_at_ms=5)
    assert platform_name("https://123.example.org", set()) == "123"
    assert platform_name("https://-x.example.org", set()) == "x"
    store = RegisteredPlatformsFile(tmp_path / "registered.json")
    store.add(entry)
    assert store.load() == [entry] and (tmp_path / "registered.json").stat().st_mode & 0o777 == 0o600
    # the links issued before it stay spent, even once the platform is removed from the list by hand
    assert store.links_spent_before() == 5
    (tmp_path / "registered.json").write_text("[]")
    assert RegisteredPlatformsFile(tmp_path / "registered.json").links_spent_before() == 5
    store.spend_links_before(3)  # never goes back
    assert store.links_spent_before() == 5


# -- allowed_domains ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "claims, allowed",
    [
        pytest.param({"email": "etu@universite.example"}, True, id="verified-email"),
        pytest.param({"email": "etu@lab.universite.example"}, True, id="subdomain"),
        pytest.param(
            {"email": "x@elsewhere.example", "eduperson_principal_name": "x@universite.example"}, True, id="eppn"
        ),
        pytest.param(
            {"email": "x@elsewhere.example", "eduperson_scoped_affiliation": ["member@universite.example"]},
            True,
            id="scoped-affiliation",
        ),
        pytest.param({"email": "mallory@universite.example", "email_verified": False}, False, id="unverified-email"),
        pytest.param({"email": "mallory@universite.example", "email_verified": "false"}, False, id="unverified-string"),
        # no e-mail: the username is sub@<federation_scope>, the provider's host, not the person's institution
        pytest.param({}, False, id="issuer-scoped-username"),
        pytest.param({"email": "x@universite.example.evil.org"}, False, id="lookalike-domain"),
    ],
)
async def test_allowed_domains_trust_only_what_the_provider_vouches_for(claims, allowed):
    from mydocker_hub.auth.authenticator import MyDockerAuthenticator

    authenticator = MyDockerAuthenticator(
        authorize_url="https://login.universite.example/authorize",
        username_source="email",
        allowed_domains={"universite.example"},
    )
    user_info = {"sub": "someone", **claims}
    name = authenticator.user_info_to_username(user_info)
    model = await authenticator.update_auth_model({"name": name, "auth_state": {"oauth_user": user_info}})
    assert await authenticator.check_allowed(name, model) is allowed


# -- the platforms' keysets -------------------------------------------------------------------------------------
class _FlakyKeysetCache(KeysetCache):
    """The cache's policy, with the platform's keyset endpoint replaced by a switch (up / down)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.up, self.fetches = True, 0

    async def _fetch(self, url):
        self.fetches += 1
        if not self.up:
            raise KeysetError(f"the keyset at {url} could not be read (ConnectionRefusedError)")
        return {"k1": "key one"}


async def test_a_platform_down_at_refresh_time_still_has_its_known_keys_accepted():
    cache = _FlakyKeysetCache(ttl=0, min_refresh_interval=0)  # every look is a refresh
    assert await cache.key("https://moodle.example/certs", "k1") == "key one"
    cache.up = False
    assert await cache.key("https://moodle.example/certs", "k1") == "key one"
    with pytest.raises(KeysetError, match="could not be read"):
        await cache.key("https://moodle.example/certs", "k2")  # a key it never published


async def test_a_platform_that_never_answered_is_not_asked_again_at_every_launch():
    cache = _FlakyKeysetCache(min_refresh_interval=60)
    cache.up = False
    for _ in range(3):
        with pytest.raises(KeysetError, match="could not be read"):  # the real reason, not "no key k1"
            await cache.key("https://moodle.example/certs", "k1")
    assert cache.fetches == 1


def test_a_platform_registered_before_usernames_were_written_in_its_entry_gets_sub_scoped_ones(tmp_path):
    """Entries saved by one-step registrations before they said ``username_source`` must not fall back to the
    hub's default (e-mail): that platform's administrators could then open any account by its address."""
    from mydocker_hub.auth.authenticator import MyDockerAuthenticator

    answer = {"client_id": "abc", "https://purl.imsglobal.org/spec/lti-tool-configuration": {"deployment_id": "4"}}
    older_entry = platform_entry(MOODLE_CONFIGURATION, answer, taken_names=set(), registered_at_ms=5)
    del older_entry["username_source"]
    trusted_entry = {**older_entry, "client_id": "def", "name": "trusted", "username_source": "email"}
    saved = tmp_path / "registered.json"
    saved.write_text(json.dumps([older_entry, trusted_entry]))
    authenticator = MyDockerAuthenticator(lti_registered_platforms_file=str(saved), username_source="email")
    sources = {entry["client_id"]: entry["username_source"] for entry in authenticator._registered_platform_entries()}
    assert sources == {"abc": "sub", "def": "email"}  # an admin's own choice in the file is kept
    registry = authenticator.lti_tool.registry
    assert registry.find(older_entry["issuer"], "abc").username_source == "sub"
