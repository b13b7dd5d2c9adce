"""``python -m mydocker_hub.scheduler``: the class-session scheduler as a hub-managed service.

A thin traitlets Application around :class:`.core.Scheduler`: a ``PeriodicCallback`` runs a tick every
``--interval`` seconds, and a small web app (behind the hub's OAuth) shows teachers and admins the upcoming
sessions, the pre-pull state per node and the capacity verdicts, at ``/services/<name>/`` (HTML) and
``/services/<name>/api/sessions`` (JSON).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import os
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from markupsafe import Markup
from tornado import ioloop, web
from tornado.httpserver import HTTPServer
from traitlets import Float, Integer, Unicode, default
from traitlets.config import Application

from ..i18n import Message, current_language
from ..service_loop import run_until_stopped
from ..service_pages import LocalizedPage, page_shell, said
from ..spawner_settings import SwarmEnvironmentSettings
from ..swarm.client import AsyncDocker
from .core import HubClient, Scheduler
from .prepull import PrePuller

READ_SCOPE = "custom:mydocker-sessions:read"


def _spawner_default(setting: str):
    """The spawner's default for ``setting``: the scheduler's when the hub passes none."""
    return SwarmEnvironmentSettings.class_traits()[setting].default_value


#: a node's pre-pull state, in the reader's words
_PULL_STATES = {"pulled": Message("image ready"), "failed": Message("pull failed"), "pending": Message("pulling")}


def _pull_item(pull: dict) -> str:
    status = html.escape(pull["status"])
    shown = said(_PULL_STATES[pull["status"]]) if pull["status"] in _PULL_STATES else status
    reason = f" ({html.escape(pull['reason'])})" if pull.get("reason") else ""
    return f'<li class="prepull-{status}">{html.escape(pull["hostname"])}: {shown}{reason}</li>'


def _moment(iso: str) -> str:
    """A time the reader's browser shows in their time zone and language (the ISO form until it does)."""
    return f"<time class='local-time' datetime='{html.escape(iso)}'>{html.escape(iso)}</time>"


#: puts every <time class='local-time'> in the reader's time zone and language
_LOCAL_TIMES = (
    "<script>document.querySelectorAll('time.local-time').forEach((t)=>{t.textContent=new Date("
    "t.getAttribute('datetime')).toLocaleString(document.documentElement.lang,{dateStyle:'medium',"
    "timeStyle:'short'});});</script>"
)


def _flags(session: dict) -> str:
    flags = [
        (Message("blocked before start"), session["block_before_start"]),
        (Message("stop at end"), session["stop_at_end"]),
    ]
    return ", ".join(said(label) for label, on in flags if on)


class _Page(LocalizedPage, HubOAuthenticated, web.RequestHandler):
    hub_scopes = [READ_SCOPE]

    @property
    def scheduler(self) -> Scheduler:
        return self.settings["scheduler"]


class SessionsJson(_Page):
    @web.authenticated
    async def get(self):
        await asyncio.to_thread(self.scheduler.catalog.reload_if_changed)  # a session added since the last round
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.scheduler.report_for(self.current_user)))


class SessionsPage(_Page):
    @web.authenticated
    async def get(self):
        await asyncio.to_thread(self.scheduler.catalog.reload_if_changed)  # a session added since the last round
        report = self.scheduler.report()
        language = current_language.get()
        catalog = self.scheduler.catalog
        verdicts = {(v.environment, v.session.start.isoformat()): v for v in self.scheduler.verdicts}
        rows = []
        for s in report["sessions"]:
            pulls = "".join(_pull_item(p) for p in s["prepull"]) or (
                f"<li>{Message('from %(time)s', time=Markup(_moment(s['prepull_from']))).localized_html()}</li>"
            )
            env = catalog.get(s["environment"])
            verdict = verdicts.get((s["environment"], s["start"]))
            capacity = said(verdict.explanation()) if verdict else said(Message("not computed yet"))
            verdict_class = "text-success" if s["fits"] else ("text-danger fw-bold" if s["fits"] is False else "")
            stopped = Message("ended: %(count)s stopped", count=len(s["ended"]["stopped"])) if s["ended"] else None
            ended = f"<br><small>{said(stopped)}</small>" if stopped else ""
            rows.append(
                "<tr class='session' data-environment='{env}'><td><strong>{title}</strong><br><code>{env}</code></td>"
                "<td>{start}<br>→ {end}{ended}</td><td>{students}{groups}</td>"
                "<td>{flags}</td><td><ul class='list-unstyled mb-0'>{pulls}</ul></td>"
                "<td class='capacity {vc}'>{capacity}</td></tr>".format(
                    env=html.escape(s["environment"]),
                    title=html.escape(env.localized_title(language) if env else s["title"]),
                    start=_moment(s["start"]),
                    end=_moment(s["end"]),
                    ended=ended,
                    students=s["students"],
                    groups=("<br><small>" + html.escape(", ".join(s["groups"])) + "</small>") if s["groups"] else "",
                    flags=_flags(s),
                    pulls=pulls,
                    vc=verdict_class,
                    capacity=capacity,
                )
            )
        columns = (Message("Environment"), Message("When"), Message("Students"), None)
        columns += (Message("Pre-pull per node"), Message("Capacity"))
        headers = "".join(f"<th>{said(column) if column else ''}</th>" for column in columns)
        none = said(Message("No session planned."))
        explanation = Message(
            "Upcoming and running sessions of every environment file, the pre-pull of their image on each node, "
            "and whether the class fits on the nodes."
        )
        self.finish(
            page_shell(
                Message("Class sessions").localized(),
                f"<p class='text-muted'>{said(explanation)}</p>"
                "<div class='table-responsive'><table class='table table-sm sessions'>"
                f"<thead><tr>{headers}</tr></thead>"
                f"<tbody>{''.join(rows) or f'<tr><td colspan=6>{none}</td></tr>'}</tbody></table></div>" + _LOCAL_TIMES,
                username=self.current_user.get("name", ""),
            )
        )


