"""Spawn benchmark: the same image started raw, by stock SwarmSpawner and by ours, N at once.

    .venv/bin/python bench/spawn_bench.py [--sizes 1,20,100] [--image mydocker/minimal:latest]

For each N it prints p50/p95/max of "request -> server answers", how many became ready, the time to stop
them all ("stop all": until the hub lists no server, or for raw until the engine has taken every removal;
"released": until no container is left, their CPU and memory free), then 1000 GET /hub/api/users, the
hub's CPU seconds and peak RSS, and the ratios ours/raw and ours/stock. Not a test: figures, not
assertions. Everything it creates carries a unique prefix and is removed.

Fairness notes:
- raw: ``docker service create`` of the image with its own command (``jupyterhub-singleuser``, the server
  code every hub-started server runs) and a host-mode published port, timed until HTTP answers. That
  command asks a hub for its version before it listens: a stub in this process answers (one request per
  server, nothing else), with the environment variables a spawner would set. The ratios use this row.
- raw-lab: the same image running plain ``jupyter lab`` (no hub extension), for reference: the difference
  with raw is what ``jupyterhub-singleuser`` itself costs, whichever spawner starts it.
- stock: ``dockerspawner.SwarmSpawner`` with JupyterHub's and DockerSpawner's default timeouts and
  settings. The only change: this machine has no Swarm ingress routing mesh, so its port is published in
  host mode and read back from the task (``bench/stock_host_mode.py``), which stock cannot do by itself.
- stock-patient: the same, with our start and HTTP timeouts (600 s, 300 s) instead of JupyterHub's
  (60 s, 30 s): stock's own speed for a class that it would otherwise abandon, and its stopping.
- ours: ``SwarmEnvironmentSpawner`` with the distribution's defaults.
- floor: JupyterHub with a spawner that does no work (``no_work_spawner.py``): JupyterHub's own cost.
- <kind>-class: the servers stopped by one request for the class instead of one DELETE per server.
- both hubs log at INFO, JupyterHub's default (the test harness's DEBUG is turned off).
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
from mydocker_hub.config import docker_bridge_gateway  # noqa: E402
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
class VersionStub:
    """What ``jupyterhub-singleuser`` asks a hub before it starts: ``GET <api>`` answering with the version.

    A process of its own, so that a hundred servers asking at once do not wait for this one's probes.
    """

    SERVER = """
import http.server, json, sys
version = sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"version": version}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-JupyterHub-Version", version)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer((sys.argv[1], 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

    def __init__(self, host: str):
        import subprocess

        import jupyterhub

        self.process = subprocess.Popen(
            [sys.executable, "-c", self.SERVER, host, jupyterhub.__version__], stdout=subprocess.PIPE, text=True
        )
        self.url = f"http://{host}:{int(self.process.stdout.readline())}/hub/api"

    def close(self):
        self.process.terminate()
        self.process.wait()


