"""Hub pages of our own: join links, connection page, environment status (teachers and admins)."""

from __future__ import annotations

import asyncio
import posixpath
from urllib.parse import quote

from jupyterhub import orm
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from sqlalchemy import func
from tornado import web

from ..auth.roles import TEACHER_GROUP
from ..credentials import CredentialKeyError
from ..environments import get_catalog
from ..i18n import Message, current_language
from ..sessions.policy import closed_message
from ..start_failure import StartFailed
from .class_stop import StopEnvironmentServersHandler, spared_by_default
from .errors import PageError
from .views import card_view, format_bytes, render_link


def _is_teacher(user) -> bool:
    return bool(user.admin) or any(group.name == TEACHER_GROUP for group in user.groups)


class _EnvironmentPage(BaseHandler):
    @property
    def catalog(self):
        return get_catalog(self.settings["mydocker_environments_dir"])

    async def fresh_catalog(self):
        catalog = self.catalog
        await asyncio.to_thread(catalog.reload_if_changed)
        return catalog


class JoinHandler(_EnvironmentPage):
    """``/hub/join/<slug>[/user-redirect/<path>]``: start (or reuse) an environment and open it."""

    @web.authenticated
    async def get(self, slug: str, user_redirect: str | None = None):
        user = self.current_user
        catalog = await self.fresh_catalog()
        env = catalog.get(slug)
        groups = {group.name for group in user.groups}
        if env is None or not catalog.may_start(env, user.name, groups, bool(user.admin)):
            raise PageError(404, Message("No environment %(slug)r is available to you.", slug=slug))
        server_url = url_path_join(user.prefix, slug) + "/"
        next_url = url_path_join(server_url, self._path_inside_server(user_redirect)) if user_redirect else server_url
        if self.request.query:  # e.g. nbgitpuller's ?repo=...&urlpath=...
            next_url += "?" + self.request.query
        spawner = user.spawners.get(slug)
        if spawner is not None and spawner.ready:
            self.redirect(next_url)
            return
        available = user.spawner.availability(env)
        if not available.startable:
            raise StartFailed(closed_message(env, available), reason="closed", status_code=403)
        spawn_url = url_path_join(self.hub.base_url, "spawn", quote(user.name, safe=""), slug)
        self.redirect(f"{spawn_url}?next={quote(next_url, safe='')}")

    @staticmethod
    def _path_inside_server(user_redirect: str) -> str:
        """The link's path below the server (``..`` cannot leave it), quoted again for the Location header."""
        if any(ord(character) < 32 or ord(character) == 127 for character in user_redirect):
            raise PageError(400, Message("This link's path holds control characters; check the link you followed."))
        path = posixpath.normpath("/" + user_redirect).lstrip("/")
        if user_redirect.endswith("/") and path:
            path += "/"
        return quote(path, safe="/:@!$&'()*+,;=~")


class ConnectionHandler(_EnvironmentPage):
    """``/hub/environments/<user>/<server>``: interfaces, links, SSH command, credentials, stop/restart."""

    @web.authenticated
    async def get(self, username: str, server_name: str):
        current = self.current_user
        no_such = Message("There is no environment %(name)s here.", name=server_name)
        if current.name != username and not current.admin:
            raise PageError(404, no_such)
        owner = self.find_user(username)
        await self.fresh_catalog()  # a `git pull` since the last look shows on this page too
        # a stopped server is no longer loaded (owner.spawners): its page still says so and offers to start it
        if owner is None or server_name not in owner.orm_spawners:
            raise PageError(404, no_such)
        spawner = owner.spawners[server_name]
        env = spawner.profile
        lang = current_language.get()
        request_host = self.request.host
        credentials, credentials_unreadable = None, False
        if spawner.ready and current.name == username:
            try:
                credentials = spawner.credentials()
            except CredentialKeyError as error:
                self.log.warning("Credentials of %s cannot be decrypted: %s", spawner._log_name, error)
                credentials_unreadable = True
        ssh_host = spawner.node_host_for_users(request_host) if spawner.ready else ""
        published = spawner.published_ports() if spawner.ready else {}
        server_url = f"{self.request.protocol}://{request_host}{url_path_join(owner.prefix, server_name)}/"

        def host_of_port(port: int) -> str:
            if port in published:
                return f"{ssh_host}:{published[port]}"
            return f"{request_host}{url_path_join(owner.prefix, server_name)}/proxy/{port}"

        links = []
        ssh_commands = []
        if env and spawner.ready:
            for link in env.display.links:
                url = render_link(
                    link.url,
                    host_of_port=host_of_port,
                    password=credentials.password if credentials else "",
                    username=credentials.login if credentials else "",
                    server_url=server_url,
                )
                if url:
                    links.append((link.title, url))
            for port in env.published_ports:
                if port.port in published:
                    login = credentials.login if credentials else "USER"
                    command = (
                        f"ssh -p {published[port.port]} {login}@{ssh_host}"
                        if port.type == "ssh"
                        else f"{ssh_host}:{published[port.port]}"
                    )
                    ssh_commands.append((port, command))
        html = await self.render_template(
            "environment.html",
            owner=owner,
            spawner=spawner,
            env=env,
            card=card_view(env, lang, spawner) if env else None,
            credentials=credentials,
            credentials_unreadable=credentials_unreadable,
            show_username=bool(env and (env.display.show_username or env.published_ports)),
            show_password=bool(env and (env.display.show_password or env.published_ports)),
            links=links,
            ssh_commands=ssh_commands,
            server_url=url_path_join(owner.prefix, server_name) + "/",
            server_name=server_name,
            format_bytes=format_bytes,
            availability=owner.spawner.availability(env) if env else None,
            lifetime_deadline=spawner.lifetime_deadline if spawner.ready else None,
            can_extend=bool(spawner.ready and env and env.max_lifetime and current.name == username),
        )
        self.finish(html)


