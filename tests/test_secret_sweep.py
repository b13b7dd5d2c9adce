"""Secrets left by a hub that exited before removing them are swept, on a real Swarm."""

import asyncio
import secrets

import docker

from mydocker_hub.swarm.client import AsyncDocker
from mydocker_hub.swarm.specs import MANAGED_LABEL, SECRET_SERVICE_LABEL
from mydocker_hub.swarm.watcher import SwarmWatcher
from tests.hubprocess import TEST_IMAGE


def test_orphan_secrets_are_removed_at_the_second_sweep_and_live_ones_kept(docker_api, run_prefix):
    label = f"{run_prefix}w{secrets.token_hex(2)}"
    live_service = f"{label}-alice--lab"

    def secret(service):
        return docker_api.create_secret(
            name=f"{service}-pw-{secrets.token_hex(4)}",
            data=b"x",
            labels={MANAGED_LABEL: label, SECRET_SERVICE_LABEL: service},
        )["ID"]

    docker_api.create_service(
        docker.types.TaskTemplate(
            container_spec=docker.types.ContainerSpec(image=TEST_IMAGE, command=["sleep", "600"])
        ),
        name=live_service,
        labels={MANAGED_LABEL: label},
    )
    try:
        kept, orphan = secret(live_service), secret(f"{label}-bob--lab")

        async def sweep_twice():
            watcher = SwarmWatcher(AsyncDocker(max_workers=2), label)
            await watcher.refresh()
            first = await watcher.sweep_orphan_secrets()
            remaining_after_first = {s["ID"] for s in docker_api.secrets(filters={"label": f"{MANAGED_LABEL}={label}"})}
            second = await watcher.sweep_orphan_secrets()
            return first, remaining_after_first, second

        first, remaining_after_first, second = asyncio.run(sweep_twice())
        assert first == 0 and {kept, orphan} <= remaining_after_first  # a start may be about to use it
        assert second == 1
        remaining = {s["ID"] for s in docker_api.secrets(filters={"label": f"{MANAGED_LABEL}={label}"})}
        assert remaining == {kept}
    finally:
        docker_api.remove_service(live_service)
        for s in docker_api.secrets(filters={"label": f"{MANAGED_LABEL}={label}"}):
            try:
                docker_api.remove_secret(s["ID"])
            except docker.errors.APIError:
                pass
