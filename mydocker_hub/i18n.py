"""French and English for our pages, chosen from the browser's Accept-Language.

Templates call ``{{ _("English text") }}``. The language of the current request is kept in a context
variable set by :class:`LanguageTransform` (a tornado output transform, instantiated per request), so
JupyterHub's own handlers render our templates in the right language without being subclassed.
"""

from __future__ import annotations

import contextvars

from jinja2.ext import Extension
from tornado.web import OutputTransform

SUPPORTED = ("en", "fr")
DEFAULT = "en"

current_language: contextvars.ContextVar[str] = contextvars.ContextVar("mydocker_language", default=DEFAULT)

FRENCH = {
    "Environments": "Environnements",
    "My environments": "Mes environnements",
    "Catalogue": "Catalogue",
    "Start": "Démarrer",
    "Open": "Ouvrir",
    "Stop": "Éteindre",
    "Restart": "Redémarrer",
    "Connection": "Connexion",
    "Running": "En marche",
    "Stopped": "Éteint",
    "Starting": "Démarrage",
    "Stopping": "Arrêt en cours",
    "Software": "Logiciels",
    "Resources": "Ressources",
    "Interfaces": "Interfaces",
    "Interface": "Interface",
    "CPU": "CPU",
    "memory": "mémoire",
    "GPU": "GPU",
    "no limit": "sans limite",
    "Home folder": "Dossier personnel",
    "none (nothing is kept)": "aucun (rien n'est conservé)",
    "kept for this environment": "conservé, propre à cet environnement",
    "kept, shared by all your environments": "conservé, partagé entre vos environnements",
    "Stops after %(minutes)s minutes without activity": "S'éteint après %(minutes)s minutes sans activité",
    "Pick an environment to start it. Your environments keep running until you stop them or they stay idle.": (
        "Choisissez un environnement pour le démarrer. Il reste allumé jusqu'à ce que vous l'éteigniez "
        "ou qu'il reste inactif."
    ),
    "No environment is available to you yet.": "Aucun environnement ne vous est encore proposé.",
    "You have no environment yet: pick one in the catalogue.": (
        "Vous n'avez encore aucun environnement : choisissez-en un dans le catalogue."
    ),
    "Username": "Identifiant",
    "Password": "Mot de passe",
    "Show": "Afficher",
    "Hide": "Masquer",
    "Copy": "Copier",
    "Copied": "Copié",
    "SSH access": "Accès SSH",
    "Port": "Port",
    "Web interface": "Interface web",
    "This environment is not running.": "Cet environnement n'est pas démarré.",
    "Environment files": "Fichiers d'environnements",
    "Valid environments": "Environnements valides",
    "Files with errors": "Fichiers en erreur",
    "All environment files are valid.": "Tous les fichiers d'environnement sont valides.",
    "Status": "Statut",
    "File": "Fichier",
    "Owners": "Propriétaires",
    "Image": "Image",
    "draft": "brouillon",
    "test": "test",
    "ready": "prêt",
    "archived": "archivé",
    "Last activity": "Dernière activité",
    "Open the catalogue": "Ouvrir le catalogue",
    "Links": "Liens",
    "Sign in": "Se connecter",
    "Demo accounts": "Comptes de démonstration",
    "Back to my environments": "Retour à mes environnements",
    "never": "jamais",
    "Admin": "Administration",
    "Teaching": "Enseignement",
    "Sign in with %(service)s": "Se connecter avec %(service)s",
    "With your institution's account (education and research federation).": (
        "Avec le compte de votre établissement (fédération Éducation-Recherche)."
    ),
    "From Moodle: open the activity in your course, you will be signed in automatically.": (
        "Depuis Moodle : ouvrez l'activité de votre cours, vous serez connecté automatiquement."
    ),
    "No way to sign in is configured on this hub yet: ask its administrators.": (
        "Aucun moyen de connexion n'est encore configuré sur ce hub : contactez ses administrateurs."
    ),
    "This environment opens in its own window.": "Cet environnement s'ouvre dans sa propre fenêtre.",
    "Open in a new window": "Ouvrir dans une nouvelle fenêtre",
    "Your browser keeps you signed in there. If nothing opens, allow pop-ups for this site.": (
        "Vous y resterez connecté. Si rien ne s'ouvre, autorisez les fenêtres pop-up pour ce site."
    ),
    "Add an environment to your course": "Ajouter un environnement à votre cours",
    "Students who open it join the group %(group)s; an environment's access.groups can name it.": (
        "Les étudiants qui l'ouvrent rejoignent le groupe %(group)s ; le champ access.groups d'un "
        "environnement peut le nommer."
    ),
    "You cannot publish any environment yet: it must be ready or in test, and visible to you.": (
        "Vous ne pouvez encore publier aucun environnement : il doit être prêt ou en test, et visible pour vous."
    ),
    "Add to the course": "Ajouter au cours",
    "Returning to Moodle…": "Retour vers Moodle…",
    "Continue": "Continuer",
    # sessions and timers
    "Class session until": "Séance jusqu'à",
    "stopped at the end (your files are kept)": "éteint à la fin (vos fichiers sont conservés)",
    "Opens at": "Ouvre le",
    "The class session ends at": "La séance se termine à",
    "this environment will be stopped, your files are kept.": (
        "cet environnement sera éteint, vos fichiers sont conservés."
    ),
    "Stops automatically in": "S'éteint automatiquement dans",
    "Extend": "Prolonger",
    "Class sessions": "Séances",
    "Images": "Images",
}

TRANSLATIONS = {"fr": FRENCH}


def pick_language(accept_language: str | None) -> str:
    """The best supported language of an Accept-Language header (q-values honoured)."""
    if not accept_language:
        return DEFAULT
    choices = []
    for position, item in enumerate(accept_language.split(",")):
        parts = item.strip().split(";")
        tag = parts[0].strip().lower().split("-")[0]
        quality = 1.0
        for parameter in parts[1:]:
            if parameter.strip().startswith("q="):
                try:
                    quality = float(parameter.strip()[2:])
                except ValueError:
                    quality = 0.0
        if tag in SUPPORTED and quality > 0:
            choices.append((-quality, position, tag))
    return min(choices)[2] if choices else DEFAULT


def translate(text: str, **values) -> str:
    translated = TRANSLATIONS.get(current_language.get(), {}).get(text, text)
    return translated % values if values else translated


class LanguageTransform(OutputTransform):
    """Per-request hook (tornado builds one per request) that records the browser's language."""

    def __init__(self, request):
        super().__init__(request)
        current_language.set(pick_language(request.headers.get("Accept-Language")))


class I18nExtension(Extension):
    """Jinja extension giving templates ``_()`` and ``ui_language()``."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals["_"] = translate
        environment.globals["ui_language"] = current_language.get
