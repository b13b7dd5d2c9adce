"""Real browser (Debian's Chromium driven by Playwright): what a student and a teacher see and click.

Screenshots go to ``$MYDOCKER_SCREENSHOTS`` (default: the test's tmp dir) so that a person can look at them.
"""

from __future__ import annotations

import time

import pytest
import requests
from playwright.sync_api import expect

from mydocker_hub.auth.roles import TEACHER_GROUP

from .hubprocess import TEST_IMAGE, Hub, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.slow]


def login(page, hub, user: str):
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", hub.password)
    page.click("#login_submit")
    page.wait_for_url(f"{hub.url}/hub/**")


def french_student(browser, hub):
    """A browser context of a French-speaking student, signed in; and its page."""
    hub.ensure_user("student")
    context = browser.new_context(locale="fr-FR", extra_http_headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    page = context.new_page()
    login(page, hub, "student")
    return context, page


def test_student_goes_from_login_to_a_running_jupyterlab(browser, hub, shots, docker_api, run_prefix):
    hub.ensure_user("student")
    if hub.server_model("student", "lab"):
        hub.stop_server("student", "lab")
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, hub, "student")
    page.goto(f"{hub.url}/hub/spawn")
    card = page.locator('.mydocker-card[data-environment="lab"]')
    expect(card).to_contain_text("Test lab")
    expect(card).to_contain_text("0.5 CPU")
    # a draft of a teacher is not in a student's catalogue
    expect(page.locator('.mydocker-card[data-environment="teachers-only"]')).to_have_count(0)
    page.screenshot(path=shots / "catalogue-en.png", full_page=True)
    card.locator(".mydocker-start").click()
    page.wait_for_url("**/user/student/lab/lab**", timeout=180_000)
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=120_000)
    expect(page.locator(".lm-MenuBar-itemLabel").first).to_have_text("File")
    page.screenshot(path=shots / "jupyterlab.png")
    # the home page lists it as running, with a connection page
    page.goto(f"{hub.url}/hub/home")
    row = page.locator('.home-server-row[data-server-name="lab"]')
    expect(row.locator(".mydocker-status")).to_have_attribute("data-status", "running")
    page.screenshot(path=shots / "home-en.png", full_page=True)
    expect(row.locator(".mydocker-open")).to_have_attribute("href", "/user/student/lab/")  # one click to it
    # on a phone the row's buttons are on the screen, not past its edge
    page.set_viewport_size({"width": 390, "height": 844})
    box = row.locator(".mydocker-stop").bounding_box()
    assert box and box["x"] + box["width"] <= 390, box
    page.screenshot(path=shots / "home-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    # its details page opens the interface and stops it
    row.locator(".mydocker-details").click()
    expect(page.locator(".mydocker-open-interface")).to_have_attribute("href", "/user/student/lab/")
    page.screenshot(path=shots / "connection-lab.png", full_page=True)
    page.locator(".mydocker-stop").click()
    page.wait_for_url(f"{hub.url}/hub/home")
    expect(page.locator('.home-server-row[data-server-name="lab"] .mydocker-status')).to_have_attribute(
        "data-status", "stopped"
    )
    assert hub.server_model("student", "lab") is None
    # a stopped environment can be removed from the list (as on JupyterHub's own home page), files kept
    assert "lab" in hub.api("GET", "users/student?include_stopped_servers=1").json()["servers"]
    page.on("dialog", lambda dialog: (dialog_texts.append(dialog.message), dialog.accept()))
    dialog_texts: list[str] = []
    page.locator('.home-server-row[data-server-name="lab"] .mydocker-remove').click()
    expect(page.locator('.home-server-row[data-server-name="lab"]')).to_have_count(0)
    assert dialog_texts == [
        "Remove Test lab from your list? Your files in its home folder are kept; "
        "you can start it again from the catalogue."
    ]
    page.reload()
    expect(page.locator('.home-server-row[data-server-name="lab"]')).to_have_count(0)
    stopped = hub.api("GET", "users/student?include_stopped_servers=1").json()["servers"]
    assert "lab" not in stopped
    assert docker_api.inspect_volume(f"{run_prefix}-home-student")  # the student's files are still there
    page.goto(f"{hub.url}/hub/spawn")
    expect(page.locator('.mydocker-card[data-environment="lab"] .mydocker-start')).to_be_visible()
    context.close()


def test_pages_speak_french_to_a_french_browser(browser, hub, shots):
    context, page = french_student(browser, hub)
    page.goto(f"{hub.url}/hub/spawn")
    expect(page.locator("h1")).to_have_text("Catalogue")
    card = page.locator('.mydocker-card[data-environment="lab"]')
    expect(card).to_contain_text("Labo de test")
    expect(card).to_contain_text("Dossier personnel")
    page.screenshot(path=shots / "catalogue-fr.png", full_page=True)
    page.goto(f"{hub.url}/hub/home")
    expect(page.locator("h1")).to_have_text("Mes environnements")
    expect(page.locator("#logout")).to_have_text("Se déconnecter")
    context.close()


def test_jupyterlab_opens_in_the_language_of_the_browser_that_started_it(browser, hub, shots):
    hub.ensure_user("student")
    if hub.server_model("student", "lab"):
        hub.stop_server("student", "lab")
    context, page = french_student(browser, hub)
    page.goto(f"{hub.url}/hub/spawn")
    page.locator('.mydocker-card[data-environment="lab"] .mydocker-start').click()
    page.wait_for_url("**/user/student/lab/lab**", timeout=180_000)
    expect(page.locator(".lm-MenuBar-itemLabel").first).to_have_text("Fichier", timeout=120_000)
    page.screenshot(path=shots / "jupyterlab-fr.png")
    context.close()
    hub.stop_server("student", "lab")


def test_a_french_student_follows_a_start_and_reads_why_it_failed_in_french(browser, hub, shots):
    context, page = french_student(browser, hub)
    # no node has 64 CPUs: Swarm keeps the task pending, the start fails after 15 s with that reason
    page.goto(f"{hub.url}/hub/spawn/student/too-big")  # JupyterHub shows the progress page after 10 s
    expect(page.locator(".mydocker-spawn-pending")).to_contain_text("Votre environnement démarre.", timeout=30_000)
    log = page.locator("#progress-log")
    expect(log).to_contain_text("Demande de démarrage : Needs more CPU than any node has", timeout=30_000)
    expect(log).to_contain_text("En attente d'un serveur avec des ressources libres", timeout=30_000)
    page.screenshot(path=shots / "progress-fr.png", full_page=True)
    expect(page.locator("#progress-message")).to_contain_text(
        "L'environnement n'a pas pu démarrer : Aucun serveur n'a actuellement assez de CPU", timeout=60_000
    )
    expect(log).to_contain_text("Démarrage demandé")
    expect(log).not_to_contain_text("Requesting")
    expect(log).not_to_contain_text("Server requested")
    page.screenshot(path=shots / "start-failed-fr.png", full_page=True)
    # the environment's page says so too, with the reason and a button to try again
    page.goto(f"{hub.url}/user/student/too-big/")
    expect(page.locator("h1")).to_have_text("Le démarrage a échoué")
    expect(page.locator(".mydocker-failure")).to_contain_text("Aucun serveur n'a actuellement assez de CPU")
    expect(page.locator("#start")).to_have_text("Redémarrer")
    page.screenshot(path=shots / "not-running-failed-fr.png", full_page=True)
    # a start that fails at once (a missing image) shows the reason on the start's own page
    page.goto(f"{hub.url}/hub/spawn/student/broken-image")
    expect(page.locator("h1")).to_have_text("Le démarrage a échoué", timeout=30_000)
    expect(page.locator(".mydocker-failure")).to_contain_text(
        "L'image mydocker/this-image-does-not-exist:latest de cet environnement n'est pas disponible sur le serveur."
    )
    page.screenshot(path=shots / "start-refused-fr.png", full_page=True)
    context.close()


def test_stop_on_the_progress_page_stops_that_environment(browser, hub):
    """JupyterHub's own button there stops the user's default server; ours stops the one that is starting."""
    hub.ensure_user("student")
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    login(page, hub, "student")
    page.goto(f"{hub.url}/hub/spawn/student/too-big")  # pending for 15 s: no node has 64 CPUs
    expect(page.locator("#progress-log")).to_contain_text("Waiting for a server with free resources", timeout=30_000)
    page.locator("#mydocker-stop-starting").click()
    expect(page.locator("#mydocker-stop-status")).to_contain_text("Stopped", timeout=30_000)
    page.wait_for_url("**/hub/home", timeout=30_000)  # then back to the student's environments
    row = page.locator('.home-server-row[data-server-name="too-big"]')
    expect(row.locator(".mydocker-status")).to_have_attribute("data-status", "stopped")
    expect(row.locator("strong")).to_have_text("Needs more CPU than any node has")  # its title, though stopped
    assert hub.server_model("student", "too-big") is None
    context.close()


def test_an_admin_starts_and_stops_a_students_environment_from_the_admin_panel(
    browser, hub, shots, docker_api, run_prefix
):
    """JupyterHub's admin panel as an administrator uses it: the buttons that could only fail here (Start
    Server on a user's default server, which runs no environment, and Start All) are not offered; the
    user's Spawn Page starts one of their environments; the environment's own row stops and starts it."""
    hub.ensure_user("student")
    if hub.server_model("student", "lab"):
        hub.stop_server("student", "lab")
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        login(page, hub, "admin")
        page.goto(f"{hub.url}/hub/admin")
        default_row = page.locator('tr[data-testid="user-row-student"]')
        expect(default_row.get_by_role("button", name="Spawn Page")).to_be_visible()
        expect(default_row.locator("button.start-button")).to_have_count(1)  # drawn by the panel, and hidden
        expect(default_row.locator("button.start-button")).to_be_hidden()
        expect(page.locator('[data-testid="start-all"]')).to_be_hidden()
        expect(page.locator('[data-testid="stop-all"]')).to_be_visible()
        page.screenshot(path=shots / "admin-panel.png", full_page=True)

        default_row.get_by_role("button", name="Spawn Page").click()
        page.wait_for_url(f"{hub.url}/hub/spawn/student")
        page.locator('.mydocker-card[data-environment="lab"] .mydocker-start').click()
        # once it runs, JupyterHub asks the administrator before letting them into a student's server
        expect(page.get_by_text("Authorize access")).to_be_visible(timeout=180_000)
        assert hub.server_model("student", "lab")["ready"]
        label = [f"org.mydocker.managed={run_prefix}", "org.mydocker.user=student", "org.mydocker.server=lab"]
        assert docker_api.services(filters={"label": label}), "the lab runs as the student's service"

        page.goto(f"{hub.url}/hub/admin")
        lab_row = page.locator('tr[data-testid="user-row-student-lab"]')
        lab_row.get_by_role("button", name="Stop Server").click()
        expect(lab_row.get_by_role("button", name="Start Server")).to_be_visible(timeout=30_000)
        assert hub.server_model("student", "lab") is None
        wait_for(lambda: not docker_api.services(filters={"label": label}), 30, message="the lab's service to go")
        # a stopped environment's own row starts it again
        lab_row.get_by_role("button", name="Start Server").click()
        expect(lab_row.get_by_role("button", name="Stop Server")).to_be_visible(timeout=120_000)
        assert hub.server_model("student", "lab")["ready"]
        expect(page.get_by_text("Failed to")).to_have_count(0)  # the panel's "Failed to start/stop server."
    finally:
        if hub.server_model("student", "lab"):
            hub.stop_server("student", "lab")
        context.close()


def test_teacher_sees_broken_files_and_drafts(browser, hub, shots):
    broken = hub.environments / "broken-by-teacher.yaml"
    broken.write_text("title: Was fine\nimage: x:1\n")
    try:
        hub.ensure_user("teacher", groups=("teacher",))
        context = browser.new_context(locale="en-US")
        page = context.new_page()
        login(page, hub, "teacher")
        page.goto(f"{hub.url}/hub/environments")  # the hub reads the good version
        expect(page.locator(".mydocker-valid")).to_contain_text("Was fine")
        time.sleep(1.1)  # a later modification time than the good version's
        broken.write_text("title: Broken\nimage: x:1\nresources: {cpu_limit: lots}\n")
        page.goto(f"{hub.url}/hub/environments")
        errors = page.locator(".mydocker-errors")
        expect(errors).to_contain_text("broken-by-teacher.yaml:3: resources.cpu_limit: 'lots' is not a CPU count")
        # the version still served says so where it is listed
        expect(page.locator(".mydocker-previous-version")).to_contain_text("previous version: its file has errors")
        page.screenshot(path=shots / "environments-status.png", full_page=True)
        page.goto(f"{hub.url}/hub/spawn")
        expect(page.locator('.mydocker-card[data-environment="teachers-only"]')).to_have_count(1)
        context.close()
        # a student may not see that page
        student = browser.new_context()
        page = student.new_page()
        login(page, hub, "student")
        response = page.goto(f"{hub.url}/hub/environments")
        assert response.status == 403
        student.close()
    finally:
        broken.unlink()


def test_a_teacher_stops_the_class_and_keeps_their_own_server(browser, shots, tmp_path, run_prefix, docker_api):
    """The end of a lab: an owner of the environment stops every student's server of it at once (the
    environment files page's "Stop the class" button), sparing the teachers' servers and other environments.
    A student calling the same endpoint can only stop their own server."""

    context = None
    environments = {
        "class.yaml": f"title: Class lab\nimage: {TEST_IMAGE}\nhome: {{type: none}}\naccess: {{owners: [teacher]}}\n",
        "other.yaml": f"title: Other lab\nimage: {TEST_IMAGE}\nhome: {{type: none}}\n",
        # no node has 64 CPUs: a start stays under way for 15 s before it fails
        "stuck.yaml": f"title: Stuck\nimage: {TEST_IMAGE}\nresources: {{cpu_limit: 64, cpu_reservation: 64}}\n",
    }
    class_hub = Hub(tmp_path, run_prefix, environments=environments)
    class_hub.start()
    try:
        class_hub.ensure_user("teacher", groups=(TEACHER_GROUP,))  # a demo account
        for student in ("s1", "s2", "s3"):
            class_hub.ensure_user(student)
        for user, server in [("s1", "class"), ("s2", "class"), ("s3", "class"), ("teacher", "class"), ("s1", "other")]:
            assert class_hub.api("POST", f"users/{user}/servers/{server}").status_code in (201, 202)
        for user, server in [("s1", "class"), ("s2", "class"), ("s3", "class"), ("teacher", "class"), ("s1", "other")]:
            wait_for(
                lambda u=user, s=server: (class_hub.server_model(u, s) or {}).get("ready"),
                180,
                message=f"{user}/{server} ready",
            )

        def running(server: str) -> set[str]:
            return {
                model["name"]
                for model in class_hub.api("GET", "users").json()
                if model.get("servers", {}).get(server, {}).get("ready")
            }

        stop_url = f"{class_hub.url}/hub/api/mydocker/environments/class/stop"
        # a student: their own server only, whatever they ask
        student = requests.post(
            stop_url,
            headers={"Authorization": f"token {class_hub.user_token('s3')}"},
            json={"users": ["s1", "s2", "s3"]},
            timeout=60,
        )
        assert student.status_code == 200, student.text
        assert student.json()["stopped"] == ["s3"]
        assert running("class") == {"s1", "s2", "teacher"}
        # a token that may not stop servers (read-only) stops nothing, even the owner's
        read_only = class_hub.api("POST", "users/teacher/tokens", json={"scopes": ["read:users!user=teacher"]})
        refused = requests.post(
            stop_url, headers={"Authorization": f"token {read_only.json()['token']}"}, json={}, timeout=60
        )
        assert refused.status_code == 403 and refused.json()["message"] == "This token may not stop servers"
        # a token the owner limited to one of their own servers does not carry the right to stop the class
        limited = class_hub.api(
            "POST", "users/teacher/tokens", json={"scopes": ["delete:servers!server=teacher/class"]}
        ).json()["token"]
        narrow = requests.post(stop_url, headers={"Authorization": f"token {limited}"}, json={}, timeout=60)
        assert narrow.status_code == 200 and narrow.json()["stopped"] == [], narrow.text
        assert running("class") == {"s1", "s2", "teacher"}

        # the owner, on the environment files page: the count of running servers, and "Stop the class"
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        login(page, class_hub, "teacher")
        page.goto(f"{class_hub.url}/hub/environments")
        row = page.locator("tr", has=page.locator("td", has_text="Class lab"))
        expect(row.locator(".mydocker-running")).to_have_attribute("data-count", "3")
        page.screenshot(path=shots / "environments-running.png", full_page=True)
        page.once("dialog", lambda dialog: dialog.accept())
        row.locator(".mydocker-stop-class").click()
        expect(row.locator(".mydocker-running")).to_have_attribute("data-count", "1", timeout=60_000)  # reloaded
        expect(row.locator(".mydocker-stop-class")).to_have_count(0)  # no student's server left to stop
        assert running("class") == {"teacher"}  # the teacher's own server keeps running
        assert running("other") == {"s1"}  # and another environment's servers too
        labels = [f"org.mydocker.managed={run_prefix}", "org.mydocker.server=class"]

        def users_with_a_service():
            return {s["Spec"]["Labels"]["org.mydocker.user"] for s in docker_api.services(filters={"label": labels})}

        # the engine removes the students' services once the stops have settled (a second later)
        wait_for(lambda: users_with_a_service() == {"teacher"}, 30, message="only the teacher's service to be left")
        # the servers are stopped as JupyterHub stops them: a new start works at once
        class_hub.spawn("s1", "class")

        # without XSRF, a cookie cannot be used to stop a class (another site's form)
        teacher = class_hub.login("teacher")
        xsrf = teacher.cookies.get("_xsrf")
        forged = teacher.post(stop_url, json={}, timeout=60)
        assert forged.status_code == 403
        assert running("class") == {"teacher", "s1"}
        # a malformed request says what is wrong
        bad = teacher.post(stop_url, headers={"X-XSRFToken": xsrf}, json={"users": "s1"}, timeout=60)
        assert bad.status_code == 400 and bad.json()["message"] == '"users" must be a list of user names'
        # owning one environment gives nothing over another one
        other_url = f"{class_hub.url}/hub/api/mydocker/environments/other/stop"
        other = teacher.post(other_url, headers={"X-XSRFToken": xsrf}, json={}, timeout=60)
        assert other.status_code == 200 and other.json()["stopped"] == []
        assert running("other") == {"s1"}
        # a start under way when the class is stopped is interrupted, as JupyterHub's DELETE does
        assert class_hub.api("POST", "users/s2/servers/stuck").status_code == 202
        time.sleep(1)
        interrupted = class_hub.api("POST", "mydocker/environments/stuck/stop", json={})
        assert interrupted.status_code == 200 and interrupted.json()["stopped"] == ["s2"], interrupted.text
        assert class_hub.server_model("s2", "stuck") is None
        wait_for(
            lambda: (
                not docker_api.services(
                    filters={"label": [f"org.mydocker.managed={run_prefix}", "org.mydocker.server=stuck"]}
                )
            ),
            30,
            message="the interrupted start's service removed",
        )
    finally:
        if context:
            context.close()
        class_hub.stop()
