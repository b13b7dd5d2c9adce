"""Logins for real: a real OIDC provider process (oidc-provider-mock) for the federation, and a
Moodle-like LTI 1.3 platform (tests/lti_platform.py) signing real launches, against a real hub.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from urllib.parse import quote, unquote

import pytest
import requests
from playwright.sync_api import expect

from .conftest import CHROMIUM, CHROMIUM_ARGS, identity_prefix
from .hubprocess import TEST_ENVIRONMENTS, TEST_IMAGE, Hub, LoopbackSession, free_port, wait_for
from .lti_platform import INSTRUCTOR, LEARNER, SITE_ADMIN, LaunchSpec, LtiTestPlatform, _form_fields

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ENVIRONMENTS = {
    "lab.yaml": TEST_ENVIRONMENTS["lab.yaml"],
    "crypto.yaml": f"""
title: TP cryptographie (course 7 only)
image: {TEST_IMAGE}
access: {{groups: [course-moodle-7]}}
""",
    "teachers-only.yaml": TEST_ENVIRONMENTS["teachers-only.yaml"],
}


def text(response: requests.Response) -> str:
    """The page as a person reads it (the hub's error pages escape quotes and name no charset: UTF-8)."""
    return html.unescape(response.content.decode())


def _session() -> requests.Session:
    return LoopbackSession()


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("oidc") / "oidc.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return requests.get(url + "/.well-known/openid-configuration", timeout=2).ok
        except requests.RequestException:
            return False

    wait_for(ready, 30, message="the OIDC provider")
    yield url, requests.get(url + "/.well-known/openid-configuration", timeout=5).json()
    process.terminate()
    process.wait(10)
    log.close()


@pytest.fixture(scope="module")
def idhub(tmp_path_factory, run_prefix, docker_api, oidc_provider):
    """A hub with the three doors open: federation (OIDC), one LTI platform, and the demo accounts."""
    oidc_url, discovery = oidc_provider
    workdir = tmp_path_factory.mktemp("idhub")
    hub = Hub(workdir, identity_prefix(run_prefix), environments=ENVIRONMENTS)
    lti = LtiTestPlatform(hub.url).start()
    # a second Moodle whose administrator enabled embedding (its own origin, client id and name)
    embedding = LtiTestPlatform(hub.url, client_id="embedded-tool").start()
    embedded = {**embedding.registration, "name": "moodle2", "allow_embedding": True}
    (hub.config_d / "20-identity.py").write_text(
        f"""
c.MyDockerAuthenticator.lti_platforms = [{lti.registration!r}, {embedded!r}]
c.MyDockerAuthenticator.client_id = "mydocker-hub"
c.MyDockerAuthenticator.client_secret = "not-a-real-secret"
c.MyDockerAuthenticator.authorize_url = {discovery["authorization_endpoint"]!r}
c.MyDockerAuthenticator.token_url = {discovery["token_endpoint"]!r}
c.MyDockerAuthenticator.userdata_url = {discovery["userinfo_endpoint"]!r}
c.MyDockerAuthenticator.scope = ["openid", "email", "profile"]
c.MyDockerAuthenticator.oauth_callback_url = {hub.url + "/hub/oauth_callback"!r}
c.MyDockerAuthenticator.username_source = "email"
c.MyDockerAuthenticator.allowed_domains = {{"universite.example"}}
c.MyDockerAuthenticator.admin_groups = {{"hub-admins"}}
c.MyDockerAuthenticator.lti_keyset_min_refresh_interval = 0.5
"""
    )
    hub.oidc_url = oidc_url
    hub.lti = lti
    hub.lti_embedding = embedding
    hub.start()
    yield hub
    hub.stop()
    lti.stop()
    embedding.stop()


# -- federation -------------------------------------------------------------------------------------------
def federation_login(hub, sub: str, claims: dict, next_url: str = "/hub/home", follow: bool = True):
    assert requests.put(f"{hub.oidc_url}/users/{quote(sub, safe='')}", json=claims, timeout=10).status_code == 204
    session = _session()
    start = session.get(f"{hub.url}/hub/oauth_login?next={quote(next_url)}", allow_redirects=False)
    assert start.status_code == 302 and start.headers["Location"].startswith(hub.oidc_url)
    authorize = session.post(start.headers["Location"], data={"sub": sub}, allow_redirects=False)
    assert authorize.status_code in (302, 303), authorize.text[:300]
    response = session.get(authorize.headers["Location"], allow_redirects=follow)
    response.session = session
    return response


def user_model(hub, name: str) -> dict:
    response = hub.api("GET", f"users/{quote(name, safe='')}")
    assert response.status_code == 200, (name, response.status_code)
    return response.json()


FEDERATION_CASES = {
    "faculty is a teacher": (
        "prof-sub",
        {"email": "prof@universite.example", "eduperson_affiliation": ["faculty", "member"]},
        (False, ["teacher"]),
    ),
    "student": (
        "etu-sub",
        {"email": "etu@universite.example", "eduperson_scoped_affiliation": ["student@universite.example"]},
        (False, ["student"]),
    ),
    "admin by idp group": (
        "boss-sub",
        {"email": "boss@universite.example", "eduperson_affiliation": ["staff"], "groups": ["hub-admins"]},
        (True, ["teacher"]),
    ),
}


@pytest.mark.parametrize("sub, claims, expected", FEDERATION_CASES.values(), ids=FEDERATION_CASES.keys())
def test_federation_login_maps_eduperson_attributes_to_roles(idhub, sub, claims, expected):
    response = federation_login(idhub, sub, claims)
    assert response.status_code == 200 and response.url.endswith("/hub/home"), response.url
    model = user_model(idhub, claims["email"])
    assert (model["admin"], model["groups"]) == expected


def test_federation_login_outside_allowed_domains_is_refused(idhub):
    response = federation_login(idhub, "out-sub", {"email": "someone@elsewhere.example", "eduperson_affiliation": []})
    assert response.status_code == 403
    assert idhub.api("GET", "users/someone%40elsewhere.example").status_code == 404


def test_an_unverified_address_in_an_allowed_domain_does_not_let_its_bearer_in(idhub):
    claims = {"email": "mallory@universite.example", "email_verified": False}
    assert federation_login(idhub, "mallory-sub", claims).status_code == 403


def test_join_link_logs_in_through_the_federation_and_keeps_the_user_redirect(idhub):
    link = "/hub/join/lab/user-redirect/lab/tree/TP1.ipynb"
    anonymous = requests.get(idhub.url + link, allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302 and "/hub/login?next=" in anonymous.headers["Location"]
    claims = {"email": "joiner@universite.example", "eduperson_affiliation": ["student"]}
    callback = federation_login(idhub, "joiner-sub", claims, next_url=link, follow=False)
    assert callback.headers["Location"] == link
    join = callback.session.get(idhub.url + link, allow_redirects=False)
    assert join.status_code == 302
    location = unquote(join.headers["Location"])
    assert "/hub/spawn/joiner@universite.example/lab" in location
    assert location.endswith("/user/joiner@universite.example/lab/lab/tree/TP1.ipynb")


def test_roles_are_recomputed_at_every_login(idhub):
    claims = {"email": "vacataire@universite.example", "eduperson_affiliation": ["employee"]}
    federation_login(idhub, "vac-sub", claims)
    assert user_model(idhub, "vacataire@universite.example")["groups"] == ["teacher"]
    federation_login(idhub, "vac-sub", {**claims, "eduperson_affiliation": ["affiliate"]})
    assert user_model(idhub, "vacataire@universite.example")["groups"] == ["student"]


def test_login_page_offers_federation_and_demo(idhub):
    page = requests.get(f"{idhub.url}/hub/login", timeout=10).text
    assert "mydocker-federation-login" in page and "Sign in with Renater" in page
    assert "mydocker-demo-form" in page and "mydocker-lti-hint" in page


# -- LTI 1.3 resource-link launches ------------------------------------------------------------------------
def lti_launch(hub, spec: LaunchSpec, session=None):
    session = session or _session()
    response, fields = hub.lti.launch_with_requests(spec, session)
    return session, response, fields


def test_lti_launch_logs_in_with_issuer_scoped_sub_and_lands_on_the_environment(idhub):
    spec = LaunchSpec(user_id="1001", roles=[LEARNER], target=f"{idhub.url}/hub/join/lab")
    session, response, _ = lti_launch(idhub, spec)
    assert response.status_code == 302, response.text[-2500:]
    assert response.headers["Location"] == "/hub/join/lab"
    landing = session.get(idhub.url + response.headers["Location"], allow_redirects=False)
    assert landing.status_code == 302 and "/hub/spawn/1001%40moodle/lab" in landing.headers["Location"]
    model = user_model(idhub, "1001@moodle")
    assert sorted(model["groups"]) == ["course-moodle-7", "student"] and not model["admin"]


def test_lti_custom_parameter_picks_the_environment(idhub):
    spec = LaunchSpec(user_id="1003", custom={"Environment": "lab"})  # Moodle lower-cases custom keys
    _, response, _ = lti_launch(idhub, spec)
    assert response.headers["Location"] == "/hub/join/lab"


def test_same_teacher_from_moodle_and_federation_is_one_user(idhub):
    federation_login(idhub, "dupont-sub", {"email": "dupont@universite.example", "eduperson_affiliation": ["faculty"]})
    spec = LaunchSpec(user_id="77", roles=[INSTRUCTOR], email="Dupont@universite.example")
    _, response, _ = lti_launch(idhub, spec)
    assert response.status_code == 302
    model = user_model(idhub, "dupont@universite.example")
    assert set(model["groups"]) == {"teacher", "course-moodle-7"}
    assert idhub.api("GET", "users/77%40moodle").status_code == 404


def test_moodle_site_admin_becomes_hub_admin(idhub):
    _, response, _ = lti_launch(idhub, LaunchSpec(user_id="2", roles=[SITE_ADMIN, INSTRUCTOR]))
    assert response.status_code == 302
    assert user_model(idhub, "2@moodle")["admin"] is True


def test_course_teacher_sees_and_stops_only_their_course_servers(idhub):
    lti_launch(idhub, LaunchSpec(user_id="500", roles=[INSTRUCTOR], course_id="7"))
    lti_launch(idhub, LaunchSpec(user_id="501", roles=[LEARNER], course_id="7"))
    lti_launch(idhub, LaunchSpec(user_id="502", roles=[LEARNER], course_id="8", course_title="Autre cours"))
    idhub.spawn("501@moodle", "lab")
    idhub.spawn("502@moodle", "lab")
    teacher = {"Authorization": f"token {idhub.user_token('500@moodle')}"}
    listed = {u["name"] for u in idhub.api("GET", "users", headers=teacher).json()}
    assert {"501@moodle", "500@moodle"} <= listed and "502@moodle" not in listed
    assert idhub.api("DELETE", "users/502%40moodle/servers/lab", headers=teacher).status_code in (403, 404)
    # the teacher sees the student's server, not its state (the student's encrypted login, its service)
    seen = idhub.api("GET", "users/501%40moodle", headers=teacher).json()["servers"]["lab"]
    assert seen["ready"] and "state" not in seen
    assert idhub.server_model("502@moodle", "lab")
    assert idhub.api("DELETE", "users/501%40moodle/servers/lab", headers=teacher).status_code in (202, 204)
    wait_for(lambda: idhub.server_model("501@moodle", "lab") is None, 120, message="501's server stopped")
    idhub.stop_server("502@moodle", "lab")
    # the same person launching as a learner of that course loses the course-teacher role
    lti_launch(idhub, LaunchSpec(user_id="500", roles=[LEARNER], course_id="7"))
    assert idhub.api("GET", "users/501%40moodle", headers=teacher).status_code in (403, 404)


def test_environments_can_be_restricted_to_a_course_group(idhub):
    session, _, _ = lti_launch(idhub, LaunchSpec(user_id="601", course_id="7"))
    assert session.get(f"{idhub.url}/hub/join/crypto", allow_redirects=False).status_code == 302
    other, _, _ = lti_launch(idhub, LaunchSpec(user_id="602", course_id="8"))
    assert other.get(f"{idhub.url}/hub/join/crypto", allow_redirects=False).status_code == 404


# -- LTI 1.3: what must be refused ------------------------------------------------------------------------
NEGATIVE = {
    "expired": ("expired", 400, "expired before it reached"),
    "clock +10 min": ("future", 400, "is 10 minutes off"),
    "clock -10 min": ("past", 400, "minutes off"),
    "wrong audience": ("wrong_aud", 400, "(audience)"),
    "wrong issuer": ("wrong_iss", 400, "(issuer)"),
    "bad signature": ("bad_signature", 400, "(signature)"),
    "unknown kid": ("unknown_kid", 400, "(key)"),
    "alg none": ("alg_none", 400, "(signature)"),
    "missing deployment": ("no_deployment", 400, "(deployment)"),
    "wrong deployment": ("wrong_deployment", 400, "deployment '999' is not registered"),
}


@pytest.mark.parametrize("tamper, status, fragment", NEGATIVE.values(), ids=NEGATIVE.keys())
def test_bad_launches_are_refused_with_the_failed_check(idhub, tamper, status, fragment):
    user_id = str(9000 + list(NEGATIVE).index(next(k for k, v in NEGATIVE.items() if v[0] == tamper)))
    _, response, fields = lti_launch(idhub, LaunchSpec(user_id=user_id, tamper=tamper))
    assert response.status_code == status
    assert fragment in text(response), response.text[-1500:]
    assert fields["id_token"] not in text(response) and fields["id_token"] not in idhub.log()
    assert idhub.lti.nonces and not any(nonce in idhub.log() for nonce in idhub.lti.nonces)
    assert idhub.api("GET", f"users/{user_id}%40moodle").status_code == 404


def test_replayed_launch_is_refused(idhub):
    session, response, fields = lti_launch(idhub, LaunchSpec(user_id="700"))
    assert response.status_code == 302
    again = session.post(f"{idhub.url}/hub/lti13/launch", data=fields, allow_redirects=False)
    assert again.status_code == 400 and "already used" in text(again)
    # the same id_token with a fresh state of a new login initiation: the nonce does not match
    other = _session()
    hint = idhub.lti.register(LaunchSpec(user_id="700"))
    init = other.post(f"{idhub.url}/hub/lti13/login", data=idhub.lti.login_initiation_form(hint), allow_redirects=False)
    state = _form_fields(init.text)["state"]
    replay = other.post(
        f"{idhub.url}/hub/lti13/launch", data={"id_token": fields["id_token"], "state": state}, allow_redirects=False
    )
    assert replay.status_code == 400 and "(nonce)" in text(replay), text(replay)[-3000:]


def test_a_rotated_platform_key_is_fetched_on_its_first_launch(idhub):
    # the second platform (its own keyset URL, untouched by the negative cases' refreshes)
    session = _session()
    first, _ = idhub.lti_embedding.launch_with_requests(LaunchSpec(user_id="710"), session)
    assert first.status_code == 302
    idhub.lti_embedding.rotate_key()
    second, _ = idhub.lti_embedding.launch_with_requests(LaunchSpec(user_id="711"), _session())
    assert second.status_code == 302, text(second)[-800:]
    assert "LTI keyset" in idhub.log()


def test_launch_without_the_browser_state_cookie_is_refused(idhub):
    _, response, fields = lti_launch(idhub, LaunchSpec(user_id="701"))
    # a third party posting a captured launch from another browser (no state cookie): refused
    stranger = requests.post(f"{idhub.url}/hub/lti13/launch", data=fields, allow_redirects=False, timeout=10)
    assert stranger.status_code == 400


def test_unregistered_platform_or_deployment_at_login_initiation(idhub):
    form = idhub.lti.login_initiation_form(idhub.lti.register(LaunchSpec()))
    wrong_deployment = requests.post(
        f"{idhub.url}/hub/lti13/login", data={**form, "lti_deployment_id": "5"}, timeout=30
    )
    assert wrong_deployment.status_code == 400 and "Deployment '5'" in text(wrong_deployment)
    wrong_issuer = requests.post(
        f"{idhub.url}/hub/lti13/login", data={**form, "iss": "https://evil.example"}, timeout=30
    )
    assert wrong_issuer.status_code == 400 and "not registered" in text(wrong_issuer)


# -- deep linking -------------------------------------------------------------------------------------------
def test_deep_linking_returns_a_signed_response_moodle_accepts(idhub):
    session, response, _ = lti_launch(idhub, LaunchSpec(user_id="800", roles=[INSTRUCTOR], deep_linking=True))
    assert response.status_code == 303, text(response)[-3000:]
    assert "/hub/lti13/deep-link/" in response.headers["Location"]
    picker = session.get(idhub.url + response.headers["Location"])
    assert 'data-environment="lab"' in picker.text and 'data-environment="crypto"' in picker.text
    assert 'data-environment="teachers-only"' not in picker.text  # a draft of someone else
    assert idhub.lti.url in picker.headers["Content-Security-Policy"]  # Moodle may frame the picker
    back = session.post(idhub.url + response.headers["Location"], data={"environment": ["lab"]})
    action = back.text.split('action="', 1)[1].split('"', 1)[0]
    token = back.text.split('name="JWT" value="', 1)[1].split('"', 1)[0]
    created = requests.post(action, data={"JWT": token}, timeout=10)
    assert created.status_code == 200 and "Activity created: Test lab" in created.text
    claims = idhub.lti.deep_link_results[-1]
    (item,) = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["type"] == "ltiResourceLink" and item["url"] == f"{idhub.url}/hub/join/lab"
    assert item["custom"] == {"environment": "lab"}
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "moodle-opaque-data"
    assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == "1"


def test_students_cannot_add_environments_to_a_course(idhub):
    _, response, _ = lti_launch(idhub, LaunchSpec(user_id="801", roles=[LEARNER], deep_linking=True))
    assert response.status_code == 403 and "Only teachers" in text(response)


def test_tool_keyset_and_moodle_setup_page(idhub):
    keys = requests.get(f"{idhub.url}/hub/lti13/jwks", timeout=10).json()["keys"]
    assert keys and all({"kid", "n", "e"} <= set(k) and "d" not in k for k in keys)  # public halves only
    admin = idhub.login("admin")
    setup = admin.get(f"{idhub.url}/hub/lti13/setup")
    assert setup.status_code == 200
    for path in ("/hub/lti13/login", "/hub/lti13/launch", "/hub/lti13/jwks"):
        assert f"{idhub.url}{path}" in setup.text
    refused = idhub.login("student").get(f"{idhub.url}/hub/lti13/setup", headers={"Accept-Language": "fr"})
    assert refused.status_code == 403
    assert "Seuls les administrateurs peuvent voir les valeurs de déclaration LTI." in text(refused)
    french = admin.get(f"{idhub.url}/hub/lti13/setup", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert "Le lien déclare une seule plateforme, jusqu'au" in html.unescape(text(french))


# -- in a real browser ------------------------------------------------------------------------------------------
def frame_at(page, url_prefix: str, timeout: float = 60, but_not: str = "\0"):
    """The course page's frame once it shows a page under ``url_prefix`` (and not under ``but_not``).

    Looked for in Playwright's own list of frames, without calling into the page: a query on a frame whose
    track Playwright lost (see ``browser_one_process`` in conftest.py) would wait forever.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in page.frames[1:]:
            if frame.url.startswith(url_prefix) and not frame.url.startswith(but_not):
                return frame
        page.wait_for_timeout(200)
    raise AssertionError(f"no frame reached {url_prefix} within {timeout}s: {[f.url for f in page.frames]}")


def frame_on_the_hub(page, hub_url: str, timeout: float = 60):
    """The LTI frame once the launch has brought it to the hub for good (past the login initiation)."""
    return frame_at(page, hub_url + "/", timeout, but_not=hub_url + "/hub/lti13/login")


def launch_in_course_frame(page, platform: LtiTestPlatform, spec: LaunchSpec, hub_url: str, attempts: int = 3):
    """Open the course page with the activity in its frame (Moodle's default); the frame, once on the hub.

    For the tests that need the browser's own rules for third-party storage, hence site isolation: there
    Playwright may lose track of the frame while the launch moves it between Moodle's site and the hub's
    (see ``browser_one_process``). The frame then seems to stay in Moodle although the hub served the launch;
    the course page is opened again, a new launch, as a student would reload it.
    """
    for attempt in range(1, attempts + 1):
        page.goto(platform.course_page_url(spec, embed=True))
        try:
            return frame_on_the_hub(page, hub_url, timeout=20)
        except AssertionError:
            if attempt == attempts:
                raise


@pytest.mark.browser
def test_student_launch_from_moodle_in_a_new_window_ends_in_a_running_environment(idhub, browser, shots):
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    spec = LaunchSpec(user_id="3001", roles=[LEARNER], target=f"{idhub.url}/hub/join/lab")
    page.goto(idhub.lti.course_page_url(spec))
    with context.expect_page() as popup_info:
        page.click("#activity")
    popup = popup_info.value
    popup.wait_for_url("**/user/3001@moodle/lab/**", timeout=180_000)
    expect(popup.locator("#jp-main-dock-panel")).to_be_visible(timeout=120_000)
    popup.screenshot(path=str(shots / "lti-student-new-window.png"))
    context.close()
    idhub.stop_server("3001@moodle", "lab")


def new_window_button(browser, hub, user_id: str, locale: str):
    """A learner's launch in Moodle's frame: the browser context, its page and the "new window" button."""
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    spec = LaunchSpec(user_id=user_id, roles=[LEARNER], target=f"{hub.url}/hub/join/lab")
    page.goto(hub.lti.course_page_url(spec, embed=True))
    button = frame_on_the_hub(page, hub.url).locator("#mydocker-open-new-window")
    expect(button).to_be_visible(timeout=30_000)
    return context, page, button


@pytest.mark.browser
def test_launch_inside_moodle_iframe_offers_a_new_window_and_a_pasted_link_asks(idhub, browser_one_process, shots):
    context, page, button = new_window_button(browser_one_process, idhub, "3002", "en-US")
    page.screenshot(path=str(shots / "lti-iframe-continue.png"))
    with context.expect_page() as popup_info:
        button.click()
    popup = popup_info.value
    popup.wait_for_url("**/user/3002@moodle/lab/**", timeout=180_000)
    expect(popup.locator("#jp-main-dock-panel")).to_be_visible(timeout=120_000)  # JupyterLab, in the new window
    context.close()
    idhub.stop_server("3002@moodle", "lab")

    # the same kind of link opened from elsewhere (pasted, sent by someone): the browser asks first
    context, _, button = new_window_button(browser_one_process, idhub, "3003", "fr-FR")
    link = idhub.url + button.get_attribute("href")
    pasted = context.new_page()
    pasted.goto(link)
    expect(pasted.locator("h1")).to_have_text("Se connecter en tant que 3003@moodle ?")
    expect(pasted.locator("#mydocker-lti-switch")).to_be_visible()
    pasted.screenshot(path=str(shots / "lti-continue-asks.png"))
    pasted.locator("#mydocker-lti-switch").click()
    pasted.wait_for_url("**/user/3003@moodle/lab/**", timeout=180_000)
    context.close()
    idhub.stop_server("3003@moodle", "lab")


@pytest.mark.browser
def test_teacher_picks_an_environment_in_moodle_select_content(idhub, browser_one_process, shots):
    context = browser_one_process.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    spec = LaunchSpec(user_id="3003", roles=[INSTRUCTOR], deep_linking=True)
    page.goto(idhub.lti.course_page_url(spec, embed=True))  # Moodle opens "Select content" in a frame
    frame = frame_on_the_hub(page, idhub.url)
    expect(frame.locator('[data-environment="lab"]')).to_be_visible(timeout=30_000)
    expect(frame.locator("h1")).to_contain_text("Ajouter un environnement")
    page.screenshot(path=str(shots / "lti-teacher-picker.png"))
    frame.locator('[data-environment="lab"] input').check()
    frame.locator("#mydocker-publish").click()
    frame = frame_at(page, idhub.lti.url + "/mod/lti/contentitem_return.php")  # back in Moodle
    expect(frame.locator("#created")).to_contain_text("Activity created: Labo de test", timeout=30_000)
    assert idhub.lti.deep_link_results[-1]["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"][0]["url"] == (
        f"{idhub.url}/hub/join/lab"
    )
    context.close()


@pytest.mark.browser
def test_with_embedding_enabled_the_environment_runs_inside_moodles_iframe(idhub, browser, shots):
    headers = requests.get(f"{idhub.url}/hub/login", timeout=10).headers
    assert headers["Content-Security-Policy"] == f"frame-ancestors 'self' {idhub.lti_embedding.url}"
    # Chrome's default for a normal (not private) window: third-party cookies and storage allowed
    permissive = browser.browser_type.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS + ["--disable-features=ThirdPartyCookieBlocking"]
    )
    page = permissive.new_page(locale="en-US", viewport={"width": 1280, "height": 900})
    spec = LaunchSpec(user_id="3004", roles=[LEARNER], target=f"{idhub.url}/hub/join/lab")
    frame = launch_in_course_frame(page, idhub.lti_embedding, spec, idhub.url)
    expect(frame.locator("#jp-main-dock-panel")).to_be_visible(timeout=180_000)  # JupyterLab, in the frame
    # fully loaded: the splash goes once its API calls (cookies, _xsrf) succeeded, and the file browser lists
    expect(frame.locator("#jupyterlab-splash")).to_have_count(0, timeout=120_000)
    expect(frame.locator(".jp-DirListing-content")).to_be_visible(timeout=60_000)
    page.screenshot(path=str(shots / "lti-embedded-jupyterlab.png"))
    permissive.close()
    idhub.stop_server("3004@moodle2", "lab")


@pytest.mark.browser
def test_with_embedding_enabled_a_browser_blocking_third_party_storage_gets_a_new_window(idhub, browser):
    # Playwright's Chromium, like Safari or a private window, blocks third-party cookies and storage:
    # JupyterLab cannot run in the frame, so the launch offers the new window instead of a broken frame
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    spec = LaunchSpec(user_id="3008", roles=[LEARNER], target=f"{idhub.url}/hub/join/lab")
    button = launch_in_course_frame(page, idhub.lti_embedding, spec, idhub.url).locator("#mydocker-open-new-window")
    expect(button).to_be_visible(timeout=30_000)
    with context.expect_page() as popup_info:
        button.click()
    popup_info.value.wait_for_url("**/user/3008@moodle2/lab/**", timeout=180_000)
    context.close()
    idhub.stop_server("3008@moodle2", "lab")


# -- LTI Dynamic Registration ("Add LTI Advantage" in Moodle 4.x) -------------------------------------------
def registration_link(hub) -> str:
    """The one-step registration link, as an administrator copies it from the hub's setup page."""
    setup = hub.login("admin").get(f"{hub.url}/hub/lti13/setup")
    assert setup.status_code == 200
    return html.unescape(re.search(r'id="mydocker-lti-registration-url">([^<]+)<', setup.text).group(1))


def test_a_wrong_registration_link_or_a_platform_without_registration_registers_nothing(idhub):
    link = registration_link(idhub)
    oidc_configuration = f"{idhub.oidc_url}/.well-known/openid-configuration"
    forged = link.split("key=")[0] + "key=9999999999.0123456789abcdef0123456789abcdef01234567"
    refused = _session().get(forged, params={"openid_configuration": oidc_configuration})
    assert refused.status_code == 403 and "/hub/lti13/setup" in text(refused)
    # an OpenID provider that is no LTI platform refuses the tool: the administrator reads what it said
    before = idhub.login("admin").get(f"{idhub.url}/hub/lti13/setup").text.count("<tr><td>")
    failed = _session().get(link, params={"openid_configuration": oidc_configuration})
    assert failed.status_code == 400
    assert "the platform refused the registration (400)" in text(failed) and "Nothing was changed" in text(failed)
    assert idhub.login("admin").get(f"{idhub.url}/hub/lti13/setup").text.count("<tr><td>") == before
    opened_directly = _session().get(link)
    assert opened_directly.status_code == 400 and "Add LTI Advantage" in text(opened_directly)


@pytest.mark.browser
def test_moodle_registers_the_hub_in_one_step_and_its_launches_work_at_once(idhub, browser_one_process, shots):
    link = registration_link(idhub)
    moodle = LtiTestPlatform(idhub.url, client_id="").start()
    try:
        # Moodle's "Add LTI Advantage": its page frames the link, the hub registers, "Close" ends it
        page = browser_one_process.new_page(locale="fr-FR", viewport={"width": 1100, "height": 800})
        page.goto(moodle.registration_page_url(link))
        frame = page.frame_locator("#registration")
        expect(frame.locator("#mydocker-registered-platform")).to_contain_text("localhost", timeout=30_000)
        expect(frame.locator("h1")).to_have_text("Le hub est déclaré")
        page.screenshot(path=str(shots / "lti-dynamic-registration.png"))
        frame.locator("#mydocker-registration-close").click()
        expect(page.locator("#status")).to_have_text("Tool registration closed", timeout=10_000)
        page.close()
        (tool,) = moodle.registered_tools
        assert tool["initiate_login_uri"] == f"{idhub.url}/hub/lti13/login"
        # the link is spent: opened again (copied, leaked), it registers nothing
        replayed = _session().get(
            link, params={"openid_configuration": f"{moodle.url}/mod/lti/openid-configuration.php"}
        )
        assert replayed.status_code == 403 and "already used" in text(replayed)
        assert len(moodle.registered_tools) == 1
        assert tool["redirect_uris"] == [f"{idhub.url}/hub/lti13/launch"]
        assert tool["jwks_uri"] == f"{idhub.url}/hub/lti13/jwks"
        messages = tool["https://purl.imsglobal.org/spec/lti-tool-configuration"]["messages"]
        assert {"type": "LtiDeepLinkingRequest", "target_link_uri": f"{idhub.url}/hub/lti13/launch"} in messages

        # a student's launch from that Moodle works at once, with its new client and deployment IDs
        spec = LaunchSpec(user_id="5001", target=f"{idhub.url}/hub/join/lab")
        response, _ = moodle.launch_with_requests(spec)
        assert response.status_code == 302 and response.headers["Location"] == "/hub/join/lab", text(response)[-800:]
        assert "course-localhost-7" in user_model(idhub, "5001@localhost")["groups"]
        setup = idhub.login("admin").get(f"{idhub.url}/hub/lti13/setup")
        assert moodle.client_id in setup.text and moodle.deployment_id in setup.text

        # kept across a restart of the hub
        idhub.restart()
        again, _ = moodle.launch_with_requests(LaunchSpec(user_id="5002"))
        assert again.status_code == 302, text(again)[-800:]
    finally:
        moodle.stop()


def test_a_platform_registered_in_one_step_reaches_no_account_of_the_hub_by_e_mail(idhub):
    """Its site administrators can give any of its accounts any e-mail: its users come in as
    ``<sub>@<platform>``, never into the account of the address they send (a teacher's, an administrator's),
    and an account of its own that a hub admin makes administrator is not reachable from it either."""
    federation_login(idhub, "chief-sub", {"email": "chief@universite.example", "groups": ["hub-admins"]})
    assert user_model(idhub, "chief@universite.example")["admin"]
    teacher = {"email": "prof.reg@universite.example", "eduperson_affiliation": ["faculty"]}
    federation_login(idhub, "prof-reg-sub", teacher)
    assert user_model(idhub, "prof.reg@universite.example")["groups"] == ["teacher"]
    moodle = LtiTestPlatform(idhub.url, client_id="").start()
    try:
        registered = _session().get(
            registration_link(idhub),
            params={
                "openid_configuration": f"{moodle.url}/mod/lti/openid-configuration.php",
                "registration_token": moodle.registration_token,
            },
        )
        assert registered.status_code == 200 and moodle.registered_tools, text(registered)[-800:]
        for user_id, posed_as in (("6001", "Chief@universite.example"), ("6003", "prof.reg@universite.example")):
            posing_session = _session()
            posing, _ = moodle.launch_with_requests(LaunchSpec(user_id=user_id, email=posed_as), posing_session)
            assert posing.status_code == 302, text(posing)[-800:]
            home = text(posing_session.get(f"{idhub.url}/hub/home"))
            assert f"{user_id}@" in home and posed_as.lower() not in home.lower()
        names = [model["name"] for model in idhub.api("GET", "users").json()]
        own_account = next(name for name in names if name.startswith("6001@"))
        assert not user_model(idhub, own_account)["admin"]
        assert user_model(idhub, "chief@universite.example")["admin"]
        assert user_model(idhub, "prof.reg@universite.example")["groups"] == ["teacher"]
        # a hub admin makes that platform's account an administrator: the platform no longer opens it
        made_admin = requests.patch(
            f"{idhub.url}/hub/api/users/{quote(own_account, safe='')}",
            json={"admin": True},
            headers={"Authorization": f"token {idhub.user_token('chief@universite.example')}"},
            timeout=30,
        )
        assert made_admin.status_code == 200, made_admin.text
        refused, _ = moodle.launch_with_requests(LaunchSpec(user_id="6001", email="Chief@universite.example"))
        assert refused.status_code == 403, text(refused)[-800:]
        assert "administrator's account" in text(refused) and "sign in on the hub's login page" in text(refused)
        assert "trust_admin_roles" in idhub.log()  # the log says what would let it in; the page does not
        assert own_account not in text(refused)  # the page does not confirm whose account it is
    finally:
        moodle.stop()


def test_a_platforms_error_answer_shows_its_code_and_never_text_posted_by_anyone(idhub):
    launch_url = f"{idhub.url}/hub/lti13/launch"
    posted = {"error": "login_required", "error_description": "Call 01 23 45 67 89 to unlock your account"}
    refused = _session().post(launch_url, data=posted)
    assert refused.status_code == 400
    assert "The platform refused the login (login_required)" in text(refused)
    assert "01 23 45 67 89" not in text(refused)
    odd = _session().post(launch_url, data={"error": "Your account is locked, call 01 23"})
    assert odd.status_code == 400 and "(an error)" in text(odd) and "locked" not in text(odd)
    french = _session().post(launch_url, data=posted, headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert "La plateforme a refusé la connexion (login_required)" in text(french)


def test_a_new_window_link_opened_elsewhere_than_from_its_launchs_frame_asks_first(idhub):
    # Mallory launches the activity "in a frame" and sends her "open in a new window" link to a student
    mallory = _session()
    mallory.headers["Sec-Fetch-Dest"] = "iframe"
    _, in_frame, _ = lti_launch(idhub, LaunchSpec(user_id="9101", target=f"{idhub.url}/hub/join/lab"), mallory)
    assert in_frame.status_code == 200, text(in_frame)[-800:]
    link = idhub.url + html.unescape(re.search(r'id="mydocker-open-new-window" href="([^"]+)"', in_frame.text)[1])

    victim = idhub.login("student")
    asked = victim.get(link, allow_redirects=False)
    assert asked.status_code == 200 and "Change account?" in asked.text
    assert "student" in text(asked) and "9101@moodle" in text(asked)
    assert victim.get(f"{idhub.url}/hub/home", allow_redirects=False).status_code == 200  # still the student
    assert "9101@moodle" not in victim.get(f"{idhub.url}/hub/home").text
    forged = victim.post(link, allow_redirects=False)  # another site's form, without the page's _xsrf
    assert forged.status_code == 403
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', asked.text)[1]
    switched = victim.post(link, data={"_xsrf": xsrf}, allow_redirects=False)
    assert switched.status_code == 302 and switched.headers["Location"] == "/hub/join/lab"
    assert "9101@moodle" in victim.get(f"{idhub.url}/hub/home").text

    # where nobody is signed in, it asks too (the window the launch's frame opens goes on by itself: it gets
    # the launch's key from the frame, see the browser test of the frame); a wrong key is refused
    _, in_frame, _ = lti_launch(idhub, LaunchSpec(user_id="9102", target=f"{idhub.url}/hub/join/lab"), mallory)
    link = idhub.url + html.unescape(re.search(r'id="mydocker-open-new-window" href="([^"]+)"', in_frame.text)[1])
    stranger = _session()
    asked = stranger.get(link, allow_redirects=False)
    assert asked.status_code == 200 and "Sign in as 9102@moodle?" in text(asked)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', asked.text)[1]
    guessed = stranger.post(link, data={"_xsrf": xsrf, "opener_key": "guessed"}, allow_redirects=False)
    assert guessed.status_code == 400
    # another site's form, even with a valid XSRF token, is refused (the browser says where it comes from)
    forged = stranger.post(link, data={"_xsrf": xsrf}, headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False)
    assert forged.status_code == 403
    odd_key = stranger.post(link, data={"_xsrf": xsrf, "opener_key": "clé"}, allow_redirects=False)
    assert odd_key.status_code == 400
    answered = stranger.post(link, data={"_xsrf": xsrf}, allow_redirects=False)
    assert answered.status_code == 302 and answered.headers["Location"] == "/hub/join/lab"
