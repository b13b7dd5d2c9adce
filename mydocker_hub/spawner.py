"""SwarmEnvironmentSpawner: one Swarm service per (user, environment), as a JupyterHub named server.

The named server's name is the environment's slug. The spawner ties the layers together: it reads the
profile from the shared catalogue, asks :mod:`mydocker_hub.swarm.specs` for the service spec, creates it
through the shared :class:`~mydocker_hub.swarm.client.AsyncDocker` pool, then follows the task through the
shared :class:`~mydocker_hub.swarm.watcher.SwarmWatcher` (no per-spawner polling of Docker), reporting real
progress and failing fast with a reason when Swarm says the start cannot succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable

from docker.errors import APIError
from dockerspawner import SwarmSpawner
from jupyterhub import orm
from jupyterhub.spawner import SpawnException
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError
from traitlets import default

from . import metrics
from .auth.roles import TEACHER_GROUP
from .credentials import CredentialKeyError, Credentials, CredentialStore, generate_password
from .environments import Environment, get_catalog
from .handlers.stub import ConnectionStub
from .i18n import Message, browser_languages
from .sessions.policy import Availability, availability, closed_message, is_privileged
from .spawner_settings import SwarmEnvironmentSettings
from .start_failure import StartFailed
from .swarm import diagnose, names, readiness
from .swarm.client import AsyncDocker
from .swarm.ports import PortRangeExhausted, parse_port_range, pick_free_ports
from .swarm.specs import (
    MANAGED_LABEL,
    SECRET_SERVICE_LABEL,
    SERVER_LABEL,
    ServiceRequest,
    build_service_spec,
    home_volume_options,
    needs_password_file,
    reads_hub_token,
)
from .swarm.start_slots import StartSlots
from .swarm.watcher import SwarmWatcher, secret_ids_of


async def _no_secret() -> dict:
    """Stands for a secret a start does not need."""
    return {"ID": None, "Name": None}


class _PortConflict(Exception):
    """Swarm cannot place or start the task: one of its host ports is taken on the node."""

    def __init__(self, detail: str, ports: list[int]):
        super().__init__(detail)
        self.ports = ports


class SwarmEnvironmentSpawner(SwarmEnvironmentSettings, SwarmSpawner):
    """Spawn the environment named by the server name, as a Swarm service (settings: the parent class)."""

    @default("port")
    def _default_port(self):
        return 8888

    @default("start_timeout")
    def _default_start_timeout(self):
        # a cold image pull on a busy node takes minutes; failures are detected long before this
        return 600

    @default("http_timeout")
    def _default_http_timeout(self):
        return 300

    @default("name_template")
    def _default_name_template(self):
        return "{servicename}"

    # -- shared machinery ---------------------------------------------------------------------------
    _reserved_ports: set[int] = set()  # allocated by starts whose service is not yet listed
    _suspect_ports: dict[int, float] = {}  # found taken on a node by something outside Swarm: port -> when
    #: how long a port found taken by something outside Swarm is left alone
    SUSPECT_PORT_SECONDS = 600.0
    _start_slots = StartSlots()
    _stops = 0
    # clean-ups of cancelled starts, running in the background, by service name: the next start of that server
    # waits for its own (JupyterHub makes a new spawner object after a stop: this cannot be kept on the spawner)
    _cleanups: dict[str, asyncio.Task] = {}
    _creating: asyncio.Future | None = None  # this server's create_service call while it runs
    _warned_no_new_privileges = False

    @property
    def async_docker(self) -> AsyncDocker:
        return AsyncDocker.shared(self.docker_workers, dict(self.client_kwargs or {}))

    @property
    def watcher(self) -> SwarmWatcher:
        watcher = SwarmWatcher.shared(
            self.async_docker,
            self.service_prefix,
            interval=self.watch_interval,
            fast_interval=self.watch_fast_interval,
            follow_interval=self.watch_follow_interval,
            queue_length=lambda: SwarmEnvironmentSpawner._start_slots.waiting,
            log=self.log,
            secret_sweep_interval=self.sweep_interval,
            removal_settle_time=self.removal_settle_time,
        )
        if watcher.stopped_servers is None:  # once: every spawner of the hub shares its one database session
            watcher.stopped_servers = _servers_stopped_in(self.user.db)
        return watcher

    def docker(self, method, *args, **kwargs):
        """Route DockerSpawner's own calls through the shared pool too."""
        return self.async_docker.call(method, *args, **kwargs)

    @property
    def catalog(self):
        return get_catalog(self.environments_dir, log=self.log)

    def _render_templates(self, text, ns=None):
        if text == "{servicename}":
            return names.service_name(self.service_prefix, self.user.name, self.name or "default")
        return super()._render_templates(text, ns)

    @property
    def profile(self) -> Environment | None:
        """The environment profile this server runs (``Spawner.environment`` is JupyterHub's env-var dict)."""
        return self.catalog.get(self.name) if self.name else None

    def _user_groups(self) -> set[str]:
        return {group.name for group in self.user.groups}

    # -- state ------------------------------------------------------------------------------------
    _credentials_token = ""

    #: epoch seconds at which the environment's max_lifetime stops this server (None: no limit); moved only
    #: by an explicit "extend" (``extend_lifetime``), read by the culler from the server's state
    lifetime_deadline: float | None = None

    #: container port -> node port of this server's SSH/TCP ports at its last start: a restart asks for the
    #: same ones again, so that a student's saved ``ssh -p ...`` command keeps working
    _last_node_ports: dict[int, int] | None = None

    def load_state(self, state):
        super().load_state(state)
        self._credentials_token = state.get("credentials", "")
        self.lifetime_deadline = state.get("lifetime_deadline")
        self._last_node_ports = {int(k): int(v) for k, v in (state.get("node_ports") or {}).items()}

    def get_state(self):
        state = super().get_state()
        if self._credentials_token:
            state["credentials"] = self._credentials_token
        if self.lifetime_deadline:
            state["lifetime_deadline"] = self.lifetime_deadline
        if self._last_node_ports:
            state["node_ports"] = {str(k): v for k, v in self._last_node_ports.items()}
        return state

    def clear_state(self):
        """Forget the service on stop, but keep the (encrypted) login of this user and environment, and the
        node ports it had. JupyterHub also calls this when a server stopped without ``stop()`` (its service
        removed by hand, its task failed): the old service ID goes too (DockerSpawner keeps it), or a later
        start cut short by a hub crash would pass for a running server at the restart."""
        token, node_ports = self._credentials_token, self._last_node_ports
        super().clear_state()
        self.object_id = ""
        self._credentials_token = token
        self._last_node_ports = node_ports
        self.lifetime_deadline = None

    def extend_lifetime(self, now: float | None = None) -> float | None:
        """Push the lifetime deadline to ``now + max_lifetime`` (the "extend" button); the new deadline."""
        env = self.profile
        if env is None or not env.max_lifetime:
            return None
        self.lifetime_deadline = (time.time() if now is None else now) + env.max_lifetime
        return self.lifetime_deadline

    _credential_stores: dict[str, CredentialStore] = {}

    def _credential_store(self) -> CredentialStore:
        """One store per key file for the process (keys are read once, not at every page view)."""
        stores = SwarmEnvironmentSpawner._credential_stores
        if self.credentials_key_file not in stores:
            stores[self.credentials_key_file] = CredentialStore.from_environment(self.credentials_key_file)
        return stores[self.credentials_key_file]

    def credentials(self) -> Credentials | None:
        """This server's login and password (decrypted on demand, never logged)."""
        if not self._credentials_token:
            return None
        return self._credential_store().decrypt(self._credentials_token)

    def _ensure_credentials(self) -> Credentials:
        try:
            existing = self.credentials()
        except CredentialKeyError as e:
            self.log.warning("Regenerating credentials of %s: %s", self._log_name, e)
            existing = None
        if existing:
            return existing
        created = Credentials(names.login_name(self.user.name), generate_password())
        self._credentials_token = self._credential_store().encrypt(created)
        return created

    # -- options form: the catalogue on the default server's spawn page ------------------------------
    @default("options_form")
    def _default_options_form(self):
        return self._catalogue_form

    async def _catalogue_form(self, spawner):
        if self.name:
            return ""  # a named server is its environment: spawn directly
        from .handlers.catalogue import render_catalogue  # pages sit above the spawner

        return await render_catalogue(self)

    @default("progress_ready_hook")
    def _default_progress_ready_hook(self):
        return _ready_event_in_readers_language

    @default("options_from_form")
    def _default_options_from_form(self):
        return lambda formdata: {}  # the environment is the server's name, not a form field

    # -- progress -----------------------------------------------------------------------------------
    def _emit(self, progress: int, message: Message) -> None:
        self._events.append((progress, message))
        self._events_changed.set()

    async def _generate_progress(self):
        # JupyterHub's wrapper around progress() opens with its own "Server requested", in English
        async with contextlib.aclosing(super()._generate_progress()) as events:
            async for event in events:
                if event.get("message") == "Server requested":
                    event = {**event, "message": Message("Server requested").localized()}
                yield event

    async def progress(self):
        sent = 0
        while True:
            events = getattr(self, "_events", [])
            new_events = events[sent:]
            sent += len(new_events)  # counted before yielding: events added while the reader reads come next
            for percent, message in new_events:
                # put in words here, in the language of the browser reading the progress page
                yield {"progress": percent, "message": message.localized()}
            finished = getattr(self, "_start_done", True) and self.pending != "spawn"
            if finished and sent >= len(getattr(self, "_events", [])):
                return
            changed = getattr(self, "_events_changed", None)
            if changed is None:
                await asyncio.sleep(0.2)  # start() has not begun yet
                continue
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), 1)
            except asyncio.TimeoutError:
                pass

    # -- start ------------------------------------------------------------------------------------
    async def start(self):
        self._events = []
        self._events_changed = asyncio.Event()
        self._start_done = False
        self._failed_tasks_seen = 0
        began = time.monotonic()
        cleanup = SwarmEnvironmentSpawner._cleanups.get(self.service_name)
        if cleanup is not None:
            await asyncio.shield(cleanup)  # the service of the last, cancelled start goes first (by name)
        await asyncio.to_thread(self.catalog.reload_if_changed)  # a `git pull` since the last look
        env = self.profile
        slug = env.slug if env else "unknown"  # a metric label per made-up server name would grow without end
        try:
            result = await self._start_environment(env, began)
        except SpawnException as e:
            metrics.SPAWN_FAILURES.labels(slug, e.reason or "error").inc()
            raise
        except Exception:
            metrics.SPAWN_FAILURES.labels(slug, "error").inc()
            raise
        finally:
            self._start_done = True
            self._events_changed.set()
        metrics.SPAWN_DURATION.labels(slug, "total").observe(time.monotonic() - began)
        return result

    def _start_slot_count(self) -> int:
        """Slots for starts (StartSlots: < 1 means no limit)."""
        if self.concurrent_starts:
            return max(0, self.concurrent_starts)
        cpus = self.watcher.ready_cpus() or os.cpu_count() or 1
        return max(2, round(2 * cpus))

    def _announce_place_in_line(self, ahead: int) -> None:
        """``ahead``: starts waiting in line before this one (the ones holding a slot are not counted)."""
        if ahead == 0:
            self._emit(8, Message("Many servers are starting: yours is next"))
        else:
            self._emit(8, Message("Many servers are starting: %(ahead)s more before yours", ahead=ahead))

    def _refuse_beyond_running_cap(self, env: Environment) -> None:
        """A student may have ``running_servers_per_student`` environments running or starting at once, whoever
        starts them (an administrator acting for them too); two starts at the very same moment may both be
        refused, never both let through."""
        cap = self.running_servers_per_student
        groups = self._user_groups()
        if cap <= 0 or is_privileged(env, self.user.name, groups, bool(self.user.admin), TEACHER_GROUP):
            return
        # servers with a start under way are only in the loaded spawners, running ones in the database too;
        # one being stopped no longer counts
        loaded = self.user.spawners
        running = {name for name, spawner in loaded.items() if spawner.active}
        running |= {name for name, orm_spawner in self.user.orm_user.orm_spawners.items() if orm_spawner.server}
        stopping = {name for name, spawner in loaded.items() if spawner.pending == "stop"}
        others = sorted(running - stopping - {self.name})
        if len(others) >= cap:
            refused = Message(
                "Already running: %(names)s (at most %(cap)s at once). Stop one of them to start this one.",
                names=", ".join(others),
                cap=cap,
            )
            raise self._fail("too_many_running", refused, status_code=403)

    def _fail(self, reason: str, message: Message, log_message: str | None = None, status_code: int = 500):
        """What the student reads (in their language); the log keeps ``log_message`` (English)."""
        return StartFailed(message, reason=reason, log_message=log_message or "", status_code=status_code)

    def availability(self, env: Environment, now: dt.datetime | None = None) -> Availability:
        """Whether this spawner's user may see and start ``env`` now, given its class sessions."""
        groups = self._user_groups()
        return availability(
            env,
            now or dt.datetime.now(dt.timezone.utc),
            groups=groups,
            privileged=is_privileged(env, self.user.name, groups, bool(self.user.admin), TEACHER_GROUP),
            early_access=dt.timedelta(seconds=self.session_early_access),
        )

    def get_env(self):
        env = super().get_env()
        if self.frame_ancestors:
            env["MYDOCKER_FRAME_ANCESTORS"] = " ".join(self.frame_ancestors)
        profile = self.profile
        if profile is not None:
            # the image culls idle kernels and terminals itself (images/README.md); the hub's culler stops the server
            env["MYDOCKER_IDLE_TIMEOUT"] = str(profile.idle_timeout)
            available = self.availability(profile)
            if available.stops_at_end:
                env["MYDOCKER_SESSION_END"] = available.ends_at.isoformat()  # shells announce it (images/README.md)
        cookie_options = dict(self.cookie_options or {})
        if cookie_options.pop("Partitioned", False):
            # images that follow our contract add it back (images/README.md); others must not choke on it
            env["JUPYTERHUB_COOKIE_OPTIONS"] = json.dumps(cookie_options)
            env["MYDOCKER_COOKIE_PARTITIONED"] = "1"
        languages = self._starting_browser_languages()
        if languages:
            env["MYDOCKER_LANGUAGES"] = " ".join(languages)  # JupyterLab opens in it (images/README.md)
        return env

    def _starting_browser_languages(self) -> list[str]:
        """The languages of the browser that asked for this start, most wanted first (none for an API client)."""
        handler = getattr(self, "handler", None)
        if handler is None:
            return []
        return browser_languages(handler.request.headers.get("Accept-Language"))

    async def _start_environment(self, env: Environment | None, began: float):
        if env is None:
            if not self.name:
                no_environment = Message("Pick an environment in the catalogue to start it.")
                raise self._fail("no_environment", no_environment, status_code=400)
            raise self._fail(
                "unknown_environment",
                Message(
                    "There is no environment named %(name)r (any more). Pick one in the catalogue.", name=self.name
                ),
                status_code=404,
            )
        if not self.catalog.may_start(env, self.user.name, self._user_groups(), bool(self.user.admin)):
            forbidden = Message("You may not start the environment %(slug)r.", slug=env.slug)
            raise self._fail("forbidden", forbidden, status_code=403)
        available = self.availability(env)
        if not available.startable:
            raise self._fail("closed", closed_message(env, available), status_code=403)
        self._refuse_beyond_running_cap(env)
        self.image = env.image
        self.default_url = ""
        self._emit(5, Message("Requesting %(title)s", title=env.localized_title))

        watcher = self.watcher
        other = self._other_server_of(watcher.service(self.service_name))
        if other:
            clash = Message(
                "This environment cannot start while your environment %(other)s runs: their server names clash. "
                "Stop %(other)s, and tell the teacher of one of them to change its slug.",
                other=other,
            )
            log_message = f"{self.service_name} is the service of {other} too: two slugs shorten to one name"
            raise self._fail("name_clash", clash, log_message, status_code=409)
        if not (watcher.healthy and watcher.snapshot.taken_at) or watcher.service(self.service_name):
            await self._remove_service_if_present()  # a leftover of this server (hub restarted meanwhile...)
        credentials = self._ensure_credentials()
        # what the container reads at start comes in Swarm secret files, never as variables in the spec
        password_secret, token_secret = await asyncio.gather(
            self._create_secret("pw", credentials.password) if needs_password_file(env) else _no_secret(),
            self._create_secret("tk", self.api_token) if reads_hub_token(env) and self.api_token else _no_secret(),
        )
        secrets = {"password": password_secret, "token": token_secret}
        stops_before = self._stops
        slots = SwarmEnvironmentSpawner._start_slots
        slots.resize(self._start_slot_count())
        try:
            async with slots.slot(on_wait=self._announce_place_in_line):
                if self._stops != stops_before:  # stopped while in line (start timeout, "stop" clicked)
                    raise self._fail("stopped", Message("The start was cancelled."))
                for attempt in range(1, self.port_conflict_attempts + 1):
                    try:
                        return await self._create_and_wait(env, began, credentials, secrets)
                    except _PortConflict as conflict:
                        # a process outside Swarm holds a port on the node: avoid those ports for a while
                        suspects = SwarmEnvironmentSpawner._suspect_ports
                        suspects.update(dict.fromkeys(conflict.ports, time.monotonic()))
                        self.log.warning("%s: %s (attempt %d)", self.service_name, conflict, attempt)
                        await self._remove_service([])  # its secrets serve the next attempt
                        self._emit(10, Message("A network port was taken on the server; trying another one"))
                no_port = Message("No free network port could be found on the server; please try again.")
                raise self._fail("port_conflict", no_port)
        except asyncio.CancelledError:
            # "Stop" during a start: JupyterHub cancels it, waits one second, then stops the server, which it
            # refuses to do while the cancelled start still runs (the stop failed, and the server stayed listed
            # as running, unreachable). The clean-up must not hold the cancellation on a busy engine.
            self._clean_up_in_background()
            raise
        except BaseException:
            try:
                await self._remove_service_if_present()  # also forgets the secrets just created
            except Exception as cleanup_error:  # the engine is gone too: the start's own error says more
                self.log.warning("Could not remove %s after its failed start: %s", self.service_name, cleanup_error)
            raise

    def _clean_up_in_background(self) -> None:
        """Remove what a cancelled start created (once its create_service call has returned, so that nothing is
        created after the removal), without making the cancellation wait; the next start waits for it."""
        creating = self._creating

        async def clean_up():
            if creating is not None:
                with contextlib.suppress(Exception):
                    await creating
            try:
                await self._remove_service_if_present()
            except Exception as cleanup_error:
                self.log.warning("Could not remove %s after its cancelled start: %s", self.service_name, cleanup_error)

        # one at a time per server: its next start (the only way to a next cancellation) waits for this one
        cleanups, name = SwarmEnvironmentSpawner._cleanups, self.service_name
        task = asyncio.ensure_future(clean_up())
        cleanups[name] = task
        task.add_done_callback(lambda done: cleanups.pop(name) if cleanups.get(name) is done else None)

    @classmethod
    def _recent_suspect_ports(cls) -> set[int]:
        """Ports found taken outside Swarm in the last ``SUSPECT_PORT_SECONDS`` (older ones are tried again)."""
        now = time.monotonic()
        for port, seen in list(cls._suspect_ports.items()):
            if now - seen > cls.SUSPECT_PORT_SECONDS:
                del cls._suspect_ports[port]
        return set(cls._suspect_ports)

    async def _create_and_wait(self, env: Environment, began: float, credentials: Credentials, secrets: dict):
        watcher = self.watcher
        port_range = parse_port_range(self.host_port_range)
        web_range = parse_port_range(self.web_port_range) if self.web_port_range else port_range
        in_use = watcher.used_host_ports() | SwarmEnvironmentSpawner._reserved_ports | self._recent_suspect_ports()
        previous = self._last_node_ports or {}
        again = [previous.get(p.port) for p in env.published_ports]
        reuse = bool(again) and len(set(again)) == len(again)
        reuse = reuse and all(port in port_range and port not in in_use for port in again)
        try:
            if reuse and await self._previous_container_gone():
                tcp_allocated = again
            else:
                tcp_allocated = pick_free_ports(port_range, in_use, len(env.published_ports))
            allocated = pick_free_ports(web_range, in_use | set(tcp_allocated), 1 if env.serves_http else 0)
            allocated += tcp_allocated
        except PortRangeExhausted as exhausted:
            full = Message("All the network ports the hub may give servers are in use; please try again later.")
            setting = "host_port_range" + (" or web_port_range" if self.web_port_range else "")
            raise self._fail("no_port", full, f"{exhausted}: widen SwarmEnvironmentSpawner.{setting}") from None
        SwarmEnvironmentSpawner._reserved_ports.update(allocated)
        ports = list(allocated)
        try:
            http_port = ports.pop(0) if env.serves_http else None
            tcp_ports = {p.port: ports.pop(0) for p in env.published_ports}
            self._last_node_ports = dict(tcp_ports)
            home_volume = self._home_volume(env)
            request = ServiceRequest(
                service_name=self.service_name,
                username=self.user.name,
                server_name=self.name,
                login=credentials.login,
                hub_env=self.get_env(),
                server_port=self.port,
                http_host_port=http_port,
                tcp_host_ports=tcp_ports,
                home_volume=home_volume,
                home_volume_driver=self.home_volume_driver,
                home_volume_options=home_volume_options(
                    self.home_volume_driver_options,
                    volume=home_volume or "",
                    username=self.user.name,
                    size=env.home.size,
                ),
                secret_id=secrets["password"]["ID"],
                secret_name=secrets["password"]["Name"],
                token_secret_id=secrets["token"]["ID"],
                token_secret_name=secrets["token"]["Name"],
                run_as_user=self.run_as_user,
                drop_capabilities=tuple(self.drop_capabilities),
                no_new_privileges=self.no_new_privileges,
                networks=(self.network_name,) if self.network_name else (),
                node_pool_label=self.node_pool_label,
                gpu_resource_kind=self.gpu_resource_kind,
                hub_label=self.service_prefix,
            )
            spec = build_service_spec(env, request)
            await self._warn_if_no_new_privileges_unsupported()
            # shielded: a cancelled start does not stop the engine's call, its clean-up waits for it to return
            self._creating = asyncio.ensure_future(self.docker("create_service", **spec))
            try:
                created = await asyncio.shield(self._creating)
            finally:
                if self._creating.done():
                    self._creating = None
            self.object_id = created["ID"]
            self.log.info("Created service %s for %s (image %s)", self.service_name, self._log_name, env.image)
            try:
                node_id = await self._wait_for_task_running(env, began)
            except SpawnException as e:
                if e.reason == "port_conflict":
                    raise _PortConflict(e.log_message, allocated) from None
                raise
            node_ip = self._web_address(node_id) or "127.0.0.1"
            ready_began = time.monotonic()
            if env.serves_http:
                url = f"http://{node_ip}:{http_port}{self.server.base_url}api"
                await self._wait_for(env, functools.partial(readiness.http_answers, url))
            for port in env.published_ports:
                if port.required:  # the environment is useless without it: ready once it accepts connections
                    node_port = tcp_ports[port.port]
                    await self._wait_for(env, functools.partial(readiness.tcp_answers, node_ip, node_port))
            if env.serves_http:
                target = (node_ip, http_port)
            else:
                target = await ConnectionStub.shared(
                    self.connection_stub_ip, self.connection_stub_port, self.hub.base_url
                )
            metrics.SPAWN_DURATION.labels(env.slug, "server_ready").observe(time.monotonic() - ready_began)
        finally:
            SwarmEnvironmentSpawner._reserved_ports.difference_update(allocated)
        self._emit(100, Message("Environment ready"))
        self.lifetime_deadline = time.time() + env.max_lifetime if env.max_lifetime else None
        return target

    async def _previous_container_gone(self, timeout: float = 15.0) -> bool:
        """After a stop, the old container holds its node ports for a moment: wait for it (a restart then gets
        the same ports back). False if it is still there after ``timeout`` seconds."""
        # the engine the hub talks to sees its own node's containers: on another node the start goes on, and a
        # port still held there is handled as any taken port (other ports are chosen)
        of_this_service = {"label": f"com.docker.swarm.service.name={self.service_name}"}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = await self.docker("containers", filters=of_this_service)
            if not running:
                return True
            await asyncio.sleep(0.5)
        return False

    def _home_volume(self, env: Environment) -> str | None:
        if env.home.type == "none":
            return None
        scope = env.slug if env.home.type == "environment" else None
        return names.home_volume_name(self.service_prefix, self.user.name, scope)

    async def _warn_if_no_new_privileges_unsupported(self):
        if not self.no_new_privileges or SwarmEnvironmentSpawner._warned_no_new_privileges:
            return
        SwarmEnvironmentSpawner._warned_no_new_privileges = True
        if await self.async_docker.api_version() >= (1, 44):
            return  # the service spec's Privileges.NoNewPrivileges is honoured
        if await self.async_docker.daemon_enforces_no_new_privileges():
            return  # the engine sets it on every container
        self.log.warning(
            "This Docker engine (API < 1.44) ignores no-new-privileges in Swarm service specs and does not set it "
            'by default: add "no-new-privileges": true to /etc/docker/daemon.json on every node and restart the '
            "engine (scripts/ensure-system.sh and ansible/site.yml do). Environments still run as %s with "
            "capabilities %s dropped.",
            self.run_as_user,
            ",".join(self.drop_capabilities),
        )

    async def _create_secret(self, kind: str, value: str) -> dict:
        """A Swarm secret of this start (``kind``: ``pw`` password, ``tk`` hub API token), removed with the service."""
        name = names.secret_name(self.service_name, uuid.uuid4().hex[:8], kind)
        created = await self.docker(
            "create_secret",
            name=name,
            data=value.encode(),
            labels={MANAGED_LABEL: self.service_prefix, SECRET_SERVICE_LABEL: self.service_name},
        )
        return {"ID": created["ID"], "Name": name}

    async def _remove_service_if_present(self):
        """Remove this server's service (gone already is fine), then every secret it had, in the background."""
        secret_ids = [
            secret["ID"]
            for secret in await self.docker("secrets", filters={"label": f"{SECRET_SERVICE_LABEL}={self.service_name}"})
        ]
        await self._remove_service(secret_ids)

    async def _remove_service(self, secret_ids: list[str]) -> bool:
        """Remove this server's service (gone already is fine), then ``secret_ids`` in the background.

        Returns whether there was a service to remove."""
        removed = False
        try:
            await self.docker("remove_service", self.service_name)
            self.log.info("Removed service %s", self.service_name)
            removed = True
        except APIError as e:
            if e.response is None or e.response.status_code != 404:
                raise
        self.object_id = ""
        self.watcher.service_removed(None, self.service_name, secret_ids)  # a poll before the next listing: gone
        return removed

    def _other_server_of(self, service: dict | None) -> str | None:
        """The name of the other server of this user that ``service`` (listed under this server's name) is of.

        Names are cut to Docker's 63 characters (``names.service_name``, with a hash): a teacher's slug could be
        written to equal another environment's cut name for a long username. Such a service is never this
        server's to adopt, report or remove."""
        owner = (service or {}).get("Spec", {}).get("Labels", {}).get(SERVER_LABEL)
        return owner if owner is not None and owner != self.name else None

    def _web_address(self, node_id: str) -> str | None:
        """Where the hub reaches a server running on node ``node_id`` (its host-mode ports); None: unknown."""
        address = self.node_address or self.watcher.node_address(node_id)
        if address is None:
            return None
        return "127.0.0.1" if address in ("0.0.0.0", "") else address

    async def _follow_to_its_node(self, service: dict, task: dict) -> None:
        """Swarm started the server again on another node (its node drained, or gone): the hub's address for it
        (kept when its start returned) and its proxy route now point there, or the student would get "server
        not running" from a server listed as running, and the hub would stop it at its next restart."""
        server = self.server
        if server is None or not server.ip or self._spawn_pending or self._stop_pending:
            return
        published = service.get("Spec", {}).get("EndpointSpec", {}).get("Ports") or []
        if server.port not in {port.get("PublishedPort") for port in published}:
            return  # the hub reaches it elsewhere (an SSH-only server's page, on the hub's own stub)
        address = self._web_address(task.get("NodeID", ""))
        if address is None or address == server.ip:
            return
        self.log.warning("%s now runs on %s (was %s): routing to it there", self._log_name, address, server.ip)
        server.ip = address  # into the database too (JupyterHub's Server writes through to its row)
        self.db.commit()
        proxy = self.user.settings.get("proxy")
        if proxy is None or self.pending:
            return  # while JupyterHub checks servers (at its start), its own route check follows
        try:
            await proxy.add_user(self.user, self.name)
        except Exception as error:  # JupyterHub's route check (every last_activity_interval) repairs it
            self.log.warning("Could not route %s to %s yet: %s", self._log_name, address, error)

    async def _wait_for_task_running(self, env: Environment, began: float) -> str:
        """Follow the service's task through the shared watcher until it runs; fail fast otherwise."""
        watcher = self.watcher
        last_state = None
        phase_marks: dict[str, float] = {}
        unschedulable_since = None
        while True:
            try:
                await watcher.next_snapshot(timeout=10)
            except asyncio.TimeoutError:
                if watcher.healthy:
                    continue
                unreachable = Message("The server's container engine does not answer; please try again in a minute.")
                raise self._fail(
                    "engine_unreachable", unreachable, f"Docker engine unreachable: {watcher.last_error}"
                ) from None
            tasks = watcher.tasks(self.service_name)
            if not tasks:
                continue
            failure = self._task_failure(env)
            if failure:
                raise failure
            task = tasks[0]
            state = diagnose.task_state(task)
            if state in diagnose.ENDED_STATES:
                continue  # a failed task Swarm is replacing (announced by _task_failure)
            if state != last_state:
                last_state = state
                percent, message = diagnose.progress_message(state, env.image)
                self._emit(percent, message)
                phase_marks.setdefault(state, time.monotonic())
            if state == "running":
                self._record_phases(env, began, phase_marks)
                return task.get("NodeID", "")
            if state == "pending":
                failure = diagnose.diagnose_pending(task)
                if failure and failure.reason == "port_conflict":
                    raise self._fail(failure.reason, failure.message, failure.detail)
                if failure:
                    unschedulable_since = unschedulable_since or time.monotonic()
                    if time.monotonic() - unschedulable_since > self.unschedulable_grace:
                        raise self._fail(failure.reason, failure.message, f"{self.service_name}: {failure.detail}")
                else:
                    unschedulable_since = None

    def _record_phases(self, env: Environment, began: float, marks: dict[str, float]) -> None:
        scheduled = marks.get("assigned") or marks.get("accepted") or marks.get("preparing") or began
        prepared = marks.get("ready") or marks.get("starting") or scheduled
        running = marks["running"]
        observe = metrics.SPAWN_DURATION.labels
        observe(env.slug, "scheduling").observe(max(0.0, scheduled - began))
        observe(env.slug, "pull").observe(max(0.0, prepared - scheduled))
        observe(env.slug, "start").observe(max(0.0, running - prepared))

    def _task_failure(self, env: Environment):
        """The SpawnException that ends this start, or None while Swarm may still bring the server up."""
        failure, failed_count = diagnose.latest_failure(self.watcher.tasks(self.service_name), env.image)
        if failure is None:
            return None
        if diagnose.ends_start(failure, failed_count, self.start_attempts):
            return self._fail(failure.reason, failure.message, f"{self.service_name}: {failure.detail}")
        if failed_count > self._failed_tasks_seen:
            self._failed_tasks_seen = failed_count
            self.log.warning(
                "%s: task %d failed (%s); Swarm starts it again", self._log_name, failed_count, failure.detail
            )
            self._emit(30, Message("The environment stopped while starting; starting it again"))
        return None

    async def _wait_for(self, env: Environment, answers: Callable[[], Awaitable[bool]]) -> None:
        """Until ``answers()`` says the server is up, or Swarm says its start failed."""
        with self.watcher.following():
            await readiness.probe_until(answers, lambda: self._task_failure(env))

    # -- poll and stop ------------------------------------------------------------------------------
    async def poll(self):
        """From the shared watcher's listing: no Docker call per server."""
        watcher = self.watcher
        if not watcher.healthy and watcher.snapshot.taken_at == 0:
            try:
                await watcher.next_snapshot(timeout=30)
            except asyncio.TimeoutError:
                return None
        if not watcher.healthy:
            # the engine is unreachable (restarting?): do not declare servers dead on that alone
            return None
        service = watcher.service(self.service_name)
        if service is None or self._other_server_of(service):
            return 0
        if not self.object_id and not self._spawn_pending:
            # a start this hub never finished (it was stopped or restarted meanwhile): the hub saves the
            # service's ID when a start returns, and knows no address for this one; it will not stop a server
            # it is told is gone, so remove it here, and the student starts it again
            if await self._remove_service(secret_ids_of(service)):
                unfinished = "%s: removed %s, whose start the hub did not finish"
                self.log.warning(unfinished, self._log_name, self.service_name)
            return 0
        self.object_id = service["ID"]
        profile = self.profile
        if profile is not None and not profile.serves_http:
            # after a hub restart, the stub that routes SSH-only servers to their page must listen again
            await ConnectionStub.shared(self.connection_stub_ip, self.connection_stub_port, self.hub.base_url)
        tasks = watcher.tasks(self.service_name)
        if not tasks:
            return None  # just created, or being rescheduled
        state = diagnose.task_state(tasks[0])
        if state == "running":
            await self._follow_to_its_node(service, tasks[0])
        if state == "running" or state in diagnose.PENDING_STATES:
            return None  # Swarm restarts failed tasks (restart policy "any"), e.g. after an engine restart
        return f"task {state}: {tasks[0].get('Status', {}).get('Err', '')}"

    async def stop(self, now=False):
        self.log.info("Stopping %s (%s)", self._log_name, self.service_name)
        self._stops += 1
        # the shared listing already names the service's secrets: one Docker call per stop when a class leaves
        listed = self.watcher.service(self.service_name)
        if self._other_server_of(listed):
            self.clear_state()  # this server never started (its name is another's): nothing of its own to remove
            return
        if listed is None:
            await self._remove_service_if_present()
        elif self.removal_settle_time > 0 and self.object_id and listed["ID"] == self.object_id:
            # the engine removes it once the other stops of a class are done (``removal_settle_time``); by ID,
            # so a start of this server meanwhile (which removes it by name first) keeps its own service
            self.watcher.removals.defer(listed["ID"], self.service_name, secret_ids_of(listed))
            self.object_id = ""
        else:
            await self._remove_service(secret_ids_of(listed))
        self.clear_state()

    # -- what the connection page shows -------------------------------------------------------------
    def published_ports(self) -> dict[int, int]:
        """Container port -> node port of SSH/TCP ports, read from the live service."""
        service = self.watcher.service(self.service_name) or {}
        result = {}
        http_port = self.port if (self.profile and self.profile.serves_http) else None
        for port in service.get("Spec", {}).get("EndpointSpec", {}).get("Ports", []) or []:
            if port.get("TargetPort") != http_port:
                result[port["TargetPort"]] = port["PublishedPort"]
        return result

    def node_host_for_users(self, request_host: str) -> str:
        if self.public_host:
            return self.public_host
        tasks = self.watcher.tasks(self.service_name)
        address = self.node_address or (self.watcher.node_address(tasks[0].get("NodeID", "")) if tasks else None)
        if not address or address.startswith("127.") or address in ("0.0.0.0", "::1"):
            return request_host.rsplit(":", 1)[0] if request_host.count(":") == 1 else request_host
        return address


def _servers_stopped_in(db):
    """A reader of the (user, server name) pairs the hub's database knows and lists as stopped."""

    def stopped() -> set[tuple[str, str]]:
        try:
            rows = (
                db.query(orm.User.name, orm.Spawner.name)
                .join(orm.Spawner, orm.Spawner.user_id == orm.User.id)
                .filter(orm.Spawner.server_id.is_(None))
                .all()
            )
        except SQLAlchemyError:
            db.rollback()  # the hub's one session must stay usable, as JupyterHub does after its own errors
            raise
        return {(user, server) for user, server in rows}

    return stopped


def _ready_event_in_readers_language(spawner, ready_event: dict) -> dict:
    """JupyterHub's last progress event ("Server ready at ..."), in the words of the page's language."""
    url = ready_event.get("url", "")
    ready_event["message"] = Message("Your environment is ready: %(url)s", url=url).localized()
    link = Markup('<a href="%s">%s</a>') % (url, url)
    ready_event["html_message"] = str(Message("Your environment is ready: %(url)s", url=link).localized_html())
    return ready_event