class ExtendHandler(_EnvironmentPage):
    """``POST /hub/environments/<user>/<server>/extend``: the owner's explicit click moves the lifetime deadline."""

    @web.authenticated
    async def post(self, username: str, server_name: str):
        current = self.current_user
        owner = self.find_user(username)
        if owner is None or current.name != username or server_name not in owner.spawners:
            raise web.HTTPError(404)
        spawner = owner.spawners[server_name]
        if not spawner.ready:
            raise PageError(409, Message("This environment is not running."))
        deadline = spawner.extend_lifetime()
        if deadline is None:
            raise PageError(400, Message("This environment has no maximum lifetime to extend."))
        spawner.orm_spawner.state = spawner.get_state()
        self.db.commit()
        self.log.info("%s extended %s/%s until %s", current.name, username, server_name, deadline)
        self.set_header("Content-Type", "application/json")
        self.finish({"lifetime_deadline": deadline})


class EnvironmentStatusHandler(_EnvironmentPage):
    """``/hub/environments``: every profile file, valid or not, for teachers and admins."""

    @web.authenticated
    async def get(self):
        user = self.current_user
        if not _is_teacher(user):
            raise PageError(403, Message("Only teachers and administrators can see the environment files."))
        catalog = await self.fresh_catalog()
        lang = current_language.get()
        environments = sorted(catalog.environments.values(), key=lambda env: env.slug)
        running = dict(
            self.db.query(orm.Spawner.name, func.count(orm.Spawner.id))
            .filter(orm.Spawner.server_id.isnot(None))
            .group_by(orm.Spawner.name)
        )
        may_stop_class = {env.slug for env in environments if user.admin or env.is_manager(user.name)}
        # what "Stop the class" would stop: the students' servers (teachers' and staff's are spared)
        students_running: dict[str, int] = {}
        for orm_spawner in self.db.query(orm.Spawner).filter(
            orm.Spawner.server_id.isnot(None), orm.Spawner.name.in_(may_stop_class)
        ):
            if not spared_by_default(catalog.get(orm_spawner.name), orm_spawner.user):
                students_running[orm_spawner.name] = students_running.get(orm_spawner.name, 0) + 1
        html = await self.render_template(
            "environments_status.html",
            environments=environments,
            titles={env.slug: env.localized_title(lang) for env in environments},
            errors=[str(error).removeprefix(str(catalog.directory) + "/") for error in catalog.errors],
            broken_files={error.file for error in catalog.errors},
            directory=self.settings["mydocker_environments_dir"],
            running=running,
            students_running=students_running,
        )
        self.finish(html)


def extra_handlers() -> list[tuple]:
    """Handlers for ``c.JupyterHub.extra_handlers`` (paths are relative to the hub's base URL)."""
    return [
        (r"/join/([a-z0-9][a-z0-9-]{0,29})(?:/user-redirect/(.*))?/?", JoinHandler),
        (r"/environments/?", EnvironmentStatusHandler),
        (r"/api/mydocker/environments/([a-z0-9][a-z0-9-]{0,29})/stop", StopEnvironmentServersHandler),
        (r"/environments/([^/]+)/([^/]+)/extend", ExtendHandler),
        (r"/environments/([^/]+)/([^/]+)/?", ConnectionHandler),
    ]
