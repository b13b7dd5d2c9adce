"""Real browser (Debian's Chromium driven by Playwright): what a student and a teacher see and click.

Screenshots go to ``$MYDOCKER_SCREENSHOTS`` (default: the test's tmp dir) so that a person can look at them.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

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


def test_student_goes_from_login_to_a_running_jupyterlab(browser, hub, shots):
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
