"""A class starting at once: N students start one environment file of the catalogue, unchanged.

    .venv/bin/python bench/class_bench.py [--students 100] [--environment python.yaml]

Unlike ``spawn_bench.py`` (one small image, compared with raw Docker and stock SwarmSpawner), this runs the
distribution's own default settings on a shipped environment (``environments/python.yaml``: JupyterLab
with the scientific Python stack, global home volume, 2 CPUs and 4 GB limits) as a class would use it. It
prints how many became ready, p50/max from the request until the proxy routes to the server, the time to
stop them all (until the hub lists no server), the hub's peak RSS and the node's memory in use at the
peak. Not a test: figures, not assertions. Everything it creates carries a unique prefix and is removed
(services, home volumes). The environment's image must have been built (``scripts/demo`` builds it).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from spawn_bench import cleanup, proc_stats, route_of  # noqa: E402

from tests.hubprocess import Hub  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def used_memory_mb() -> int:
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) for line in f}
    return (info["MemTotal"] - info["MemAvailable"]) // 1024


def run_class(students: int, environment_file: str) -> dict:
    prefix = "mdbcls" + secrets.token_hex(3)
    slug = Path(environment_file).stem
    environments = {environment_file: (REPO / "environments" / environment_file).read_text()}
    hub = Hub(
        Path(tempfile.mkdtemp()), prefix, environments=environments, extra_config='\nc.JupyterHub.log_level = "INFO"\n'
    )
    proxy_token = secrets.token_hex(16)
    hub.env["CONFIGPROXY_AUTH_TOKEN"] = proxy_token  # lets this benchmark read the proxy's routes
    routes_url = hub.env["MYDOCKER_PROXY_API_URL"] + "/api/routes"
    hub.start()
    try:
        users = [f"class{i}" for i in range(students)]
        for user in users:
            hub.api("POST", f"users/{user}")
        began: dict[str, float] = {}

        def request_start(user):
            began[user] = time.monotonic()
            return hub.api("POST", f"users/{user}/servers/{slug}").status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=min(students, 50)) as pool:
            list(pool.map(request_start, users))
        ready: dict[str, float] = {}
        failed: set[str] = set()
        peak_rss, peak_memory, listed_at = 0, 0, time.monotonic()
        deadline = time.monotonic() + 900
        while len(ready) + len(failed) < students and time.monotonic() < deadline:
            routes = requests.get(routes_url, headers={"Authorization": f"token {proxy_token}"}, timeout=30).json()
            for user in users:
                if user not in ready and route_of(user, slug) in routes:
                    ready[user] = time.monotonic() - began[user]
            if time.monotonic() - listed_at > 5:  # failed starts vanish from the hub's list
                listed_at = time.monotonic()
                models = {m["name"]: m for m in hub.api("GET", "users").json()}
                for user in users:
                    if user not in ready and not models.get(user, {}).get("servers", {}).get(slug):
                        failed.add(user)
            peak_rss = max(peak_rss, proc_stats(hub.process.pid)[1])
            peak_memory = max(peak_memory, used_memory_mb())
            time.sleep(0.5)
        stop_began = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(students, 50)) as pool:
            list(pool.map(lambda user: hub.api("DELETE", f"users/{user}/servers/{slug}").status_code, list(ready)))
        while any(m.get("servers") for m in hub.api("GET", "users").json()):
            time.sleep(0.25)
        return {
            "ready": sorted(ready.values()),
            "failed": len(failed),
            "stop": time.monotonic() - stop_began,
            "rss_mb": peak_rss / 1e6,
            "memory_mb": peak_memory,
        }
    finally:
        hub.stop()
        cleanup(prefix)
        client = docker.APIClient(version="auto")
        while client.containers(all=True, filters={"name": prefix}):
            time.sleep(1)
        for volume in client.volumes(filters={"name": prefix}).get("Volumes") or []:
            client.remove_volume(volume["Name"], force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--environment", default="python.yaml", help="a file of environments/")
    args = parser.parse_args()
    result = run_class(args.students, args.environment)
    times = result["ready"]
    print(
        f"class of {args.students} on {args.environment}: ready {len(times)}/{args.students} "
        f"(failed {result['failed']})  p50 {statistics.median(times):.1f} s  max {max(times):.1f} s  "
        f"stop all {result['stop']:.1f} s  hub RSS {result['rss_mb']:.0f} MB  node memory used {result['memory_mb']} MB"
        if times
        else f"class of {args.students}: none ready (failed {result['failed']})"
    )


if __name__ == "__main__":
    main()
