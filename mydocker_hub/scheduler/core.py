"""The scheduler's core: one ``tick(now)`` does everything that is due. The clock is a parameter.

- **End** (first, so that it is on time): at the end of a session with ``stop_at_end``, the running
  servers of that session (its environment, users in its groups, not those ``is_privileged`` spares) are
  stopped through the hub's API; homes are kept. Students are warned beforehand on the hub's pages
  (computed from the same files).
- **Capacity**: a verdict per upcoming session (``capacity.verdicts``); misfits are logged for admins
  and shown on the service's page for teachers and admins.
- **Pre-pull**: from ``prepull_lead`` before a session until its end, the environment's image is put on
  every eligible node; failures are retried at the next tick, nodes that join are covered too. Pulls can
  take minutes: they run as a background task (``prepulling``) that the tick does not wait for.
Each job's errors are logged and leave the other jobs running; what failed is retried at the next tick.
State (per-node pulls, sessions already ended) is kept in a JSON file so a restart repeats nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
from pathlib import Path
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from ..auth.roles import TEACHER_GROUP
from ..environments import get_catalog
from ..environments.model import Environment, Session
from ..sessions.policy import availability, is_privileged, sessions_for
from .capacity import NodeCapacity, Verdict, verdicts
from .prepull import PrePuller

PAGINATED = "application/jupyterhub-pagination+json"


def session_key(env: Environment, session: Session) -> str:
    return f"{env.slug}@{session.start.isoformat()}"


class HubClient:
    """The few hub API calls the scheduler makes, with its service token."""

    def __init__(self, api_url: str, token: str):
        self.api_url = api_url.rstrip("/")
        self.token = token

    async def request(self, method: str, path: str, body=None, accept: str = "application/json"):
        request = HTTPRequest(
            f"{self.api_url}/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json", "Accept": accept},
            body=json.dumps(body) if body is not None else (None if method in ("GET", "DELETE") else ""),
            request_timeout=60,
            allow_nonstandard_methods=True,
        )
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        if response.code >= 400 and response.code != 404:
            raise RuntimeError(f"hub API {method} {path}: HTTP {response.code}")
        return json.loads(response.body) if response.body and response.code < 300 else None

    async def users_with_servers(self, page_size: int = 200) -> list[dict]:
        """Every user with a running server, following the hub's ``_pagination.next`` to the last page (a page
        may hold fewer than ``page_size`` users: the hub caps it at its ``api_page_max_limit``)."""
        users: list[dict] = []
        offset = 0
        while True:
            path = f"users?state=active&offset={offset}&limit={page_size}"
            page = await self.request("GET", path, accept=PAGINATED)
            users.extend(page["items"])
            following = page["_pagination"]["next"]
            if not following:
                return users
            offset = following["offset"]

    async def stop_servers(self, environment: str, users: list[str]) -> dict:
        """Stop these users' servers of an environment in one request (the hub's class stop).

        The hub's answer: ``{"stopped": [...], "stopping": [...], "failed": {user: reason}}``."""
        path = f"mydocker/environments/{quote(environment, safe='')}/stop"
        answer = await self.request("POST", path, body={"users": users})
        if answer is None:
            raise RuntimeError(f"hub API POST {path}: not found (is mydocker_hub's extra_handlers configured?)")
        return answer


