"""``python -m mydocker_hub.builder``: the image builder as a hub-managed service.

Pages (behind the hub's OAuth; only holders of ``custom:mydocker-images:build``, i.e. teachers and admins):
``/services/builder/`` images and upload form, ``images/<name>`` history, ``builds/<name>/<id>`` live log,
"test this build"; JSON at ``api/...``. See README.md.

Reading the images' files, the build history and logs, and unpacking uploads happen in worker threads
(``asyncio.to_thread``): the event loop keeps serving the other pages and the live logs meanwhile. Every page
shows its errors the same way: the reason in the reader's language, never a traceback.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpserver import HTTPServer
from traitlets import Integer, TraitError, Unicode, validate
from traitlets.config import Application

from ..handlers.errors import PageError
from ..i18n import Message, current_language, pick_language
from ..service_loop import run_until_stopped
from ..service_pages import LocalizedPage, page_shell, said
from .archive import UploadRefused, extract_zip
from .records import BuildRecord, BuildStore
from .runner import BuildRunner
from .sources import IMAGE_NAME, ImageSource, load_sources, write_upload_metadata
from .testserver import write_test_profile

BUILD_SCOPE = "custom:mydocker-images:build"
e = html.escape


class _Page(LocalizedPage, HubOAuthenticated, web.RequestHandler):
    hub_scopes = [BUILD_SCOPE]

    @property
    def app(self) -> BuilderApp:
        return self.settings["builder"]

    @property
    def prefix(self) -> str:
        return self.settings["service_prefix"]

    def who(self) -> tuple[str, bool]:
        user = self.current_user
        return user["name"], bool(user.get("admin"))

    async def sources(self) -> dict[str, ImageSource]:
        return await asyncio.to_thread(self.app.load_sources)

    async def source_or_404(self, name: str, *, build: bool = False) -> ImageSource:
        source = (await self.sources()).get(name)
        username, admin = self.who()
        if source is None or not source.may_view(username, admin):
            raise PageError(404, Message("No image %(name)r you may see.", name=name))
        if build and not source.may_build(username, admin):
            raise PageError(
                403,
                Message(
                    "Only the owners and editors of %(name)r (and admins) can build it: ask an owner to add you "
                    "to its editors.",
                    name=name,
                ),
            )
        return source

    def page(self, title: str, body: str) -> None:
        """``title``: plain text; ``body``: HTML."""
        user = self.current_user or {}
        self.finish(page_shell(title, body, username=user.get("name", "")))

    def write_error(self, status_code: int, **kwargs) -> None:
        """The error page of every page: the reason, in the reader's language when it is ours; no traceback."""
        current_language.set(pick_language(self.request.headers.get("Accept-Language")))  # may precede prepare()
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, PageError):
            reason = error.said.localized()
        elif status_code >= 500:  # no internals (addresses, hosts) for whoever meets it
            reason = Message("Something went wrong").localized()
        elif isinstance(error, web.HTTPError) and error.log_message:  # tornado's and the hub's own: English
            reason = error.log_message % error.args if error.args else error.log_message
        else:
            reason = self._reason
        try:
            username = (self.current_user or {}).get("name", "")
        except Exception:  # the error may be that the hub could not say who this is
            username = ""
        body = f"<p class='alert alert-danger page-error'>{e(reason)}</p>"
        self.finish(page_shell(Message("Error %(code)s", code=status_code).localized(), body, username=username))


def _status_badge(status: str) -> str:
    colour = {"succeeded": "success", "failed": "danger", "building": "info", "pushing": "info"}.get(
        status, "secondary"
    )
    shown = said(Message(status)) if status in _STATUS_WORDS else e(status)
    return f"<span class='badge bg-{colour} build-status' data-status='{e(status)}'>{shown}</span>"


#: build states, put in the reader's words on the badge (data-status keeps the state's own name)
_STATUS_WORDS = ("queued", "building", "pushing", "succeeded", "failed")