def answers(port: int, path: str) -> bool:
    """Whether an HTTP server answers on the port (any status), as cheaply as the hub's own probe."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def singleuser_env(api_url: str, user: str) -> dict[str, str]:
    """The variables a spawner gives ``jupyterhub-singleuser`` (no OAuth happens: nobody logs in)."""
    prefix = f"/user/{user}/"
    return {
        "JUPYTERHUB_API_URL": api_url,
        "JUPYTERHUB_API_TOKEN": secrets.token_hex(16),
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{user}",
        "JUPYTERHUB_USER": user,
        "JUPYTERHUB_SERVER_NAME": "",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888" + prefix,
        "JUPYTERHUB_OAUTH_CALLBACK_URL": prefix + "oauth_callback",
        "JUPYTERHUB_OAUTH_SCOPES": "[]",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": "[]",
        "JUPYTERHUB_HOST": "",
    }


def run_raw(image: str, count: int, prefix: str, plain_lab: bool = False, rounds: int = 1) -> dict:
    results = [run_raw_round(image, count, f"{prefix}-{r}", prefix, plain_lab) for r in range(rounds)]
    return {
        "ready": [d for r in results for d in r["ready"]],
        "stop": statistics.median(r["stop"] for r in results),
        "released": statistics.median(r["released"] for r in results),
        "count": count * rounds,
    }


def run_raw_round(image: str, count: int, prefix: str, label: str, plain_lab: bool, timeout: float = 600) -> dict:
    client = docker.APIClient(version="auto")
    stub = None if plain_lab else VersionStub(docker_bridge_gateway())
    ports, paths = {}, {}
    began = {}
    try:
        for i in range(count):
            port = free_port()  # a port nothing holds right now (fixed ports collide with ephemeral ones)
            name = f"{prefix}-raw-{i}"
            if plain_lab:
                command = ["jupyter", "lab", "--no-browser", "--ip=0.0.0.0", "--port=8888"]
                command.append("--IdentityProvider.token=bench")
                env, paths[name] = None, "/api/status"
            else:
                command = None  # the image's own: jupyterhub-singleuser --ip=0.0.0.0 --port=8888
                env, paths[name] = singleuser_env(stub.url, f"bench{i}"), f"/user/bench{i}/api/status"
            began[name] = time.monotonic()
            client.create_service(
                docker.types.TaskTemplate(
                    container_spec=docker.types.ContainerSpec(image=image, command=command, env=env, user="1000:100"),
                    restart_policy=docker.types.RestartPolicy(condition="on-failure", delay=1_000_000_000),
                ),
                name=name,
                endpoint_spec=docker.types.EndpointSpec(ports={port: (8888, "tcp", "host")}),
                labels={"org.mydocker.bench": label},
            )
            ports[name] = port
        durations = {}
        deadline = time.monotonic() + timeout
        while len(durations) < count and time.monotonic() < deadline:
            for name, port in ports.items():
                if name in durations:
                    continue
                if answers(port, paths[name]):
                    durations[name] = time.monotonic() - began[name]
            time.sleep(0.2)  # the same resolution as the hubs' readiness reading
    finally:
        if stub:
            stub.close()
    stop_began = time.monotonic()
    for name in ports:
        client.remove_service(name)
    stopped = time.monotonic() - stop_began  # the engine has taken every removal
    released = wait_until_released(client, f"{prefix}-raw", stop_began)
    return {"ready": list(durations.values()), "stop": stopped, "released": released, "count": count}


def wait_until_released(client: docker.APIClient, name_prefix: str, since: float) -> float:
    """Seconds from `since` until no container named with this prefix is left (their CPU and memory free)."""
    while client.containers(all=True, filters={"name": name_prefix}):
        time.sleep(0.2)
    return time.monotonic() - since


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


def engine_cpu() -> float:
    """CPU seconds used so far by dockerd and containerd, with the children they waited for (runc...).

    Container shims are not counted (they are nobody's waited-for children once their container ends).
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() not in ("dockerd", "containerd"):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        total += sum(int(value) for value in fields[11:15]) / ticks
    return total


def route_of(user: str, server: str) -> str:
    """The proxy route of a user's server, as JupyterHub adds it."""
    return f"/user/{user}/{server}" if server else f"/user/{user}"


def run_hub(kind: str, image: str, count: int, workdir: Path, prefix: str, rounds: int = 1) -> dict:
    # "<kind>-class": the same hub, its servers stopped by one request for the whole class
    class_stop = kind.endswith("-class")
    kind = kind.removesuffix("-class")
    environments = {
        "bench.yaml": f"title: Bench\nimage: {image}\nhome: {{type: none}}\n",
    }
    extra = '\nc.JupyterHub.log_level = "INFO"\n'  # the default; the test harness asks for DEBUG
    stub = None
    if kind == "floor":
        # JupyterHub alone: a spawner that does nothing, its servers one shared stub process
        stub = VersionStub("127.0.0.1")
        extra += f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
c.JupyterHub.spawner_class = "no_work_spawner.NoWorkSpawner"
c.NoWorkSpawner.stub_url = {stub.url.removesuffix("/hub/api")!r}
c.JupyterHub.concurrent_spawn_limit = 100
"""
    elif kind.startswith("stock"):
        # "stock": JupyterHub's default timeouts; "stock-patient": ours (600 s start, 300 s HTTP), so that a
        # class of 100 does start and stock's own speed (and its stopping) can be compared
        start_timeout, http_timeout = (600, 300) if kind == "stock-patient" else (60, 30)
        extra += f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
c.JupyterHub.spawner_class = "stock_host_mode.HostModeSwarmSpawner"
c.SwarmSpawner.image = {image!r}
c.SwarmSpawner.name_template = "{prefix}-{{username}}"
c.SwarmSpawner.extra_create_kwargs = {{"labels": {{"org.mydocker.bench": {prefix!r}}}}}
c.Spawner.start_timeout = {start_timeout}
c.Spawner.http_timeout = {http_timeout}
c.JupyterHub.concurrent_spawn_limit = 100
c.JupyterHub.allow_named_servers = False
"""
    hub = Hub(workdir, prefix, environments=environments, extra_config=extra)
    proxy_token = secrets.token_hex(16)
    hub.env["CONFIGPROXY_AUTH_TOKEN"] = proxy_token  # lets this benchmark read the proxy's routes
    routes_url = hub.env["MYDOCKER_PROXY_API_URL"] + "/api/routes"
    hub.start()
    users = [f"bench{i}" for i in range(count)]
    for user in users:
        hub.api("POST", f"users/{user}")
    cpu0, _ = proc_stats(hub.process.pid)
    peak_rss = 0
    default_server = kind.startswith("stock")
    server = "" if default_server else "bench"
    path = "users/{}/server" if default_server else "users/{}/servers/" + server
    durations, stop_times, release_times = [], [], []

    for _ in range(rounds):
        began = {}

        refused = {}

        def request_spawn(user, began=began, refused=refused):
            began[user] = time.monotonic()
            response = hub.api("POST", path.format(user))
            if response.status_code >= 400:
                refused[user] = f"{response.status_code} {response.text[:200]}"
            return response.status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=min(count, 50)) as pool:
            list(pool.map(request_spawn, users))
        ready, failed = {}, set()
        deadline = time.monotonic() + 900
        listed_at = time.monotonic()
        while len(ready) + len(failed) < count and time.monotonic() < deadline:
            # ready = the proxy routes to the server: what a student's browser needs. Reading the proxy's
            # table costs the hub nothing; listing every user through the hub's API costs it ~15 ms of CPU
            # a call, a load of this benchmark's own that raw starts would not pay
            routes = requests.get(routes_url, headers={"Authorization": f"token {proxy_token}"}, timeout=30).json()
            for user in users:
                if user not in ready and user not in failed and route_of(user, server) in routes:
                    ready[user] = time.monotonic() - began[user]
            if time.monotonic() - listed_at > 5:  # failed starts vanish from the hub's list
                listed_at = time.monotonic()
                models = {m["name"]: m for m in hub.api("GET", "users").json()}
                for user in users:
                    state = models.get(user, {}).get("servers", {}).get(server)
                    if user not in ready and not state and time.monotonic() - began[user] > 5:
                        failed.add(user)
            peak_rss = max(peak_rss, proc_stats(hub.process.pid)[1])
            time.sleep(0.2)
        durations.extend(ready.values())
        if failed or len(ready) < count:
            # say why: the hub's own log lines about the servers that did not start
            missing = sorted(set(users) - set(ready))
            log_copy = Path(tempfile.gettempdir()) / f"{prefix}-hub.log"
            log_copy.write_text(hub.log())
            print(f"{kind}: {len(missing)} not ready ({', '.join(missing[:5])}...); hub log kept in {log_copy}")
            for user, answer in list(refused.items())[:5]:
                print(f"    POST for {user} answered {answer}")
            for line in hub.log().splitlines():
                if any(f" {u}:" in line or f"/{u}/" in line for u in missing[:3]) and line[:3] in ("[E ", "[W "):
                    print("   ", line[:300])
        # stop all at once
        stop_began = time.monotonic()
        if class_stop:
            response = hub.api("POST", f"mydocker/environments/{server}/stop")
            assert response.status_code in (200, 202), response.text
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(count, 50)) as pool:
                list(pool.map(lambda user: hub.api("DELETE", path.format(user)).status_code, list(ready)))
        while time.monotonic() - stop_began < 600:
            if not any(m.get("servers") for m in hub.api("GET", "users").json()):
                break
            time.sleep(0.25)
        stop_times.append(time.monotonic() - stop_began)
        release_times.append(wait_until_released(docker.APIClient(version="auto"), prefix, stop_began))
        if rounds > 1:
            # the next round starts on a node without this round's services
            while docker.APIClient(version="auto").services(filters={"label": [f"org.mydocker.managed={prefix}"]}):
                time.sleep(0.25)
    stop_seconds = statistics.median(stop_times) if ready else 0.0
    released_seconds = statistics.median(release_times) if ready else 0.0
    # 1000 GET /hub/api/users
    api_began = time.monotonic()
    session = requests.Session()
    session.headers["Authorization"] = f"token {hub.token}"
    for _ in range(1000):
        session.get(f"{hub.url}/hub/api/users", timeout=30)
    api_seconds = time.monotonic() - api_began
    cpu1, rss = proc_stats(hub.process.pid)
    hub.stop()
    if stub:
        stub.close()
    return {
        "ready": durations,
        "count": count * rounds,
        "stop": stop_seconds,
        "released": released_seconds,
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
    # the hub removes a stopped server's secrets a few seconds later, unless it has exited meanwhile
    deadline = time.monotonic() + 60
    for secret in client.secrets(filters={"label": [f"org.mydocker.managed={prefix}"]}):
        while True:
            try:
                client.remove_secret(secret["ID"])
                break
            except docker.errors.APIError:  # still in use by a container being removed
                if time.monotonic() > deadline:
                    break
                time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,20,100")
    parser.add_argument("--image", default="mydocker/minimal:latest")
    parser.add_argument("--kinds", default="raw,raw-lab,stock,stock-patient,ours,ours-class,floor,floor-class")
    parser.add_argument(
        "--small-rounds",
        type=int,
        default=5,
        help="rounds for N < 10 (one start is noisy; the medians are printed); larger N run once",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    kinds = args.kinds.split(",")
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            for kind in kinds:
                prefix = f"mdb{secrets.token_hex(3)}"
                rounds = args.small_rounds if size < 10 else 1
                engine_before = engine_cpu()
                try:
                    if kind in ("raw", "raw-lab"):
                        results[(kind, size)] = run_raw(args.image, size, prefix, kind == "raw-lab", rounds)
                    else:
                        workdir = Path(tmp) / f"{kind}-{size}"
                        workdir.mkdir()
                        results[(kind, size)] = run_hub(kind, args.image, size, workdir, prefix, rounds)
                finally:
                    cleanup(prefix)
                r = results[(kind, size)]
                r["engine"] = engine_cpu() - engine_before
                print(
                    f"{kind:13} N={size:<3} ready {len(r['ready']):3}/{r['count']:<3} "
                    f"p50/p95/max {summary(r['ready'])} s"
                    f"  stop all {r['stop']:6.1f} s  released {r['released']:6.1f} s  engine CPU {r['engine']:6.1f} s",
                    flush=True,
                )
    print()
    print(
        "| N | kind | ready | p50 s | p95 s | max s | stop all s | released s | engine CPU s "
        "| 1000 GET /hub/api/users s | hub CPU s | hub RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
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
                f"| {size} | {kind} | {len(r['ready'])}/{r['count']} | {p50:.1f} | {p95:.1f} | {peak:.1f} "
                f"| {r['stop']:.1f} | {r['released']:.1f} | {r['engine']:.1f} | "
                f"{hub_cols} |"
            )
    print()
    for size in sizes:
        print(f"N={size}: " + ", ".join(ratios(results, size)))


def ratios(results: dict, size: int) -> list[str]:
    """Ours (and ours-class) against raw and the stock kinds that ran at this size."""
    parts = []
    raw = results.get(("raw", size))
    for mine in ("ours", "ours-class"):
        ours = results.get((mine, size))
        if not (ours and ours["ready"]):
            continue
        if raw and raw["ready"]:
            parts.append(f"p50 {mine}/raw {statistics.median(ours['ready']) / statistics.median(raw['ready']):.2f}")
            parts.append(f"max {mine}/raw {max(ours['ready']) / max(raw['ready']):.2f}")
            parts.append(f"released {mine}/raw {ours['released'] / raw['released']:.2f}")
        for stock_kind in ("stock", "stock-patient"):
            stock = results.get((stock_kind, size))
            if not stock:
                continue
            if stock["ready"] and len(stock["ready"]) == stock["count"]:
                parts.append(f"max {mine}/{stock_kind} {max(ours['ready']) / max(stock['ready']):.2f}")
            if stock["ready"] and stock["stop"]:
                stopped = f" (it stopped {len(stock['ready'])})" if len(stock["ready"]) < stock["count"] else ""
                parts.append(f"stop {mine}/{stock_kind} {ours['stop'] / stock['stop']:.2f}{stopped}")
                parts.append(f"released {mine}/{stock_kind} {ours['released'] / stock['released']:.2f}{stopped}")
    for stock_kind in ("stock", "stock-patient"):
        stock = results.get((stock_kind, size))
        if stock and len(stock["ready"]) < stock["count"]:
            parts.append(f"{stock_kind} started {len(stock['ready'])} of {stock['count']}")
        if not (stock and stock["ready"] and stock["stop"]):
            continue
        for floor in ("floor", "floor-class"):
            measured = results.get((floor, size))
            if measured and measured["ready"]:
                parts.append(f"stop {floor}/{stock_kind} {measured['stop'] / stock['stop']:.2f}")
    return parts


if __name__ == "__main__":
    main()