class Scheduler:
    def __init__(
        self,
        *,
        environments_dir: str,
        hub: HubClient,
        prepuller: PrePuller,
        state_file: str,
        prepull_lead: dt.timedelta = dt.timedelta(minutes=30),
        capacity_horizon: dt.timedelta = dt.timedelta(days=7),
        end_grace: dt.timedelta = dt.timedelta(hours=1),
        log: logging.Logger | None = None,
    ):
        self.catalog = get_catalog(environments_dir)
        self.hub = hub
        self.prepuller = prepuller
        self.state_file = Path(state_file)
        self.prepull_lead = prepull_lead
        self.capacity_horizon = capacity_horizon
        self.end_grace = end_grace
        self.log = log or logging.getLogger(__name__)
        self.state = self._load_state()
        self.verdicts: list[Verdict] = []
        self.nodes: list[NodeCapacity] = []
        self.prepulling: asyncio.Task | None = None  # the pre-pulls of the last tick that started some
        self._lock = asyncio.Lock()

    # -- state ------------------------------------------------------------------------------------------
    def _load_state(self) -> dict:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            state = {}
        state.setdefault("prepull", {})  # image -> node id -> NodePull as JSON
        state.setdefault("ended", {})  # session key -> {"at": iso, "stopped": [user/server, ...]}
        return state

    def _save_state(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.state, indent=1, sort_keys=True))
        os.replace(temporary, self.state_file)

    # -- one round ----------------------------------------------------------------------------------------
    async def tick(self, now: dt.datetime | None = None) -> None:
        now = now or dt.datetime.now(dt.timezone.utc)
        async with self._lock:
            await asyncio.to_thread(self.catalog.reload_if_changed)
            environments = list(self.catalog.environments.values())
            await self._isolated("Stopping the servers of ended sessions", self._end_sessions(environments, now))
            await self._isolated("The capacity check", self._capacity(environments, now))
            self._save_state()
            if self.prepulling is None or self.prepulling.done():  # else the next tick sees what is left
                self.prepulling = asyncio.create_task(self._isolated("Pre-pulls", self._prepull(environments, now)))

    async def _isolated(self, job: str, work) -> None:
        try:
            await work
        except Exception:
            self.log.exception("%s failed; the scheduler's other jobs go on and the next round retries it", job)

    async def _capacity(self, environments: list[Environment], now: dt.datetime) -> None:
        nodes = await self.prepuller.docker.call("nodes")
        self.nodes = [
            NodeCapacity(
                node_id=n["ID"],
                hostname=n.get("Description", {}).get("Hostname", n["ID"][:12]),
                cpus=n.get("Description", {}).get("Resources", {}).get("NanoCPUs", 0) / 1e9,
                memory=n.get("Description", {}).get("Resources", {}).get("MemoryBytes", 0),
                pool=n.get("Spec", {}).get("Labels", {}).get(self.prepuller.pool_label, ""),
                ready=n.get("Status", {}).get("State") == "ready" and n.get("Spec", {}).get("Availability") == "active",
            )
            for n in nodes
        ]
        self.verdicts = verdicts(environments, self.nodes, now, self.capacity_horizon)
        for verdict in self.verdicts:
            if not verdict.fits:
                self.log.warning(
                    "Session of %s at %s %s", verdict.environment, verdict.session.start.isoformat(), verdict.message
                )

    async def _prepull(self, environments: list[Environment], now: dt.datetime) -> None:
        # (image, pool) -> (when the earliest of its open pre-pull windows opened, the sessions it is due for)
        due: dict[tuple[str, str | None], tuple[dt.datetime, list[str]]] = {}
        for env in environments:
            for session in env.sessions:
                opens = session.start - self.prepull_lead
                if opens <= now < session.end:
                    since, keys = due.get((env.image, env.resources.node_pool), (opens, []))
                    due[(env.image, env.resources.node_pool)] = (min(since, opens), [*keys, session_key(env, session)])
        for (image, pool), (since, keys) in sorted(due.items(), key=lambda item: item[0][0]):
            await self._isolated(f"Pre-pull of {image}", self._prepull_image(image, pool, keys, since, now))
        self._save_state()

    async def _prepull_image(
        self, image: str, pool: str | None, keys: list[str], since: dt.datetime, now: dt.datetime
    ) -> None:
        """Pull ``image`` on the nodes that have not pulled it since ``since`` (the opening of the pre-pull
        window of the sessions it is due for): a pull made for an earlier class does not count (its tag,
        :latest say, may have moved, or the node's images been pruned since)."""
        known = self.state["prepull"].setdefault(image, {})
        nodes = await self.prepuller.nodes(pool)

        def fresh(node_id: str) -> bool:
            pull = known.get(node_id, {})
            return pull.get("status") == "pulled" and pull.get("at", 0) >= since.timestamp()

        missing = {n["ID"] for n in nodes if not fresh(n["ID"])}
        if not missing:
            return
        self.log.info("Pre-pulling %s on %d node(s) for %s", image, len(missing), ", ".join(keys))
        for result in await self.prepuller.pull(image, pool, only_nodes=missing):
            known[result.node_id] = {**result.to_json(), "at": now.timestamp()}  # on the scheduler's clock
            if result.status != "pulled":
                self.log.warning("Pre-pull of %s on %s failed: %s", image, result.hostname, result.reason)

    async def _end_sessions(self, environments: list[Environment], now: dt.datetime) -> None:
        ending = [
            (env, session)
            for env in environments
            for session in env.sessions
            if session.stop_at_end
            and session.end <= now < session.end + self.end_grace
            and session_key(env, session) not in self.state["ended"]
        ]
        if not ending:
            return
        users = await self.hub.users_with_servers()
        for env, session in ending:
            leaving = []
            for user in users:
                server = (user.get("servers") or {}).get(env.slug)
                if not server:
                    continue
                groups = user.get("groups") or []
                if is_privileged(env, user["name"], groups, bool(user.get("admin")), TEACHER_GROUP):
                    continue  # not bound by sessions: teachers, admins, the environment's owners/editors/viewers
                if session not in sessions_for(env, groups):
                    continue  # another group's session goes on
                following = availability(env, now, groups=groups)
                if following.session is not None and following.session.start <= now:
                    continue  # the student is already in the next session of this environment
                leaving.append(user["name"])
            # one request for the whole class: the hub stops them together
            answer = await self.hub.stop_servers(env.slug, leaving) if leaving else {}
            if answer.get("failed"):
                # the session stays open: the next tick tries those again (the stopped ones are gone by then)
                self.log.error("Session %s: could not stop %s", session_key(env, session), answer["failed"])
                continue
            names = list(answer.get("stopped", [])) + list(answer.get("stopping", []))
            stopped = [f"{name}/{env.slug}" for name in sorted(names)]
            self.state["ended"][session_key(env, session)] = {"at": now.isoformat(), "stopped": stopped}
            self.log.info("Session %s ended: stopped %d server(s)", session_key(env, session), len(stopped))

    # -- what the page shows --------------------------------------------------------------------------------
    def report_for(self, user: dict, now: dt.datetime | None = None) -> dict:
        """:meth:`report` as ``user`` (a hub user model) may read it: who was stopped at a session's end is
        named to administrators and the environment's owners and editors; other teachers get the count."""
        report = self.report(now)
        for session in report["sessions"]:
            ended = session["ended"]
            if not ended:
                continue
            env = self.catalog.get(session["environment"])
            names_visible = bool(user.get("admin")) or (env is not None and env.is_manager(user.get("name", "")))
            session["ended"] = {"at": ended["at"], "count": len(ended["stopped"])}
            if names_visible:
                session["ended"]["stopped"] = list(ended["stopped"])
        return report

    def report(self, now: dt.datetime | None = None) -> dict:
        now = now or dt.datetime.now(dt.timezone.utc)
        sessions = []
        by_key = {(v.environment, v.session.start): v for v in self.verdicts}
        for env in sorted(self.catalog.environments.values(), key=lambda e: e.slug):
            for session in env.sessions:
                if session.end < now - self.end_grace:
                    continue
                verdict = by_key.get((env.slug, session.start))
                pulls = self.state["prepull"].get(env.image, {})
                opens = session.start - self.prepull_lead
                sessions.append(
                    {
                        "environment": env.slug,
                        "title": env.localized_title("en"),
                        "image": env.image,
                        "start": session.start.isoformat(),
                        "end": session.end.isoformat(),
                        "students": session.students,
                        "groups": list(session.groups),
                        "block_before_start": session.block_before_start,
                        "stop_at_end": session.stop_at_end,
                        "prepull_from": opens.isoformat(),
                        # only the pulls made for this session's window: one made for an earlier class says
                        # nothing about this one
                        "prepull": sorted(
                            (p for p in pulls.values() if p.get("at", 0) >= opens.timestamp()),
                            key=lambda p: p["hostname"],
                        ),
                        "capacity": verdict.message if verdict else "not computed yet",
                        "fits": verdict.fits if verdict else None,
                        "ended": self.state["ended"].get(session_key(env, session)),
                    }
                )
        sessions.sort(key=lambda s: s["start"])
        return {"now": now.isoformat(), "sessions": sessions}