def _problems(sources) -> str:
    """What is wrong in the files of ``sources`` (the images the reader sees), as HTML; empty when nothing is."""
    items = "".join(
        f"<li class='image-problem'><code>{e(problem.file)}</code>: {said(problem.what)}</li>"
        for source in sources
        for problem in source.problems
    )
    if not items:
        return ""
    title = said(Message("Problems in the images' files"))
    advice = said(Message("Until they are fixed in the file, the faulty settings are ignored."))
    return (
        f"<div class='alert alert-warning image-problems'><h2 class='h6'>{title}</h2><p class='mb-1'>{advice}</p>"
        f"<ul class='mb-0'>{items}</ul></div>"
    )


class ImagesPage(_Page):
    def _visible_with_last_build(self, username: str, admin: bool) -> list[tuple[ImageSource, BuildRecord | None]]:
        """In a worker thread: the images ``username`` sees, with their last build (or None)."""
        visible = (s for s in self.app.load_sources().values() if s.may_view(username, admin))
        return [(source, next(iter(self.app.store.history(source.name)), None)) for source in visible]

    @web.authenticated
    async def get(self):
        username, admin = self.who()
        listed = await asyncio.to_thread(self._visible_with_last_build, username, admin)
        rows = []
        build_label, yes = said(Message("Build")), said(Message("yes"))
        for source, last in listed:
            build = (
                f"<form method='post' action='{self.prefix}images/{e(source.name)}/build' class='d-inline'>"
                f"{self.xsrf_form_html()}<button class='btn btn-sm btn-primary build-button'>{build_label}</button>"
                "</form>"
                if source.may_build(username, admin)
                else ""
            )
            rows.append(
                f"<tr class='image' data-image='{e(source.name)}'><td><a href='{self.prefix}images/{e(source.name)}'>"
                f"{e(source.name)}</a></td><td>{e(source.origin)}</td><td>{yes if source.public else ''}</td>"
                f"<td>{_status_badge(last.status) if last else ''}</td><td>{build}</td></tr>"
            )
        wrapper_label = said(Message("Wrapper script (optional, saved as mydocker-wrapper.sh)"))
        upload = (
            f"<h2 class='h5 mt-4'>{said(Message('Upload an image'))}</h2>"
            f"<form method='post' action='{self.prefix}upload' "
            f"enctype='multipart/form-data' class='upload-form' style='max-width:40rem'>{self.xsrf_form_html()}"
            f"<label class='form-label'>{said(Message('Name (lowercase letters, digits, dashes)'))}</label>"
            "<input class='form-control mb-2' name='name' required pattern='[a-z0-9][a-z0-9-]{0,39}'>"
            "<label class='form-label'>Dockerfile</label><textarea class='form-control mb-2 font-monospace' "
            "name='dockerfile' rows='8' required></textarea>"
            f"<label class='form-label'>{wrapper_label}</label>"
            "<textarea class='form-control mb-2 font-monospace' name='wrapper' rows='4'></textarea>"
            f"<label class='form-label'>{said(Message('Context (optional .zip)'))}</label>"
            "<input class='form-control mb-2' type='file' name='context' accept='.zip'>"
            "<div class='form-check mb-2'><input class='form-check-input' type='checkbox' name='public' id='public'>"
            f"<label class='form-check-label' for='public'>{said(Message('Usable by everyone'))}</label></div>"
            f"<button class='btn btn-primary'>{said(Message('Upload'))}</button></form>"
        )
        headers = (Message("Image"), Message("Source"), Message("Public"), Message("Last build"))
        self.page(
            Message("Environment images").localized(),
            _problems(source for source, _ in listed)
            + "<div class='table-responsive'><table class='table table-sm images'><thead><tr>"
            + "".join(f"<th>{said(header)}</th>" for header in headers)
            + "<th></th></tr></thead><tbody>"
            + ("".join(rows) or f"<tr><td colspan='5'>{said(Message('No image yet.'))}</td></tr>")
            + "</tbody></table></div>"
            + upload,
        )


