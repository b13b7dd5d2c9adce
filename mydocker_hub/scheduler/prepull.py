"""Put an image on every eligible Swarm node before a class, and say per node how it went.

A short-lived *global* service asks every node of the pool for a container of the image: each node pulls
the image to create it. Its command is a path no image has, so nothing of the image runs (the image may be
a teacher's draft nobody reviewed): the container fails to start, which says the image was there. A task
rejected because the image could not be pulled means failed, with Docker's reason. The service is removed
once every node has answered; meanwhile its containers are confined anyway (nobody, no capabilities, a
tenth of a CPU, 64 MiB). Nodes joining later get it at the next round.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import asdict, dataclass

import docker.types

from ..swarm.client import AsyncDocker
from ..swarm.specs import MANAGED_LABEL

PULL_ERRORS = (
    "no such image",
    "pull access denied",
    "manifest unknown",
    "manifest for",
    "error pulling image",
    "failed to resolve reference",
    "unauthorized",
    "toomanyrequests",
)
TERMINAL = {"complete", "failed", "rejected", "shutdown", "orphaned", "remove"}
STARTED = {"starting", "running"}  # the image is on the node: its container was created
NO_PROGRAM = "/.mydocker-prepull-runs-nothing"  # no image has it: the container is created, never run
CONFINED_USER = "65534:65534"
CONFINED_RESOURCES = {"cpu_limit": 100_000_000, "mem_limit": 64 * 1024 * 1024}  # 0.1 CPU, 64 MiB


@dataclass
class NodePull:
    node_id: str
    hostname: str
    status: str  # pulled, failed, pending
    reason: str = ""
    at: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def eligible_nodes(nodes: list[dict], pool_label: str, pool: str | None) -> list[dict]:
    """Ready, active nodes (of ``pool`` when the environment names one)."""
    chosen = []
    for node in nodes:
        if node.get("Status", {}).get("State") != "ready" or node.get("Spec", {}).get("Availability") != "active":
            continue
        if pool and node.get("Spec", {}).get("Labels", {}).get(pool_label) != pool:
            continue
        chosen.append(node)
    return chosen


def classify(task: dict) -> tuple[str, str]:
    """A started or finished pre-pull task -> (status, reason)."""
    status = task.get("Status", {})
    state = status.get("State", "")
    error = (status.get("Err") or "").strip()
    if state == "complete" or state in STARTED:
        return "pulled", ""
    if state in ("rejected", "failed") and any(marker in error.lower() for marker in PULL_ERRORS):
        return "failed", error[:300]
    if state == "failed":
        return "pulled", ""  # it ran (or tried to): the image was there
    return "failed", error[:300] or f"task ended as {state}"


class PrePuller:
    def __init__(self, docker: AsyncDocker, *, label: str, pool_label: str = "org.mydocker.pool", timeout: float = 900):
        self.docker = docker
        self.label = label  # value of org.mydocker.managed on the pre-pull services (for clean-up)
        self.pool_label = pool_label
        self.timeout = timeout

    async def nodes(self, pool: str | None) -> list[dict]:
        return eligible_nodes(await self.docker.call("nodes"), self.pool_label, pool)

    async def pull(self, image: str, pool: str | None, only_nodes: set[str] | None = None) -> list[NodePull]:
        """Pre-pull ``image`` on the pool's nodes (or ``only_nodes`` of them); one result per node."""
        nodes = [n for n in await self.nodes(pool) if only_nodes is None or n["ID"] in only_nodes]
        if not nodes:
            return []
        hostnames = {n["ID"]: n.get("Description", {}).get("Hostname", n["ID"][:12]) for n in nodes}
        name = f"{self.label}-prepull-{hashlib.sha256(image.encode()).hexdigest()[:10]}"
        constraints = []
        if pool:
            constraints.append(f"node.labels.{self.pool_label} == {pool}")
        await self._remove(name)
        container = docker.types.ContainerSpec(image=image, command=[NO_PROGRAM], user=CONFINED_USER, cap_drop=["ALL"])
        container["Privileges"] = {"NoNewPrivileges": True}
        template = docker.types.TaskTemplate(
            container_spec=container,
            resources=docker.types.Resources(**CONFINED_RESOURCES),
            restart_policy=docker.types.RestartPolicy(condition="none"),
            placement=docker.types.Placement(constraints=constraints),
        )
        service = await self.docker.call(
            "create_service",
            template,
            name=name,
            mode=docker.types.ServiceMode("global"),
            labels={MANAGED_LABEL: self.label, "org.mydocker.role": "prepull"},
        )
        results: dict[str, NodePull] = {}
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                tasks = await self.docker.call("tasks", filters={"service": service["ID"]})
                for task in tasks:
                    node_id = task.get("NodeID")
                    if node_id not in hostnames or node_id in results:
                        continue
                    if task.get("Status", {}).get("State") in TERMINAL | STARTED:
                        status, reason = classify(task)
                        results[node_id] = NodePull(node_id, hostnames[node_id], status, reason, time.time())
                if len(results) == len(hostnames):
                    break
                await asyncio.sleep(1)
        finally:
            await self._remove(name)
        for node_id, hostname in hostnames.items():
            results.setdefault(node_id, NodePull(node_id, hostname, "failed", "timed out while pulling", time.time()))
        return [results[node_id] for node_id in hostnames]

    async def _remove(self, name: str) -> None:
        try:
            await self.docker.call("remove_service", name)
        except docker.errors.NotFound:
            pass
