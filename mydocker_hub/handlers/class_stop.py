"""``POST /hub/api/mydocker/environments/<slug>/stop``: stop a class's servers of one environment in one request.

At the end of a lab, a teacher (an owner or editor of the environment), an administrator or the session
scheduler stops every student's server of an environment at once. One request instead of one per server:
JupyterHub authenticates, parses and answers each request on its event loop, which is most of what
stopping a class of 100 costs it (``bench/spawn_bench.py``). The stops themselves are JupyterHub's own
(``stop_single_user``: the proxy's route, the spawner's stop, the tokens), all started together.

Body (JSON, optional): ``{"users": [names]}`` to stop only those users' servers, ``{"include_privileged":
true}`` to stop teachers', admins' and the environment's owners', editors' and viewers' servers too (spared by
default, as at a session's end). Answer: ``{"stopped": [...], "pending": [...], "failed": {user: reason}}``.
"""

from __future__ import annotations

import asyncio
import json

from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from tornado import web

from ..auth.roles import TEACHER_GROUP
from ..environments import get_catalog
from ..sessions.policy import is_privileged


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

        catalog = get_catalog(self.settings["mydocker_environments_dir"])
        await asyncio.to_thread(catalog.reload_if_changed)
        env = catalog.get(slug)
        current = self.current_user
        # an environment's managers stop their class; otherwise JupyterHub's own permission to stop a server
        manages = env is not None and current.kind == "user" and env.is_manager(current.name)
        if not manages and "delete:servers" not in self.parsed_scopes:
            raise web.HTTPError(403, f"Only the managers of {slug} and administrators may stop its servers")
        # otherwise the servers JupyterHub lets this request stop (all of them for an admin, one's own...)
        may_stop = None if manages else self.get_scope_filter("delete:servers")

        running = self.db.query(orm.Spawner).filter(orm.Spawner.name == slug, orm.Spawner.server_id.isnot(None))
        if only_users is not None:
            running = running.join(orm.User).filter(orm.User.name.in_(only_users))
        to_stop, pending, failed = [], [], {}
        for orm_spawner in running:
            if may_stop is not None and not may_stop(orm_spawner, kind="server"):
                continue  # not this request's to stop: not named in the answer either
            user = self.users[orm_spawner.user]
            if not include_privileged and env is not None:
                groups = [group.name for group in user.groups]
                if is_privileged(env, user.name, groups, bool(user.admin), TEACHER_GROUP):
                    continue
            spawner = user.spawners[slug]
            if spawner.pending:
                pending.append(user.name)  # starting or already stopping: JupyterHub's own flow finishes it
            elif spawner.ready:
                to_stop.append(user)

        self.log.info("%s stops %d server(s) of %s", current.name, len(to_stop), slug)
        outcomes = await asyncio.gather(
            *(self.stop_single_user(user, slug) for user in to_stop), return_exceptions=True
        )
        stopped = []
        for user, outcome in zip(to_stop, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self.log.error("Stopping %s/%s failed: %s", user.name, slug, outcome)
                failed[user.name] = str(outcome) or type(outcome).__name__
            elif outcome.done():
                stopped.append(user.name)
            else:
                pending.append(user.name)  # slower than slow_stop_timeout: still stopping
        self.set_status(200 if not pending else 202)
        self.write(json.dumps({"stopped": stopped, "pending": pending, "failed": failed}))

    def _body(self) -> dict:
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except ValueError:
            raise web.HTTPError(400, "The body must be JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "The body must be a JSON object")
        return body
