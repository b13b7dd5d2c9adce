"""A spawner that does no work: what JupyterHub itself spends to start and stop a server.

Its servers are one stub HTTP process shared by all (it answers every path), so a start or a stop costs
the hub only its own bookkeeping: the request, the database, the proxy's route, the tokens. Stopping a
class with it is the floor under any spawner's "stop all" on the same hub.
"""

from jupyterhub.spawner import Spawner
from traitlets import Unicode


class NoWorkSpawner(Spawner):
    stub_url = Unicode(help="URL of the stub HTTP server that stands for every server.").tag(config=True)

    _running = False

    async def start(self):
        self._running = True
        return self.stub_url

    async def poll(self):
        return None if self._running else 0

    async def stop(self, now=False):
        self._running = False