class ImageHistoryPage(_Page):
    @web.authenticated
    async def get(self, name: str):
        source = await self.source_or_404(name)
        history = await asyncio.to_thread(self.app.store.history, source.name)
        rows = "".join(
            f"<tr class='build' data-build='{e(r.build_id)}'><td><a href='{self.prefix}builds/{e(r.image)}/"
            f"{e(r.build_id)}'>{e(r.build_id)}</a></td><td>{_status_badge(r.status)}</td><td>{e(r.author)}</td>"
            f"<td>{'' if r.duration is None else f'{r.duration:.0f} s'}</td><td>{e(r.failing_step)}</td>"
            f"<td><code>{e(r.reference)}</code></td></tr>"
            for r in history
        )
        owners = ", ".join(source.owners) or said(Message("admins"))
        headers = (Message("Build ID"), Message("Status"), Message("By"), Message("Duration"), Message("Failing step"))
        headers += (Message("Pinned reference (for environment files)"),)
        no_build = said(Message("No build yet."))
        self.page(
            Message("Image %(name)s", name=source.name).localized(),
            f"<p>{said(Message('Source: %(origin)s · owners: %(owners)s', origin=source.origin, owners=owners))}</p>"
            + _problems([source])
            + "<div class='table-responsive'><table class='table table-sm history'><thead><tr>"
            + "".join(f"<th>{said(header)}</th>" for header in headers)
            + f"</tr></thead><tbody>{rows or f'<tr><td colspan=6>{no_build}</td></tr>'}</tbody></table></div>",
        )


class BuildAction(_Page):
    @web.authenticated
    async def post(self, name: str):
        source = await self.source_or_404(name, build=True)
        username, _ = self.who()
        record = self.app.runner.submit(source, username)
        self.redirect(f"{self.prefix}builds/{quote(record.image)}/{quote(record.build_id)}")


class BuildPage(_Page):
    @web.authenticated
    async def get(self, name: str, build_id: str):
        source = await self.source_or_404(name)
        record = await asyncio.to_thread(self.app.store.load, source.name, build_id)
        if record is None:
            raise PageError(404, Message("No build %(build)s of %(image)s.", build=build_id, image=name))
        api = f"{self.prefix}api/builds/{quote(record.image)}/{quote(record.build_id)}"
        test = (
            f"<form method='post' action='{self.prefix}builds/{e(record.image)}/{e(record.build_id)}/test' "
            f"class='test-form' {'hidden' if record.status != 'succeeded' else ''}>{self.xsrf_form_html()}"
            f"<button class='btn btn-success test-button'>{said(Message('Test this build'))}</button></form>"
        )
        self.page(
            Message("Build %(build)s of %(image)s", build=record.build_id, image=record.image).localized(),
            f"<p><a class='back-to-image' href='{self.prefix}images/{e(record.image)}'>&larr; "
            f"{said(Message('All the builds of %(image)s', image=record.image))}</a></p>"
            f"<p>{said(Message('Status:'))} <span class='live-status'>{_status_badge(record.status)}</span> "
            f"<span class='failing-step text-danger'>{e(record.failing_step)}</span></p>"
            f"<p>{said(Message('Pinned reference:'))} <code class='reference'>{e(record.reference)}</code></p>{test}"
            "<pre class='build-log border p-2 mt-2' style='max-height:60vh;overflow:auto'></pre>"
            "<script>(function(){let offset=0;const log=document.querySelector('.build-log');"
            # cookie-authenticated fetches must carry the XSRF token (JupyterHub's HubOAuth checks it)
            f"async function poll(){{const r=await fetch('{api}?offset='+offset,{{credentials:'same-origin',"
            f"headers:{{'X-XSRFToken':'{self.xsrf_token.decode()}'}}}});"
            "const d=await r.json();log.textContent+=d.log;offset=d.offset;log.scrollTop=log.scrollHeight;"
            "document.querySelector('.live-status').innerHTML=d.status_html;"
            "document.querySelector('.failing-step').textContent=d.failing_step;"
            "document.querySelector('.reference').textContent=d.reference;"
            "if(d.status==='succeeded'){document.querySelector('.test-form').hidden=false;}"
            "if(!['succeeded','failed'].includes(d.status)){setTimeout(poll,1000);}}poll();})();</script>",
        )


