"""``POST /hub/api/mydocker/environments/<slug>/stop``: stop a class's servers of one environment in one request.

At the end of a lab, a teacher (an owner or editor of the environment, through their session or a token that
may stop all their servers, not one limited to some), an administrator or the session
scheduler stops every student's server of an environment at once. One request instead of one per server:
JupyterHub authenticates, parses and answers each request on its event loop, a third or more of what
stopping a class of 100 costs it (``bench/spawn_bench.py``: the "-class" kinds). The stops themselves are
JupyterHub's own (``stop_single_user``: the proxy's route, the spawner's stop, the tokens), all started
together.

Body (JSON, optional): ``{"users": [names]}`` to stop only those users' servers, ``{"include_privileged":
true}`` to stop teachers', admins' and the environment's owners', editors' and viewers' servers too (spared by
default, as at a session's end; then only those JupyterHub itself lets the caller stop). A start under way is
interrupted, as JupyterHub's DELETE does. Answer (200, or 202 when some are still stopping):
``{"stopped": [...], "stopping": [...], "failed": {user: reason}}``.
"""

from __future__ import annotations

import asyncio
import json

from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from tornado import web

from ..auth.roles import TEACHER_GROUP
from ..environments import get_catalog
from ..environments.model import Environment
from ..sessions.policy import is_privileged


def spared_by_default(env: Environment | None, user) -> bool:
    """Whether a class stop spares this user's server unless asked not to: whom sessions do not bind
    (teachers, admins, the environment's owners, editors and viewers); teachers and admins when the
    environment's file is gone."""
    groups = [group.name for group in user.groups]
    if env is None:
        return bool(user.admin) or TEACHER_GROUP in groups
    return is_privileged(env, user.name, groups, bool(user.admin), TEACHER_GROUP)


class StopEnvironmentServersHandler(APIHandler):
    @web.authenticated
    async def post(self, slug: str):
        body = self._body()
        only_users = body.get("users")
        if only_users is not None and not (
            isinstance(only_users, list) and all(isinstance(name, str) for name in only_users)
        ):
            raise web.HTTPError(400, '"users" must be a list of user names')
        include_privileged = body.get("include_privileged", False)
        if not isinstance(include_privileged, bool):
            raise web.HTTPError(400, '"include_privileged" must be true or false')
        # a token that may stop no server at all (a server's own token, a read-only one) stops nothing,
        # whoever it belongs to
        if "delete:servers" not in self.parsed_scopes:
            raise web.HTTPError(403, "This token may not stop servers")

        catalog = get_catalog(self.settings["mydocker_environments_dir"])
        await asyncio.to_thread(catalog.reload_if_changed)
        env = catalog.get(slug)
        current = self.current_user
        manages = (
            env is not None
            and current.kind == "user"
            and env.is_manager(current.name)
            and self._may_stop_all_own_servers(current.name)
        )
        # JupyterHub's own permission (all servers for an admin or the scheduler, one's own for a student)
        may_stop = self.get_scope_filter("delete:servers")

        running = self.db.query(orm.Spawner).filter(orm.Spawner.name == slug, orm.Spawner.server_id.isnot(None))
        if only_users is not None:
            running = running.join(orm.User).filter(orm.User.name.in_(only_users))
        chosen = []
        for orm_spawner in running:
            user = self.users[orm_spawner.user]
            spared = spared_by_default(env, user)
            if spared and not include_privileged:
                continue
            # an environment's managers stop its students; a teacher's or an admin's server only by
            # JupyterHub's permission
            if not (may_stop(orm_spawner, kind="server") or (manages and not spared)):
                continue  # not this request's to stop: not named in the answer either
            chosen.append(user)

        self.log.info("%s stops %d server(s) of %s", current.name, len(chosen), slug)
        outcomes = await asyncio.gather(*(self._stop(user, slug) for user in chosen), return_exceptions=True)
        answer = {"stopped": [], "stopping": [], "failed": {}}
        for user, outcome in zip(chosen, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self.log.error("Stopping %s/%s failed: %s", user.name, slug, outcome)
                answer["failed"][user.name] = str(outcome) or type(outcome).__name__
            else:
                answer[outcome].append(user.name)
        self.set_status(200 if not answer["stopping"] else 202)
        self.write(json.dumps(answer))

    async def _stop(self, user, slug: str) -> str:
        """Stop one server as JupyterHub's ``DELETE /users/:name/servers/:slug`` does: "stopped", or
        "stopping" when it takes longer than the hub's slow_stop_timeout or was stopping already."""
        spawner = user.spawners[slug]
        if spawner.pending == "stop":
            return "stopping"
        if spawner.pending == "spawn":
            # a start under way (a student who clicked just before the end): interrupted, as DELETE does
            self.log.warning("Interrupting the start of %s to stop the class", spawner._log_name)
            if spawner._spawn_future:
                spawner._spawn_future.cancel()
            await asyncio.sleep(1)
        elif spawner.pending:
            raise RuntimeError(f"the server is busy ({spawner.pending}); try again in a moment")
        stop_future = await self.stop_single_user(user, slug)
        return "stopped" if stop_future.done() else "stopping"

    def _may_stop_all_own_servers(self, username: str) -> bool:
        """Whether this request may stop every server of its user (their session, a full token), not only
        some: a token its owner limited to some servers (``delete:servers!server=...``) does not carry the
        environment manager's right to stop the class."""
        return self.has_scope(f"delete:servers!user={username}")

    def _body(self) -> dict:
        body = self.get_json_body() or {}  # JupyterHub's reader: 400 for a body that is not JSON
        if not isinstance(body, dict):
            raise web.HTTPError(400, "The body must be a JSON object")
        return body
