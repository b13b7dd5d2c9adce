"""A tiny HTTP responder inside the hub process for environments without a web interface.

The proxy needs a target for every running server; for an SSH/TCP-only environment the target is this
stub, which answers any ``/user/<name>/<server>/...`` request with a redirect to that server's connection
page. It listens on a fixed port so that routes stay valid across hub restarts.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote, unquote

import jupyterhub
from tornado import web
from tornado.httpserver import HTTPServer


class _RedirectToConnectionPage(web.RequestHandler):
    def initialize(self, hub_base_url: str):
        self.hub_base_url = hub_base_url

    def get(self, username: str, server_name: str, rest: str = ""):
        # JupyterHub checks this header when it waits for a server
        self.set_header("X-JupyterHub-Version", jupyterhub.__version__)
        target = (
            f"{self.hub_base_url}environments/{quote(unquote(username), safe='')}/"
            f"{quote(unquote(server_name), safe='')}"
        )
        self.redirect(target)

    head = post = get


class ConnectionStub:
    _servers: dict[tuple[str, int], HTTPServer] = {}
    _lock = asyncio.Lock()

    @classmethod
    async def shared(cls, ip: str, port: int, hub_base_url: str) -> tuple[str, int]:
        """Start the stub once per process; return the (ip, port) the proxy should route to."""
        async with cls._lock:
            if (ip, port) not in cls._servers:
                app = web.Application(
                    [
                        (r".*/user/([^/]+)/([^/]+)/?(.*)", _RedirectToConnectionPage, {"hub_base_url": hub_base_url}),
                        (r".*", web.RedirectHandler, {"url": hub_base_url + "home"}),
                    ]
                )
                server = HTTPServer(app, xheaders=True)
                server.listen(port, ip)
                cls._servers[(ip, port)] = server
        return ip, port