class BuildApi(_Page):
    @web.authenticated
    async def get(self, name: str, build_id: str):
        source = await self.source_or_404(name)
        record = await asyncio.to_thread(self.app.store.load, source.name, build_id)
        if record is None:
            raise PageError(404, Message("No build %(build)s of %(image)s.", build=build_id, image=name))
        offset = int(self.get_argument("offset", "0"))
        text, offset = await asyncio.to_thread(self.app.store.read_log, source.name, build_id, offset)
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps({**record.to_json(), "log": text, "offset": offset, "status_html": _status_badge(record.status)})
        )


class TestBuild(_Page):
    @web.authenticated
    async def post(self, name: str, build_id: str):
        source = await self.source_or_404(name, build=True)
        record = await asyncio.to_thread(self.app.store.load, source.name, build_id)
        if record is None or record.status != "succeeded":
            raise PageError(
                409, Message("Only a succeeded build can be tested: build it again, or pick one that succeeded.")
            )
        username, _ = self.who()
        slug = write_test_profile(self.app.test_profiles_path, record, username)
        hub = os.environ.get("JUPYTERHUB_BASE_URL", "/")
        self.redirect(url_path_join(hub, "hub/spawn", quote(username, safe=""), slug))


class Upload(_Page):
    @web.authenticated
    async def post(self):
        username, admin = self.who()
        name = self.get_body_argument("name", "").strip()
        if not IMAGE_NAME.match(name):
            raise PageError(
                400, Message("Image name: 1 to 40 lowercase letters, digits or dashes, like 'python-course'.")
            )
        existing = (await self.sources()).get(name)
        if existing is not None and not existing.may_build(username, admin):
            raise PageError(403, Message("%(name)r exists and is not yours: pick another name.", name=name))
        dockerfile = self.get_body_argument("dockerfile", "")
        if not dockerfile.strip():
            raise PageError(400, Message("The Dockerfile is empty."))
        files = self.request.files.get("context") or []
        data = files[0]["body"] if files else b""
        if len(data) > self.app.max_upload_mb * 1024**2:
            raise PageError(
                413,
                Message("The context is larger than %(size)s MB: leave data out of it.", size=self.app.max_upload_mb),
            )
        destination = self.app.uploads_path / name
        try:
            if data:
                limit = self.app.max_context_mb * 1024**2
                await asyncio.to_thread(extract_zip, data, destination, max_total_bytes=limit)
            else:
                destination.mkdir(parents=True, exist_ok=True)
        except UploadRefused as refused:
            raise PageError(
                400, Message("Upload refused, nothing was written: %(reason)s", reason=str(refused))
            ) from None
        (destination / "Dockerfile").write_text(dockerfile)
        wrapper = self.get_body_argument("wrapper", "")
        if wrapper.strip():
            (destination / "mydocker-wrapper.sh").write_text(wrapper)
        write_upload_metadata(destination, username, bool(self.get_body_argument("public", "")))
        self.redirect(f"{self.prefix}images/{quote(name)}")


class NotFound(_Page):
    """Any other address under the service's prefix: the same error page as the others."""

    def prepare(self):
        super().prepare()
        raise PageError(404, Message("Page not found"))