class SchedulerApp(Application):
    name = "mydocker-scheduler"
    description = "Pre-pulls images before class sessions, stops sessions at their end, checks capacity."

    environments_dir = Unicode(
        os.environ.get("MYDOCKER_ENVIRONMENTS_DIR", "environments"),
        config=True,
        help="Directory of the environment files (default: $MYDOCKER_ENVIRONMENTS_DIR).",
    )

    state_file = Unicode(
        os.path.join(os.environ.get("MYDOCKER_DATA_DIR", "."), "scheduler-state.json"),
        config=True,
        help="JSON file keeping per-node pre-pull results and ended sessions (default: in $MYDOCKER_DATA_DIR).",
    )

    interval = Float(60, config=True, help="Seconds between two rounds. Default: 60.")
    prepull_lead = Integer(30 * 60, config=True, help="Seconds before a session's start to pre-pull. Default: 1800.")
    capacity_horizon_days = Integer(7, config=True, help="Days ahead for which capacity is checked. Default: 7.")
    service_label = Unicode(
        config=True,
        help="""Value of the org.mydocker.managed label (and name prefix) of pre-pull services: the spawner's
        ``service_prefix``, so that two hubs on one Swarm keep apart. Default: $MYDOCKER_SERVICE_PREFIX, else
        ``mydocker``. Example: ``mydocker-staging``.""",
    )
    node_pool_label = Unicode(
        config=True,
        help="""Node label naming a node's pool (pre-pull placement, capacity per pool): the spawner's
        ``node_pool_label``. Default: $MYDOCKER_NODE_POOL_LABEL, else ``org.mydocker.pool``.""",
    )
    api_url = Unicode(
        os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api"),
        config=True,
        help="The hub's API URL (default: $JUPYTERHUB_API_URL).",
    )

    @default("service_label")
    def _service_label_from_hub(self):
        return os.environ.get("MYDOCKER_SERVICE_PREFIX") or _spawner_default("service_prefix")

    @default("node_pool_label")
    def _node_pool_label_from_hub(self):
        return os.environ.get("MYDOCKER_NODE_POOL_LABEL") or _spawner_default("node_pool_label")

    aliases = {
        "environments-dir": "SchedulerApp.environments_dir",
        "state-file": "SchedulerApp.state_file",
        "interval": "SchedulerApp.interval",
        "prepull-lead": "SchedulerApp.prepull_lead",
        "capacity-horizon-days": "SchedulerApp.capacity_horizon_days",
        "service-label": "SchedulerApp.service_label",
        "node-pool-label": "SchedulerApp.node_pool_label",
        "api-url": "SchedulerApp.api_url",
    }

    def build_scheduler(self) -> Scheduler:
        docker = AsyncDocker.shared(4)
        return Scheduler(
            environments_dir=self.environments_dir,
            hub=HubClient(self.api_url, os.environ.get("JUPYTERHUB_API_TOKEN", "")),
            prepuller=PrePuller(docker, label=self.service_label, pool_label=self.node_pool_label),
            state_file=self.state_file,
            prepull_lead=dt.timedelta(seconds=self.prepull_lead),
            capacity_horizon=dt.timedelta(days=self.capacity_horizon_days),
            log=self.log,
        )

    def start(self):
        scheduler = self.build_scheduler()
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/scheduler/")
        app = web.Application(
            [
                (prefix, SessionsPage),
                (url_path_join(prefix, "api/sessions"), SessionsJson),
                (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
            ],
            scheduler=scheduler,
            cookie_secret=os.urandom(32),
        )
        service_url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
        HTTPServer(app).listen(service_url.port, service_url.hostname)

        async def tick():
            try:
                await scheduler.tick()
            except Exception:
                self.log.exception("Scheduler round failed; the next one retries")

        loop = ioloop.IOLoop.current()
        loop.add_callback(tick)
        ioloop.PeriodicCallback(tick, self.interval * 1000).start()
        self.log.info("Scheduler serving %s, every %ss", prefix, self.interval)
        run_until_stopped(self.log, "Scheduler")


main = SchedulerApp.launch_instance
