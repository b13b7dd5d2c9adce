# mydocker-hub image contract: the hub may let an LMS (Moodle) frame this server.
# MYDOCKER_FRAME_ANCESTORS: space-separated origins allowed to frame it (empty = same origin only).
# MYDOCKER_COOKIE_PARTITIONED=1: the server's cookies (login and _xsrf) must be
# "SameSite=None; Secure; Partitioned" (CHIPS), the only ones kept in the LMS's iframe by browsers that
# block third-party cookies.
import json
import os
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
# JupyterLab opens in the first of them it has a language pack for, as its default setting: a student who
# picks another language in Settings › Language keeps it (JupyterLab saves it in the home). English is
# JupyterLab's own language: it needs no pack and no setting.
def _installed_jupyterlab_languages() -> list[str]:
    from importlib.metadata import entry_points

    return sorted(entry_point.name for entry_point in entry_points(group="jupyterlab.languagepack"))


def _jupyterlab_language(wanted: list[str], installed: list[str]) -> str | None:
    for tag in wanted:
        parts = tag.replace("_", "-").split("-")
        primary = parts[0].lower()
        if primary == "en":
            return None
        same_language = [name for name in installed if name.split("_")[0].lower() == primary]
        exact = [name for name in same_language if name.lower() == "_".join(parts).lower()]
        if exact or same_language:
            return (exact or same_language)[0]
    return None


def _open_jupyterlab_in_the_browsers_language() -> None:
    app_dir = os.environ.get("JUPYTERLAB_DIR") or os.path.join(sys.prefix, "share", "jupyter", "lab")
    overrides = os.path.join(app_dir, "settings", "overrides.d")
    if not os.access(overrides, os.W_OK):
        return  # an image that did not prepare it (images/minimal/Dockerfile does): JupyterLab stays in English
    setting = os.path.join(overrides, "mydocker-language.json")
    wanted = os.environ.get("MYDOCKER_LANGUAGES", "").split()
    language = _jupyterlab_language(wanted, _installed_jupyterlab_languages()) if wanted else None
    if language:
        with open(setting, "w", encoding="utf-8") as f:
            json.dump({"@jupyterlab/translation-extension:plugin": {"locale": language}}, f)
    elif os.path.exists(setting):
        os.remove(setting)  # a container started again by another browser


_open_jupyterlab_in_the_browsers_language()
