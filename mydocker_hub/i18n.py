"""French and English for our pages, chosen from the browser's Accept-Language.

Templates call ``{{ _("English text") }}``. The language of the current request is kept in a context
variable set by :class:`LanguageTransform` (a tornado output transform, instantiated per request), so
JupyterHub's own handlers render our templates in the right language without being subclassed.
"""

from __future__ import annotations

import contextvars
import re

from jinja2.ext import Extension
from markupsafe import Markup
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
    "Details": "Détails",
    "These are the environments of %(name)s: what you start here runs as them.": (
        "Voici les environnements de %(name)s : ce que vous démarrez ici tourne à son nom."
    ),
    "Back to the administration": "Retour à l'administration",
    "Administration": "Administration",
    # states of an image build (badges of the images service)
    "queued": "en attente",
    "building": "en construction",
    "pushing": "en envoi",
    "succeeded": "réussie",
    "All the builds of %(image)s": "Toutes les constructions de %(image)s",
    "previous version: its file has errors": "version précédente : son fichier a des erreurs",
    # the class-sessions page: pre-pulls and capacity verdicts
    "image ready": "image présente",
    "pull failed": "échec du téléchargement",
    "pulling": "téléchargement en cours",
    "not computed yet": "pas encore calculée",
    "fits": "tient",
    "CPU %(needed)s needed, %(available)s available": "CPU : %(needed)s nécessaires, %(available)s disponibles",
    "memory %(needed)s GiB needed, %(available)s GiB available": (
        "mémoire : %(needed)s Gio nécessaires, %(available)s Gio disponibles"
    ),
    "node pool %(pool)s": "le groupe de nœuds %(pool)s",
    "the cluster": "le cluster",
    " (with %(others)s at the same time)": " (avec %(others)s en même temps)",
    "does not fit on %(where)s%(together)s: %(short)s. Add nodes, give the environment less CPU or memory "
    "(its reservations, or its limits where it sets no reservation) or split the class.": (
        "ne tient pas sur %(where)s%(together)s : %(short)s. Ajoutez des nœuds, donnez moins de CPU ou de "
        "mémoire à l'environnement (ses réservations, ou ses limites s'il n'a pas de réservation) ou divisez "
        "la classe."
    ),
    "failed": "échouée",
    "Each user's servers are their environments, each named after its environment, one row each. The first "
    "row of each user is the unnamed default server, which runs no environment here: open its Spawn Page to "
    "start one of the user's environments for them.": (
        "Les serveurs de chaque utilisateur sont ses environnements, qui leur donnent leur nom, une ligne "
        "chacun. La première ligne de chaque utilisateur est le serveur par défaut sans nom, qui ne lance aucun "
        "environnement ici : ouvrez sa Spawn Page pour démarrer l'un de ses environnements à sa place."
    ),
    "An environment of %(name)s.": "Un environnement de %(name)s.",
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
    "GPU": "GPU",
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
    "Sign out": "Se déconnecter",
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
    "stopped at the end, and its files lost (no home folder)": (
        "éteint à la fin, et ses fichiers perdus (pas de dossier personnel)"
    ),
    "this environment will be stopped and its files lost (it has no home folder): save your work elsewhere.": (
        "cet environnement sera éteint et ses fichiers perdus (il n'a pas de dossier personnel) : "
        "enregistrez votre travail ailleurs."
    ),
    "Opens at": "Ouverture :",
    "The class session ends at": "La séance se termine à",
    "this environment will be stopped, your files are kept.": (
        "cet environnement sera éteint, vos fichiers sont conservés."
    ),
    "Stops automatically in": "S'éteint automatiquement dans",
    "Extend": "Prolonger",
    "Class sessions": "Séances",
    "Images": "Images",
    # a server's start (progress page), then why it failed
    "Server requested": "Démarrage demandé",
    "Requesting %(title)s": "Demande de démarrage : %(title)s",
    "Many servers are starting: yours is next": "Beaucoup d'environnements démarrent : le vôtre est le prochain",
    "Many servers are starting: %(ahead)s more before yours": (
        "Beaucoup d'environnements démarrent : encore %(ahead)s avant le vôtre"
    ),
    "Waiting for Swarm to accept the environment": "En attente de l'acceptation de l'environnement par Swarm",
    "Environment accepted by Swarm": "Environnement accepté par Swarm",
    "Waiting for a server with free resources": "En attente d'un serveur avec des ressources libres",
    "Assigned to a server": "Attribué à un serveur",
    "Accepted by the server": "Accepté par le serveur",
    "Preparing: downloading the image %(image)s if needed": (
        "Préparation : téléchargement de l'image %(image)s si nécessaire"
    ),
    "Image ready, creating the container": "Image prête, création du conteneur",
    "Starting the container": "Démarrage du conteneur",
    "Container running, waiting for the environment to answer": (
        "Conteneur démarré, en attente de la réponse de l'environnement"
    ),
    "Swarm reports: %(state)s": "Swarm indique : %(state)s",
    "A network port was taken on the server; trying another one": (
        "Un port réseau était déjà pris sur le serveur ; essai avec un autre"
    ),
    "The environment stopped while starting; starting it again": (
        "L'environnement s'est arrêté pendant son démarrage ; il redémarre"
    ),
    "Environment ready": "Environnement prêt",
    "Your environment is ready: %(url)s": "Votre environnement est prêt : %(url)s",
    "The environment could not start: %(reason)s": "L'environnement n'a pas pu démarrer : %(reason)s",
    "Change account?": "Changer de compte ?",
    "an error": "une erreur",
    "The platform refused the login (%(code)s): open the activity again from Moodle.": (
        "La plateforme a refusé la connexion (%(code)s) : ouvrez à nouveau l'activité depuis Moodle."
    ),
    "LTI launch without id_token or state: open the activity again from Moodle.": (
        "Lancement LTI sans id_token ni state : ouvrez à nouveau l'activité depuis Moodle."
    ),
    "LTI launch refused (state): unknown, expired or already used. Open the activity again.": (
        "Lancement LTI refusé (state) : inconnu, expiré ou déjà utilisé. Ouvrez à nouveau l'activité."
    ),
    "LTI launch refused (state): it does not belong to this browser.": (
        "Lancement LTI refusé (state) : il n'appartient pas à ce navigateur."
    ),
    "LTI launch refused (state): this browser did not keep the hub's cookie. Allow cookies for this "
    "site, or open the activity again.": (
        "Lancement LTI refusé (state) : ce navigateur n'a pas gardé le cookie du hub. Autorisez les cookies pour "
        "ce site, ou ouvrez à nouveau l'activité."
    ),
    "Only teachers can add environments to a course.": (
        "Seuls les enseignants peuvent ajouter des environnements à un cours."
    ),
    'This selection has expired: choose "Select content" in Moodle again.': (
        "Cette sélection a expiré : choisissez à nouveau « Sélectionner un contenu » dans Moodle."
    ),
    "Pick at least one environment you may publish.": "Choisissez au moins un environnement que vous pouvez publier.",
    "This form can only be sent from the hub's own page.": (
        "Ce formulaire ne peut être envoyé que depuis la page du hub elle-même."
    ),
    "This launch leads to a hub administrator's account, and %(platform)s is not trusted with "
    "administrators' accounts: sign in on the hub's login page instead.": (
        "Ce lancement mène au compte d'un administrateur du hub, et %(platform)s n'est pas habilitée pour les "
        "comptes d'administrateurs : connectez-vous plutôt depuis la page de connexion du hub."
    ),
    "This link has expired or was already used: open the activity again from Moodle.": (
        "Ce lien a expiré ou a déjà servi : ouvrez à nouveau l'activité depuis Moodle."
    ),
    "This link belongs to another launch: open the activity again from Moodle.": (
        "Ce lien appartient à un autre lancement : ouvrez à nouveau l'activité depuis Moodle."
    ),
    "Signing you in…": "Connexion en cours…",
    "Sign in as %(launch_user)s?": "Se connecter en tant que %(launch_user)s ?",
    "This link from %(platform)s signs you in to the hub as %(launch_user)s.": (
        "Ce lien, qui vient de %(platform)s, vous connectera au hub en tant que %(launch_user)s."
    ),
    "You are signed in to the hub as %(signed_in)s. This link from %(platform)s signs you in as %(launch_user)s.": (
        "Vous êtes connecté au hub en tant que %(signed_in)s. Ce lien, qui vient de %(platform)s, vous connectera "
        "en tant que %(launch_user)s."
    ),
    "If you did not just open this activity yourself, close this page.": (
        "Si vous n'avez pas ouvert cette activité vous-même à l'instant, fermez cette page."
    ),
    "Continue as %(launch_user)s": "Continuer en tant que %(launch_user)s",
    "Stay signed in as %(signed_in)s": "Rester connecté en tant que %(signed_in)s",
    "Pick an environment in the catalogue to start it.": (
        "Choisissez un environnement dans le catalogue pour le démarrer."
    ),
    "There is no environment named %(name)r (any more). Pick one in the catalogue.": (
        "Il n'y a pas (ou plus) d'environnement nommé %(name)r. Choisissez-en un dans le catalogue."
    ),
    "You may not start the environment %(slug)r.": "Vous n'avez pas le droit de démarrer l'environnement %(slug)r.",
    "Already running: %(names)s (at most %(cap)s at once). Stop one of them to start this one.": (
        "Déjà en marche : %(names)s (%(cap)s au maximum en même temps). Arrêtez-en un pour démarrer celui-ci."
    ),
    "The start was cancelled.": "Le démarrage a été annulé.",
    "This environment cannot start while your environment %(other)s runs: their server names clash. "
    "Stop %(other)s, and tell the teacher of one of them to change its slug.": (
        "Cet environnement ne peut pas démarrer tant que votre environnement %(other)s est en marche : leurs noms "
        "de serveur se confondent. Arrêtez %(other)s, et signalez-le à l'enseignant de l'un des deux pour qu'il "
        "change son slug."
    ),
    "No free network port could be found on the server; please try again.": (
        "Aucun port réseau libre n'a été trouvé sur le serveur ; veuillez réessayer."
    ),
    "A network port was taken on the server; please try again.": (
        "Un port réseau était déjà pris sur le serveur ; veuillez réessayer."
    ),
    "The image %(image)s of this environment is not available on the server. "
    "Ask the environment's teacher to build or publish it (or fix its name in the environment file).": (
        "L'image %(image)s de cet environnement n'est pas disponible sur le serveur. Demandez à "
        "l'enseignant responsable de la construire ou de la publier (ou de corriger son nom dans le "
        "fichier de l'environnement)."
    ),
    "The environment ran out of memory while starting and was stopped. Ask its teacher to raise its memory limit.": (
        "L'environnement a manqué de mémoire au démarrage et a été arrêté. Demandez à son enseignant "
        "d'augmenter sa limite de mémoire."
    ),
    "A program this environment starts is not in its image, or cannot be run (exit code %(code)s). "
    "Ask its teacher to check the image and the command in the environment file.": (
        "Un programme que lance cet environnement n'est pas dans son image, ou ne peut pas s'exécuter (code de "
        "sortie %(code)s). Demandez à son enseignant de vérifier l'image et la commande du fichier "
        "d'environnement."
    ),
    "The environment's program stopped right after starting (exit code %(code)s). "
    "Its teacher can see the container logs; try again later or contact them.": (
        "Le programme de l'environnement s'est arrêté juste après son démarrage (code de sortie %(code)s). "
        "Son enseignant peut consulter les journaux du conteneur ; réessayez plus tard ou contactez-le."
    ),
    "The server refused to start the environment: %(error)s": (
        "Le serveur a refusé de démarrer l'environnement : %(error)s"
    ),
    "The environment stopped while starting (%(state)s): %(error)s": (
        "L'environnement s'est arrêté pendant son démarrage (%(state)s) : %(error)s"
    ),
    "No server currently has enough free CPU, memory or GPU for this environment. "
    "Stop another of your environments or try again later; teachers can lower its reservations.": (
        "Aucun serveur n'a actuellement assez de CPU, de mémoire ou de GPU libres pour cet environnement. "
        "Éteignez un autre de vos environnements ou réessayez plus tard ; les enseignants peuvent "
        "réduire ses réservations."
    ),
    "No server matches this environment's placement (node pool). "
    "Ask an administrator to add a node to that pool or fix the environment's node_pool.": (
        "Aucun serveur ne correspond au placement de cet environnement (node pool). Demandez à un "
        "administrateur d'ajouter un nœud à ce groupe ou corrigez le champ node_pool de l'environnement."
    ),
    "%(title)s opens at %(opens)s: come back then.": "%(title)s ouvre le %(opens)s : revenez à ce moment-là.",
    "%(title)s is only open during its class sessions; the next one starts at %(opens)s.": (
        "%(title)s n'est ouvert que pendant ses séances ; la prochaine commence le %(opens)s."
    ),
    "%(title)s is only open during its class sessions, and none is planned.": (
        "%(title)s n'est ouvert que pendant ses séances, et aucune n'est prévue."
    ),
    # JupyterHub's pages while a server starts or stops, or after it failed
    "Your environment is starting.": "Votre environnement démarre.",
    "You will be taken to it as soon as it is ready.": "Vous y serez conduit dès qu'il sera prêt.",
    "Event log": "Journal des événements",
    "Stopping…": "Arrêt…",
    "Remove": "Retirer",
    "Stop the class": "Arrêter la classe",
    "Stop the students' servers of %(title)s (%(count)s running)? Teachers' servers keep running; files "
    "outside the students' home folders are lost.": (
        "Arrêter les serveurs des étudiants de %(title)s (%(count)s en cours) ? Ceux des enseignants "
        "continuent ; les fichiers hors des dossiers personnels des étudiants sont perdus."
    ),
    "Stop the students' servers of %(title)s (%(count)s running)? Teachers' servers keep running; the "
    "students' files are lost (this environment has no home folder).": (
        "Arrêter les serveurs des étudiants de %(title)s (%(count)s en cours) ? Ceux des enseignants "
        "continuent ; les fichiers des étudiants sont perdus (cet environnement n'a pas de dossier personnel)."
    ),
    "Could not stop them:": "Impossible de les arrêter :",
    "Remove %(title)s from your list? Your files in its home folder are kept; you can start it again from "
    "the catalogue.": (
        "Retirer %(title)s de votre liste ? Les fichiers de son dossier personnel sont conservés ; vous pourrez "
        "le relancer depuis le catalogue."
    ),
    "Remove %(title)s from your list? You can start it again from the catalogue.": (
        "Retirer %(title)s de votre liste ? Vous pourrez le relancer depuis le catalogue."
    ),
    "Could not remove it:": "Impossible de le retirer :",
    "Stopped. Back to your environments…": "Éteint. Retour à vos environnements…",
    "Could not stop it: %(error)s": "Impossible de l'éteindre : %(error)s",
    "Your environment is stopping.": "Votre environnement s'éteint.",
    "You can start it again once it has stopped.": "Vous pourrez le redémarrer dès qu'il sera éteint.",
    "Refresh": "Actualiser",
    "The start failed": "Le démarrage a échoué",
    "Not running": "Éteint",
    "The last attempt to start %(name)s failed.": "La dernière tentative de démarrage de %(name)s a échoué.",
    "Would you like to try again?": "Voulez-vous réessayer ?",
    "%(name)s is not running.": "%(name)s n'est pas démarré.",
    "It starts again by itself; if nothing happens in a few seconds, click below.": (
        "Il redémarre tout seul ; si rien ne se passe dans quelques secondes, cliquez ci-dessous."
    ),
    "Would you like to start it?": "Voulez-vous le démarrer ?",
    "Start again": "Redémarrer",
    # for Moodle administrators (the names of Moodle's own fields, as its French interface shows them)
    "Register this hub in Moodle (LTI 1.3)": "Déclarer ce hub dans Moodle (LTI 1.3)",
    "In Moodle: Site administration › Plugins › Activity modules › External tool › Manage tools › "
    "configure a tool manually. Paste:": (
        "Dans Moodle : Administration du site › Plugins › Modules d'activité › Outil externe › Gérer les "
        "outils › configurer un outil manuellement. Collez :"
    ),
    "Tool URL": "URL de l'outil",
    "LTI version": "Version LTI",
    "Public key type": "Type de clé publique",
    "Public keyset": "Jeu de clés publiques",
    "Initiate login URL": "URL de connexion initiale",
    "Redirection URI(s)": "URI de redirection",
    "Supports Deep Linking (Content-Item Message)": "Prend en charge Deep Linking (Content-Item Message)",
    "Content Selection URL": "URL de sélection de contenu",
    "Default launch container": "Conteneur de lancement par défaut",
    "New window (Embed for a platform whose embedding the hub's administrator allowed: allow_embedding in "
    "lti_platforms)": (
        "Nouvelle fenêtre (Intégré pour une plateforme dont l'administrateur du hub a permis l'intégration : "
        "allow_embedding dans lti_platforms)"
    ),
    "Only administrators can see the LTI registration values.": (
        "Seuls les administrateurs peuvent voir les valeurs de déclaration LTI."
    ),
    "Share launcher's email with tool": "Partager l'adresse de courriel du lanceur avec l'outil",
    "Always (usernames are e-mail addresses)": "Toujours (les identifiants sont des adresses de courriel)",
    "Not needed": "Inutile",
    "Then copy Moodle's Platform ID, Client ID, Deployment ID, Authentication request URL and Public "
    "keyset URL into lti_platforms of the hub's configuration (docs/lti.md).": (
        "Copiez ensuite l'identifiant de plateforme, l'identifiant client, l'identifiant de déploiement, "
        "l'URL de demande d'authentification et l'URL du jeu de clés publiques de Moodle dans "
        "lti_platforms de la configuration du hub (docs/lti.md)."
    ),
    "A link to one environment, for any activity or nbgitpuller link:": (
        "Un lien vers un environnement, pour toute activité ou lien nbgitpuller :"
    ),
    "Registered platforms": "Plateformes déclarées",
    "The hub is registered": "Le hub est déclaré",
    "Platform: %(title)s, known to the hub as %(name)s.": "Plateforme : %(title)s, connue du hub sous le nom %(name)s.",
    "In Moodle, the new tool waits in Manage tools: activate it, and teachers can add it to their courses.": (
        "Dans Moodle, le nouvel outil attend dans Gérer les outils : activez-le, et les enseignants pourront "
        "l'ajouter à leurs cours."
    ),
    "The registration failed": "La déclaration a échoué",
    "Nothing was changed on the hub. Try again once this is fixed, or register the hub by hand with the values "
    "of the hub's page /hub/lti13/setup.": (
        "Rien n'a été modifié sur le hub. Réessayez une fois le problème corrigé, ou déclarez le hub à la main "
        "avec les valeurs de la page /hub/lti13/setup du hub."
    ),
    "Close": "Fermer",
    "There is no environment %(name)s here.": "Il n'y a pas d'environnement %(name)s ici.",
    # hub services: class sessions and images
    "Upcoming and running sessions of every environment file, the pre-pull of their image on each node, and "
    "whether the class fits on the nodes.": (
        "Séances à venir et en cours de chaque fichier d'environnement, le pré-téléchargement de leur image sur "
        "chaque nœud, et si la classe tient sur les nœuds."
    ),
    "blocked before start": "bloquée avant le début",
    "stop at end": "arrêt à la fin",
    "Environment": "Environnement",
    "When": "Quand",
    "Students": "Étudiants",
    "Pre-pull per node": "Pré-téléchargement par nœud",
    "Capacity": "Capacité",
    "ended: %(count)s stopped": "terminée : %(count)s éteints",
    "No session planned.": "Aucune séance prévue.",
    "from %(time)s": "à partir de %(time)s",
    "Source": "Source",
    "Public": "Publique",
    "Last build": "Dernière construction",
    "Build": "Construire",
    "Build ID": "N° de construction",
    "By": "Par",
    "Duration": "Durée",
    "Failing step": "Étape en échec",
    "Pinned reference (for environment files)": "Référence figée (pour les fichiers d'environnement)",
    "No build yet.": "Aucune construction pour l'instant.",
    "yes": "oui",
    "Environment images": "Images d'environnement",
    "admins": "les administrateurs",
    "Image %(name)s": "Image %(name)s",
    "Build %(build)s of %(image)s": "Construction %(build)s de %(image)s",
    "Error %(code)s": "Erreur %(code)s",
    "Upload an image": "Déposer une image",
    "Name (lowercase letters, digits, dashes)": "Nom (lettres minuscules, chiffres, tirets)",
    "Wrapper script (optional, saved as mydocker-wrapper.sh)": (
        "Script d'enveloppe (facultatif, enregistré sous mydocker-wrapper.sh)"
    ),
    "Context (optional .zip)": "Contexte (.zip facultatif)",
    "Usable by everyone": "Utilisable par tous",
    "Upload": "Déposer",
    "Test this build": "Tester cette construction",
    "Status:": "État :",
    "Pinned reference:": "Référence figée :",
    "Source: %(origin)s · owners: %(owners)s": "Source : %(origin)s · propriétaires : %(owners)s",
    "No image yet.": "Aucune image pour l'instant.",
    "Slug": "Identifiant",
    "Title": "Titre",
    "(generated by a test of a build)": "(créé par le test d'une construction)",
    "No environment %(slug)r is available to you.": "Aucun environnement %(slug)r ne vous est proposé.",
    "This link's path holds control characters; check the link you followed.": (
        "Le chemin de ce lien contient des caractères de contrôle ; vérifiez le lien suivi."
    ),
    "This environment has no maximum lifetime to extend.": "Cet environnement n'a pas de durée maximale à prolonger.",
    "Only teachers and administrators can see the environment files.": (
        "Seuls les enseignants et les administrateurs peuvent voir les fichiers d'environnements."
    ),
    "Invalid request": "Demande invalide",
    "Page not found": "Page introuvable",
    "Follow the start": "Suivre le démarrage",
    "CPU: no limit": "CPU : sans limite",
    "%(size)s of memory": "%(size)s de mémoire",
    "Last activity:": "Dernière activité :",
    "Demo accounts:": "Comptes de démonstration :",
    "Invalid username or password": "Identifiant ou mot de passe incorrect",
    "JupyterLab": "JupyterLab",
    "VS Code": "VS Code",
    "SSH": "SSH",
    "Desktop (noVNC)": "Bureau (noVNC)",
    "Custom": "Personnalisée",
    "Restarting…": "Redémarrage…",
    "Access refused": "Accès refusé",
    "Something went wrong": "Une erreur s'est produite",
    "Register in one step (Moodle 4.x: dynamic registration)": (
        "Déclarer en une étape (Moodle 4.x : inscription dynamique)"
    ),
    "In Moodle: Site administration › Plugins › Activity modules › External tool › Manage tools: paste this "
    "link into Tool URL and press Add LTI Advantage, then activate the new tool. The link registers one "
    "platform, until %(expires)s.": (
        "Dans Moodle : Administration du site › Plugins › Modules d'activité › Outil externe › Gérer les outils : "
        "collez ce lien dans URL de l'outil et cliquez sur Ajouter LTI Advantage, puis activez le nouvel outil. "
        "Le lien déclare une seule plateforme, jusqu'au %(expires)s."
    ),
    "Or register by hand": "Ou déclarer à la main",
    "None yet.": "Aucune pour l'instant.",
    "Name": "Nom",
    "Embedding": "Intégration",
    # image builder: error pages and the problems of mydocker-image.yaml
    "No image %(name)r you may see.": "Aucune image %(name)r ne vous est visible.",
    "Only the owners and editors of %(name)r (and admins) can build it: ask an owner to add you to its editors.": (
        "Seuls les propriétaires et éditeurs de %(name)r (et les administrateurs) peuvent la construire : "
        "demandez à un propriétaire de vous ajouter à ses éditeurs (editors)."
    ),
    "No build %(build)s of %(image)s.": "Aucune construction %(build)s de %(image)s.",
    "Only a succeeded build can be tested: build it again, or pick one that succeeded.": (
        "Seule une construction réussie peut être testée : relancez la construction, ou choisissez-en une réussie."
    ),
    "Image name: 1 to 40 lowercase letters, digits or dashes, like 'python-course'.": (
        "Nom de l'image : 1 à 40 lettres minuscules, chiffres ou tirets, comme 'python-course'."
    ),
    "%(name)r exists and is not yours: pick another name.": (
        "%(name)r existe déjà et ne vous appartient pas : choisissez un autre nom."
    ),
    "The Dockerfile is empty.": "Le Dockerfile est vide.",
    "The context is larger than %(size)s MB: leave data out of it.": (
        "Le contexte dépasse %(size)s Mo : laissez les données en dehors."
    ),
    "Upload refused, nothing was written: %(reason)s": "Dépôt refusé, rien n'a été écrit : %(reason)s",
    "Problems in the images' files": "Problèmes dans les fichiers des images",
    "Until they are fixed in the file, the faulty settings are ignored.": (
        "Tant qu'ils ne sont pas corrigés dans le fichier, les réglages fautifs sont ignorés."
    ),
    "This file is a symbolic link leading outside the image directory, which is not allowed: put the file "
    "itself in the image directory.": (
        "Ce fichier est un lien symbolique qui sort du dossier de l'image, ce qui est interdit : placez le "
        "fichier lui-même dans le dossier de l'image."
    ),
    "Not readable as YAML: %(error)s": "Illisible en YAML : %(error)s",
    "Expected settings, one 'name: value' per line: owners, editors, viewers, public, base_image.": (
        "Réglages attendus, un 'nom: valeur' par ligne : owners, editors, viewers, public, base_image."
    ),
    "Unknown setting %(key)r (a typo?): the settings are owners, editors, viewers, public, base_image.": (
        "Réglage inconnu %(key)r (une faute de frappe ?) : les réglages sont owners, editors, viewers, public, "
        "base_image."
    ),
    "%(key)s: expected a username or a list of usernames, like [jdupont@universite.example].": (
        "%(key)s : un identifiant ou une liste d'identifiants est attendu, comme [jdupont@universite.example]."
    ),
    "public: expected true or false.": "public : true ou false attendu.",
    "base_image: expected an image name, like mydocker/minimal:latest.": (
        "base_image : un nom d'image est attendu, comme mydocker/minimal:latest."
    ),
    "The password of this environment cannot be read any more (the hub's key changed). Restart the "
    "environment to get a new one.": (
        "Le mot de passe de cet environnement ne peut plus être lu (la clé du hub a changé). Redémarrez "
        "l'environnement pour en obtenir un nouveau."
    ),
    "All the network ports the hub may give servers are in use; please try again later.": (
        "Tous les ports réseau que le hub peut attribuer aux serveurs sont occupés ; réessayez plus tard."
    ),
    "The server's container engine does not answer; please try again in a minute.": (
        "Le moteur de conteneurs du serveur ne répond pas ; réessayez dans une minute."
    ),
}

