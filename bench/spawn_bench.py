"""Spawn benchmark: the same image started raw, by stock SwarmSpawner and by ours, N at once.

    .venv/bin/python bench/spawn_bench.py [--sizes 1,20,100] [--image mydocker/minimal:latest]

For each N it prints p50/p95/max of "request -> server answers", how many became ready, the time to stop
them all, then 1000 GET /hub/api/users, the hub's CPU seconds and peak RSS, and the ratios ours/raw and
ours/stock. Not a test: figures, not assertions. Everything it creates carries a unique prefix and is removed.

Fairness notes:
- raw: ``docker service create`` of the image running ``jupyter lab`` (same server code as the
  singleuser server, without hub auth) with a host-mode published port, timed until HTTP answers.
- stock: ``dockerspawner.SwarmSpawner`` with JupyterHub's and DockerSpawner's default timeouts and
  settings. The only change: this machine has no Swarm ingress routing mesh, so its port is published in
  host mode and read back from the task (``bench/stock_host_mode.py``), which stock cannot do by itself.
- ours: ``SwarmEnvironmentSpawner`` with the distribution's defaults.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.hubprocess import Hub, free_port  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> str:
    if not values:
        return "   n/a    n/a    n/a"
    return f"{percentile(values, 0.5):6.1f} {percentile(values, 0.95):6.1f} {max(values):6.1f}"


# -- raw ------------------------------------------------------------------------------------------
def run_raw(image: str, count: int, prefix: str, timeout: float = 600) -> dict:
    client = docker.APIClient(version="auto")
    ports = {}
    began = {}
    for i in range(count):
        port = free_port()  # a port nothing holds right now (fixed ports collide with ephemeral ones)
        name = f"{prefix}-raw-{i}"
        began[name] = time.monotonic()
        client.create_service(
            docker.types.TaskTemplate(
                container_spec=docker.types.ContainerSpec(
                    image=image,
                    command=[
                        "jupyter",
                        "lab",
                        "--no-browser",
                        "--ip=0.0.0.0",
                        "--port=8888",
                        "--IdentityProvider.token=bench",
                    ],
                    user="1000:100",
                ),
                restart_policy=docker.types.RestartPolicy(condition="on-failure", delay=1_000_000_000),
            ),
            name=name,
            endpoint_spec=docker.types.EndpointSpec(ports={port: (8888, "tcp", "host")}),
            labels={"org.mydocker.bench": prefix},
        )
        ports[name] = port
    durations = {}
    deadline = time.monotonic() + timeout
    while len(durations) < count and time.monotonic() < deadline:
        for name, port in ports.items():
            if name in durations:
                continue
            try:
                requests.get(f"http://127.0.0.1:{port}/api/status", timeout=1)
                durations[name] = time.monotonic() - began[name]
            except requests.RequestException:
                pass
        time.sleep(0.2)
    stop_began = time.monotonic()
    for name in ports:
        client.remove_service(name)
    while client.containers(all=True, filters={"name": f"{prefix}-raw"}):
        time.sleep(0.2)
    return {"ready": list(durations.values()), "stop": time.monotonic() - stop_began, "count": count}


# -- hubs -----------------------------------------------------------------------------------------
def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    return cpu, rss


def run_hub(kind: str, image: str, count: int, workdir: Path, prefix: str) -> dict:
    environments = {
        "bench.yaml": f"title: Bench\nimage: {image}\nhome: {{type: none}}\n",
    }
    extra = ""
    if kind == "stock":
        extra = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
c.JupyterHub.spawner_class = "stock_host_mode.HostModeSwarmSpawner"
c.SwarmSpawner.image = {image!r}
c.SwarmSpawner.name_template = "{prefix}-{{username}}"
c.SwarmSpawner.extra_create_kwargs = {{"labels": {{"org.mydocker.bench": {prefix!r}}}}}
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 30
c.JupyterHub.concurrent_spawn_limit = 100
c.JupyterHub.allow_named_servers = False
"""
    hub = Hub(workdir, prefix, environments=environments, extra_config=extra)
    hub.start()
    users = [f"bench{i}" for i in range(count)]
    for user in users:
        hub.api("POST", f"users/{user}")
    cpu0, _ = proc_stats(hub.process.pid)
    peak_rss = 0
    server = "" if kind == "stock" else "bench"
    began = {}

    def request_spawn(user):
        began[user] = time.monotonic()
        path = f"users/{user}/server" if kind == "stock" else f"users/{user}/servers/{server}"
        return hub.api("POST", path).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=min(count, 50)) as pool:
        list(pool.map(request_spawn, users))
    durations, failed = {}, set()
    deadline = time.monotonic() + 900
    while len(durations) + len(failed) < count and time.monotonic() < deadline:
        models = {m["name"]: m for m in hub.api("GET", "users").json()}
        for user in users:
            if user in durations or user in failed:
                continue
            servers = models.get(user, {}).get("servers", {})
            state = servers.get(server)
            if state and state.get("ready"):
                durations[user] = time.monotonic() - began[user]
            elif not state and time.monotonic() - began[user] > 5:
                failed.add(user)
        peak_rss = max(peak_rss, proc_stats(hub.process.pid)[1])
        time.sleep(0.2)
    # stop all at once
    stop_began = time.monotonic()

    def request_stop(user):
        path = f"users/{user}/server" if kind == "stock" else f"users/{user}/servers/{server}"
        return hub.api("DELETE", path).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=min(count, 50)) as pool:
        list(pool.map(request_stop, list(durations)))
    while True:
        models = hub.api("GET", "users").json()
        if not any(m.get("servers") for m in models):
            break
        if time.monotonic() - stop_began > 600:
            break
        time.sleep(0.25)
    stop_seconds = time.monotonic() - stop_began
    # 1000 GET /hub/api/users
    api_began = time.monotonic()
    session = requests.Session()
    session.headers["Authorization"] = f"token {hub.token}"
    for _ in range(1000):
        session.get(f"{hub.url}/hub/api/users", timeout=30)
    api_seconds = time.monotonic() - api_began
    cpu1, rss = proc_stats(hub.process.pid)
    hub.stop()
    return {
        "ready": list(durations.values()),
        "count": count,
        "stop": stop_seconds,
        "api1000": api_seconds,
        "cpu": cpu1 - cpu0,
        "rss": max(peak_rss, rss),
    }


