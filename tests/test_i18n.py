"""Every sentence a user may read has its French words, and is put in words in the reader's language."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from markupsafe import Markup

from mydocker_hub.i18n import FRENCH, Message, current_language
from mydocker_hub.spawner import _ready_event_in_readers_language
from mydocker_hub.start_failure import StartFailed
from mydocker_hub.swarm import diagnose

REPO = Path(__file__).resolve().parent.parent


def _messages_in_code() -> list[tuple[str, str]]:
    found = []
    for path in sorted((REPO / "mydocker_hub").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "Message"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.append((f"{path.relative_to(REPO)}:{node.lineno}", node.args[0].value))
    return found


def _sentences_in_templates() -> list[tuple[str, str]]:
    found = []
    for path in sorted((REPO / "templates").glob("*.html")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for text in re.findall(r'\b_\("((?:[^"\\]|\\.)*)"', line):
                found.append((f"{path.relative_to(REPO)}:{number}", text))
    return found


def test_every_message_of_the_code_and_the_templates_has_its_french_words():
    sentences = _messages_in_code() + _sentences_in_templates()
    assert len(sentences) > 80, "the scan finds the sentences"
    missing = [f"{where}: {text!r}" for where, text in sentences if text not in FRENCH]
    assert not missing, "no French for:\n" + "\n".join(missing)


def test_french_words_keep_the_values_of_the_english_sentence():
    names = re.compile(r"%\((\w+)\)[sr]")
    wrong = [
        english for english, french in FRENCH.items() if sorted(names.findall(english)) != sorted(names.findall(french))
    ]
    assert not wrong, wrong


@pytest.fixture
def french_reader():
    token = current_language.set("fr")
    yield
    current_language.reset(token)


def test_a_failure_reads_in_the_readers_language_and_logs_in_english(french_reader):
    failure = diagnose.diagnose_pending(
        {"Status": {"State": "pending", "Err": "no suitable node (insufficient resources on 1 node)"}}
    )
    error = StartFailed(failure.message, reason=failure.reason, log_message=failure.detail)
    assert error.jupyterhub_message.startswith("Aucun serveur n'a actuellement assez de CPU")
    assert error.jupyterhub_html_message.startswith("L&#39;environnement n&#39;a pas pu démarrer : Aucun serveur")
    assert "insufficient resources" in error.log_message and "Aucun" not in str(error)


def test_what_swarm_says_is_escaped_in_the_html_message(french_reader):
    hostile = Message("The server refused to start the environment: %(error)s", error='<img src=x onerror="alert(1)">')
    html = StartFailed(hostile, reason="rejected").jupyterhub_html_message
    assert "<img" not in html and "&lt;img" in html


def test_the_ready_event_links_to_the_server_in_the_readers_language(french_reader):
    event = _ready_event_in_readers_language(None, {"url": '/user/a/lab/?x="<b>"', "ready": True})
    assert event["message"] == 'Votre environnement est prêt : /user/a/lab/?x="<b>"'
    assert event["html_message"].startswith(
        'Votre environnement est prêt : <a href="/user/a/lab/?x=&#34;&lt;b&gt;&#34;">'
    )


def test_values_that_depend_on_the_language_are_asked_for_it():
    title = {"en": "Test lab", "fr": "Labo de test"}
    message = Message("Requesting %(title)s", title=title.__getitem__)
    assert message.in_language("fr") == "Demande de démarrage : Labo de test"
    assert str(message) == "Requesting Test lab"
    assert Message("Environment ready").localized_html() == Markup("Environment ready")