TRANSLATIONS = {"fr": FRENCH}


#: a language tag as browsers send it (en, fr-FR, zh-Hant-TW); anything else in the header is ignored
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")


def browser_languages(accept_language: str | None, limit: int = 8) -> list[str]:
    """The well-formed language tags of an Accept-Language header, most wanted first (q-values honoured).

    At most ``limit`` of them; ``*`` and malformed or refused (``q=0``) entries are left out.
    """
    choices = []
    for position, item in enumerate((accept_language or "").split(",")):
        parts = item.strip().split(";")
        tag = parts[0].strip()
        quality = 1.0
        for parameter in parts[1:]:
            if parameter.strip().startswith("q="):
                try:
                    quality = float(parameter.strip()[2:])
                except ValueError:
                    quality = 0.0
        if _LANGUAGE_TAG.fullmatch(tag) and quality > 0:
            choices.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(choices)[:limit]]


def pick_language(accept_language: str | None) -> str:
    """The best supported language of an Accept-Language header (q-values honoured)."""
    for tag in browser_languages(accept_language, limit=64):
        language = tag.lower().split("-")[0]
        if language in SUPPORTED:
            return language
    return DEFAULT


def translate(text: str, **values) -> str:
    translated = TRANSLATIONS.get(current_language.get(), {}).get(text, text)
    return translated % values if values else translated


