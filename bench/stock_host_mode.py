"""Stock dockerspawner.SwarmSpawner, changed only where this machine requires it.

Without the Swarm ingress routing mesh, a port published in ingress mode is unreachable, so the port is
published in host mode (Swarm picks it) and read back from the task. Nothing else differs from stock:
one executor thread, its own polling, its own create/wait loop.
"""

from dockerspawner import SwarmSpawner


class HostModeSwarmSpawner(SwarmSpawner):
    def _default_port_spec(self):
        return {"ports": [{"TargetPort": self.port, "Protocol": "tcp", "PublishMode": "host"}]}

    async def create_object(self):
        self.extra_endpoint_spec = self._default_port_spec()
        return await super().create_object()

    async def get_ip_and_port(self):
        task = await self.get_task()
        for port in task.get("Status", {}).get("PortStatus", {}).get("Ports", []):
            if port.get("TargetPort") == self.port:
                return "127.0.0.1", port["PublishedPort"]
        raise RuntimeError(f"no published port for {self.service_name}")
