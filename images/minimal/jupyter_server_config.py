# mydocker-hub image contract: the hub may let an LMS (Moodle) frame this server.
# MYDOCKER_FRAME_ANCESTORS: space-separated origins allowed to frame it (empty = same origin only).
# MYDOCKER_COOKIE_PARTITIONED=1: the server's cookies (login and _xsrf) must be
# "SameSite=None; Secure; Partitioned" (CHIPS), the only ones kept in the LMS's iframe by browsers that
# block third-party cookies.
import json
import os
import subprocess
import sys
from http.cookies import Morsel

_settings = {}
_origins = os.environ.get("MYDOCKER_FRAME_ANCESTORS", "").split()
if _origins:
    _settings["headers"] = {"Content-Security-Policy": "frame-ancestors 'self' " + " ".join(_origins)}
if os.environ.get("MYDOCKER_COOKIE_PARTITIONED") == "1":
    if "partitioned" not in Morsel._reserved:  # Python < 3.14 does not know the attribute yet
        Morsel._reserved["partitioned"] = "Partitioned"
        Morsel._flags.add("partitioned")
    _options = json.loads(os.environ.get("JUPYTERHUB_COOKIE_OPTIONS") or "{}")
    os.environ["JUPYTERHUB_COOKIE_OPTIONS"] = json.dumps({**_options, "Partitioned": True})
    _settings["xsrf_cookie_kwargs"] = {"samesite": "None", "secure": True, "partitioned": True}
# MYDOCKER_IDLE_TIMEOUT: seconds; idle kernels and terminals are shut down after it (frees memory while
# the hub's idle culler decides when to stop the whole server)
_idle = int(os.environ.get("MYDOCKER_IDLE_TIMEOUT", "0") or 0)
if _idle > 0:
    c.MappingKernelManager.cull_idle_timeout = _idle  # noqa: F821
    c.MappingKernelManager.cull_interval = 60  # noqa: F821
    c.TerminalManager.cull_inactive_timeout = _idle  # noqa: F821
    c.TerminalManager.cull_interval = 60  # noqa: F821
if _settings:
    c.ServerApp.tornado_settings = _settings  # noqa: F821 (c is provided by Jupyter)


# MYDOCKER_LANGUAGES: the languages of the browser that started the server, most wanted first ("fr-FR fr en").
# - JupyterLab opens in the first of them it has a language pack for, as its default setting: a student who
#   picks another language in Settings › Language keeps it (JupyterLab saves it in the home).
# - Programs started from here (terminals, kernels, the desktop of images/desktop) get LANG set to the first
#   of them the image has a generated locale for (`locale -a`; mydocker/minimal has none, so it stays C.UTF-8).
# English comes first, or none is available: nothing changes (English is JupyterLab's and the system's own).
def _language_and_region(name: str) -> tuple[str, str]:
    """("fr", "FR") for a browser tag fr-FR, a language pack fr_FR or a locale fr_FR.utf8."""
    parts = name.split(".")[0].replace("-", "_").split("_")
    return parts[0].lower(), parts[1].upper() if len(parts) > 1 else ""


def _first_spoken(wanted: list[str], available: list[str]) -> str | None:
    """The name in ``available`` for the first language of ``wanted`` it has (same region preferred)."""
    for tag in wanted:
        language, region = _language_and_region(tag)
        if language == "en":
            return None
        candidates = [name for name in available if _language_and_region(name)[0] == language]
        if candidates:
            # fr-CA: fr_CA if there, else the language's own country (fr_FR), else the first one
            return min(
                candidates,
                key=lambda name: (
                    _language_and_region(name)[1] != region,
                    _language_and_region(name)[1] != language.upper(),
                    name,
                ),
            )
    return None


def _installed_jupyterlab_languages() -> list[str]:
    from importlib.metadata import entry_points

    return sorted(entry_point.name for entry_point in entry_points(group="jupyterlab.languagepack"))


def _generated_locales() -> list[str]:
    try:
        listed = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(name for name in listed if name.lower().endswith((".utf8", ".utf-8")))


def _open_jupyterlab_in_the_browsers_language(wanted: list[str]) -> None:
    app_dir = os.environ.get("JUPYTERLAB_DIR") or os.path.join(sys.prefix, "share", "jupyter", "lab")
    overrides = os.path.join(app_dir, "settings", "overrides.d")
    if not os.access(overrides, os.W_OK):
        return  # an image that did not prepare it (images/minimal/Dockerfile does): JupyterLab stays in English
    setting = os.path.join(overrides, "mydocker-language.json")
    language = _first_spoken(wanted, _installed_jupyterlab_languages()) if wanted else None
    if language:
        with open(setting, "w", encoding="utf-8") as f:
            json.dump({"@jupyterlab/translation-extension:plugin": {"locale": language}}, f)
    elif os.path.exists(setting):
        os.remove(setting)  # a container started again by another browser


def _speak_the_browsers_language(wanted: list[str]) -> None:
    system_locale = _first_spoken(wanted, _generated_locales()) if wanted else None
    if system_locale:
        os.environ["LANG"] = system_locale


_browser_languages = os.environ.get("MYDOCKER_LANGUAGES", "").split()
_open_jupyterlab_in_the_browsers_language(_browser_languages)
_speak_the_browsers_language(_browser_languages)