class BuilderApp(Application):
    name = "mydocker-builder"
    description = "Builds teachers' environment images, pushes them, keeps their history."

    images_dir = Unicode(
        os.environ.get("MYDOCKER_IMAGES_DIR", ""),
        config=True,
        help="Image directories of the teachers' git repository (default: $MYDOCKER_IMAGES_DIR).",
    )

    data_dir = Unicode(
        os.path.join(os.environ.get("MYDOCKER_DATA_DIR", "."), "builder"),
        config=True,
        help="Where uploads, build records and logs live (default: $MYDOCKER_DATA_DIR/builder).",
    )

    test_profiles_dir = Unicode(
        (os.environ.get("MYDOCKER_EXTRA_ENVIRONMENTS_DIRS", "") or "build-environments").split(os.pathsep)[0],
        config=True,
        help="Where 'test this build' profiles go; the hub reads it (default: $MYDOCKER_EXTRA_ENVIRONMENTS_DIRS).",
    )

    registry = Unicode(
        os.environ.get("MYDOCKER_REGISTRY", ""),
        config=True,
        help="Registry host[:port] builds are pushed to; empty: not pushed (default: $MYDOCKER_REGISTRY).",
    )

    namespace = Unicode("mydocker-builds", config=True, help="Repository namespace in the registry.")
    max_concurrent = Integer(2, config=True, help="Builds running at once across the service (more wait). Default: 2.")
    ca_bundle = Unicode(
        os.environ.get("MYDOCKER_BUILD_CA_BUNDLE", ""),
        config=True,
        help="CA bundle copied into builds as build-ca.crt (default: $MYDOCKER_BUILD_CA_BUNDLE).",
    )

    base_image = Unicode(
        os.environ.get("MYDOCKER_BUILD_BASE_IMAGE", ""),
        config=True,
        help="BASE_IMAGE build argument for Dockerfiles that declare it (default: $MYDOCKER_BUILD_BASE_IMAGE).",
    )

    build_engine_url = Unicode(
        os.environ.get("MYDOCKER_BUILD_ENGINE_URL", ""),
        config=True,
        help="""Docker engine that runs the builds, over SSH: ``ssh://builder@build.example.fr`` (the hub's
        ``ssh`` client and its keys; that user in the build machine's ``docker`` group). A build runs its
        Dockerfile's RUN steps as root in containers of that engine, with its network: give it a machine of
        its own rather than the hub's or a node's; builds are then pushed to ``registry`` (required).
        Default ($MYDOCKER_BUILD_ENGINE_URL, empty): the local engine, as on one machine.""",
    )
    build_memory_mb = Integer(
        int(os.environ.get("MYDOCKER_BUILD_MEMORY_MB") or 4096),
        config=True,
        help="""Memory (swap included) of each RUN step of a build, in MB: a step that takes more is killed
        and the build fails at that step instead of starving the machine. Default ($MYDOCKER_BUILD_MEMORY_MB):
        4096; 0: no limit.""",
    )

    build_timeout_minutes = Integer(
        int(os.environ.get("MYDOCKER_BUILD_TIMEOUT_MINUTES") or 60),
        config=True,
        help="""Longest a build may run, in minutes, and longest a step may run without printing anything (a
        server started by RUN instead of CMD, a stalled download): the build then fails saying so and frees its
        slot. Default ($MYDOCKER_BUILD_TIMEOUT_MINUTES): 60; 0: no limit.""",
    )

    @validate("build_engine_url")
    def _validate_build_engine_url(self, proposal):
        if proposal.value and not proposal.value.startswith("ssh://"):
            raise TraitError(
                f"build_engine_url {proposal.value!r}: give an ssh:// address (ssh://user@host); an engine reached "
                "over plain tcp:// is root for anyone who can reach it"
            )
        return proposal.value

    max_upload_mb = Integer(50, config=True, help="Largest uploaded context archive, in MB. Default: 50.")
    max_context_mb = Integer(500, config=True, help="Largest uncompressed context, in MB. Default: 500.")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # the problems of the images' files already logged (each is logged once); added to from worker threads
        self._logged_problems: set[str] = set()
        self._logged_problems_lock = threading.Lock()

    aliases = {
        "images-dir": "BuilderApp.images_dir",
        "data-dir": "BuilderApp.data_dir",
        "registry": "BuilderApp.registry",
        "namespace": "BuilderApp.namespace",
        "max-concurrent": "BuilderApp.max_concurrent",
        "ca-bundle": "BuilderApp.ca_bundle",
        "base-image": "BuilderApp.base_image",
        "build-engine-url": "BuilderApp.build_engine_url",
        "build-memory-mb": "BuilderApp.build_memory_mb",
        "build-timeout-minutes": "BuilderApp.build_timeout_minutes",
    }

    @property
    def images_path(self) -> Path | None:
        return Path(self.images_dir) if self.images_dir else None

    @property
    def uploads_path(self) -> Path:
        return Path(self.data_dir) / "uploads"

    @property
    def test_profiles_path(self) -> Path:
        return Path(self.test_profiles_dir)

    def load_sources(self) -> dict[str, ImageSource]:
        """The images (reads their files: call it in a worker thread); logs each problem of their files once."""
        sources = load_sources(self.images_path, self.uploads_path)
        for source in sources.values():
            for problem in map(str, source.problems):
                with self._logged_problems_lock:
                    first_time = problem not in self._logged_problems
                    self._logged_problems.add(problem)
                if first_time:
                    self.log.warning("Image %s: %s", source.name, problem)
        return sources

    def web_app(self, prefix: str) -> web.Application:
        """The service's pages under ``prefix``."""
        name = r"([a-z0-9][a-z0-9-]{0,39})"
        build = r"([0-9]+-[0-9]{14})"
        return web.Application(
            [
                (prefix, ImagesPage),
                (url_path_join(prefix, "upload"), Upload),
                (url_path_join(prefix, f"images/{name}"), ImageHistoryPage),
                (url_path_join(prefix, f"images/{name}/build"), BuildAction),
                (url_path_join(prefix, f"builds/{name}/{build}"), BuildPage),
                (url_path_join(prefix, f"builds/{name}/{build}/test"), TestBuild),
                (url_path_join(prefix, f"api/builds/{name}/{build}"), BuildApi),
                (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
            ],
            default_handler_class=NotFound,
            builder=self,
            service_prefix=prefix,
            cookie_secret=os.urandom(32),
            xsrf_cookies=True,
        )

    def start(self):
        if self.build_engine_url and not self.registry:
            # an image built on another machine reaches the nodes only through a registry
            self.log.critical("build_engine_url is set but registry is not: set MYDOCKER_REGISTRY as well")
            self.exit(1)
        self.store = BuildStore(Path(self.data_dir) / "builds")
        for record in self.store.recover_after_restart():
            self.log.warning(
                "Build %s/%s was cut short by the builder's stop: marked failed", record.image, record.build_id
            )
        self.runner = BuildRunner(
            self.store,
            registry=self.registry,
            namespace=self.namespace,
            max_concurrent=self.max_concurrent,
            ca_bundle=self.ca_bundle,
            base_image=self.base_image,
            engine_url=self.build_engine_url,
            memory_limit_mb=self.build_memory_mb,
            timeout_s=self.build_timeout_minutes * 60,
            log=self.log,
        )
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/builder/")
        app = self.web_app(prefix)
        url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10102"))
        HTTPServer(app, max_body_size=(self.max_upload_mb + 5) * 1024**2).listen(url.port, url.hostname)
        self.log.info(
            "Builder serving %s (registry: %s, builds on %s) at %s",
            prefix,
            self.registry or "none",
            self.build_engine_url or "the local engine",
            time.ctime(),
        )
        run_until_stopped(self.log, "Builder")


main = BuilderApp.launch_instance