def cleanup(prefix: str):
    client = docker.APIClient(version="auto")
    for service in client.services(filters={"label": [f"org.mydocker.bench={prefix}"]}):
        client.remove_service(service["ID"])
    for service in client.services(filters={"label": [f"org.mydocker.managed={prefix}"]}):
        client.remove_service(service["ID"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,20,100")
    parser.add_argument("--image", default="mydocker/minimal:latest")
    parser.add_argument("--kinds", default="raw,stock,ours")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    kinds = args.kinds.split(",")
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            for kind in kinds:
                prefix = f"mdb{secrets.token_hex(3)}"
                try:
                    if kind == "raw":
                        results[(kind, size)] = run_raw(args.image, size, prefix)
                    else:
                        workdir = Path(tmp) / f"{kind}-{size}"
                        workdir.mkdir()
                        results[(kind, size)] = run_hub(kind, args.image, size, workdir, prefix)
                finally:
                    cleanup(prefix)
                r = results[(kind, size)]
                print(
                    f"{kind:5} N={size:<3} ready {len(r['ready']):3}/{size:<3} p50/p95/max {summary(r['ready'])} s"
                    f"  stop all {r['stop']:6.1f} s",
                    flush=True,
                )
    print()
    print(
        "| N | kind | ready | p50 s | p95 s | max s | stop all s | 1000 GET /hub/api/users s | hub CPU s | hub RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        for kind in kinds:
            r = results.get((kind, size))
            if not r:
                continue
            p50, p95, peak = (
                percentile(r["ready"], 0.5),
                percentile(r["ready"], 0.95),
                max(r["ready"] or [float("nan")]),
            )
            hub_cols = f"{r['api1000']:.1f} | {r['cpu']:.1f} | {r['rss'] / 1e6:.0f}" if "api1000" in r else "- | - | -"
            print(
                f"| {size} | {kind} | {len(r['ready'])}/{size} | {p50:.1f} | {p95:.1f} | {peak:.1f} "
                f"| {r['stop']:.1f} | "
                f"{hub_cols} |"
            )
    print()
    for size in sizes:
        ours, raw, stock = (results.get((k, size)) for k in ("ours", "raw", "stock"))
        parts = []
        if ours and raw and ours["ready"] and raw["ready"]:
            parts.append(f"p50 ours/raw {statistics.median(ours['ready']) / statistics.median(raw['ready']):.2f}")
            parts.append(f"max ours/raw {max(ours['ready']) / max(raw['ready']):.2f}")
        if ours and stock and ours["ready"] and stock["ready"]:
            parts.append(f"max ours/stock {max(ours['ready']) / max(stock['ready']):.2f}")
        if ours and stock and stock["ready"] and stock["stop"]:
            parts.append(f"stop ours/stock {ours['stop'] / stock['stop']:.2f}")
        if stock and not stock["ready"]:
            parts.append(f"stock started none of {size}")
        print(f"N={size}: " + ", ".join(p for p in parts if p))


if __name__ == "__main__":
    main()