class Message:
    """A sentence for a user, put in words only when someone reads it, in the reader's language.

    Made where the language is unknown (a server's start, a Swarm task's failure) and read later by
    a request (the progress page, an error page), whose language :class:`LanguageTransform` recorded.
    ``str()`` gives the English sentence, for logs. A value may be another Message or a function of
    the language (e.g. ``environment.localized_title``).
    """

    def __init__(self, english: str, **values):
        self.english = english
        self.values = values

    def in_language(self, language: str) -> str:
        template = TRANSLATIONS.get(language, {}).get(self.english, self.english)
        if not self.values:
            return template
        return template % {name: _in_language(value, language) for name, value in self.values.items()}

    def localized(self) -> str:
        """In the language of the request being served (English outside a request)."""
        return self.in_language(current_language.get())

    def localized_html(self) -> Markup:
        """Like :meth:`localized`, as HTML: every part is escaped but values that are already ``Markup``."""
        language = current_language.get()
        template = Markup.escape(TRANSLATIONS.get(language, {}).get(self.english, self.english))
        if not self.values:
            return template
        values = {
            name: value if isinstance(value, Markup) else _in_language(value, language)
            for name, value in self.values.items()
        }
        return template % values  # Markup escapes each value it formats

    def __str__(self) -> str:
        return self.in_language("en")

    def __repr__(self) -> str:
        return f"Message({str(self)!r})"


def _in_language(value, language: str):
    if isinstance(value, Message):
        return value.in_language(language)
    if callable(value):
        return value(language)
    return value


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
