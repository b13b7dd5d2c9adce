"""The Jupyter server configuration that every image built on mydocker/minimal carries (images/minimal/).

Run here on the host's Python: the functions it defines, and what it writes where JupyterLab reads its
default settings. (The browser test of a French student's JupyterLab checks it inside a real container.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from traitlets.config import Config

CONFIG_FILE = Path(__file__).resolve().parent.parent / "images" / "minimal" / "jupyter_server_config.py"


@pytest.fixture
def lab_dir(tmp_path, monkeypatch):
    lab = tmp_path / "lab"
    monkeypatch.setenv("JUPYTERLAB_DIR", str(lab))
    monkeypatch.delenv("MYDOCKER_LANGUAGES", raising=False)
    return lab


def run_config(installed: list[str], locales: tuple[str, ...] = ()) -> dict:
    """Executes the file as Jupyter does, then again with what an image would have: ``installed`` language
    packs, generated ``locales``."""
    namespace = {"c": Config(), "__file__": str(CONFIG_FILE)}
    exec(compile(CONFIG_FILE.read_text(), str(CONFIG_FILE), "exec"), namespace)
    namespace["_installed_jupyterlab_languages"] = lambda: installed
    namespace["_generated_locales"] = lambda: list(locales)
    wanted = os.environ.get("MYDOCKER_LANGUAGES", "").split()
    namespace["_open_jupyterlab_in_the_browsers_language"](wanted)
    namespace["_speak_the_browsers_language"](wanted)
    return namespace


@pytest.mark.parametrize(
    "wanted, installed, expected",
    [
        pytest.param(["fr-FR", "fr", "en"], ["fr_FR"], "fr_FR", id="french-browser"),
        pytest.param(["fr-CA", "en"], ["fr_FR"], "fr_FR", id="same-language-other-country"),
        pytest.param(["pt-BR"], ["pt_BR", "pt_PT"], "pt_BR", id="exact-country-first"),
        pytest.param(["en-US", "fr"], ["fr_FR"], None, id="english-first"),
        pytest.param(["de", "fr"], ["fr_FR"], "fr_FR", id="first-with-a-pack"),
        pytest.param(["de"], ["fr_FR"], None, id="no-pack"),
        pytest.param(["fr"], ["fr_BE.utf8", "fr_CA.utf8", "fr_FR.utf8"], "fr_FR.utf8", id="language-own-country"),
        pytest.param(["fr-CA"], ["fr_CA.utf8", "fr_FR.utf8"], "fr_CA.utf8", id="locale-same-region"),
    ],
)
def test_the_first_browser_language_with_a_pack_is_chosen(lab_dir, wanted, installed, expected):
    assert run_config(installed)["_first_spoken"](wanted, installed) == expected


def test_a_french_start_makes_french_jupyterlab_s_default_and_an_english_one_removes_it(lab_dir, monkeypatch):
    overrides = lab_dir / "settings" / "overrides.d"
    overrides.mkdir(parents=True)
    monkeypatch.setenv("MYDOCKER_LANGUAGES", "fr-FR fr en")
    run_config(["fr_FR"])
    setting = json.loads((overrides / "mydocker-language.json").read_text())
    assert setting == {"@jupyterlab/translation-extension:plugin": {"locale": "fr_FR"}}
    monkeypatch.setenv("MYDOCKER_LANGUAGES", "en-US en")
    run_config(["fr_FR"])
    assert not (overrides / "mydocker-language.json").exists()


def test_programs_started_from_the_server_get_the_browsers_language_when_the_image_has_its_locale(lab_dir, monkeypatch):
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("MYDOCKER_LANGUAGES", "fr-FR fr en")
    run_config([], locales=("C.utf8",))  # mydocker/minimal: no locale but C
    assert os.environ["LANG"] == "C.UTF-8"
    run_config([], locales=("C.utf8", "en_US.utf8", "fr_FR.utf8"))  # the desktop image
    assert os.environ["LANG"] == "fr_FR.utf8"
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("MYDOCKER_LANGUAGES", "en-GB fr")
    run_config([], locales=("C.utf8", "en_US.utf8", "fr_FR.utf8"))
    assert os.environ["LANG"] == "C.UTF-8"


def test_an_image_without_the_writable_settings_directory_starts_unchanged(lab_dir, monkeypatch):
    monkeypatch.setenv("MYDOCKER_LANGUAGES", "fr-FR")
    run_config(["fr_FR"])
    assert not lab_dir.exists()
