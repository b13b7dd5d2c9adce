"""Prometheus metrics of mydocker-hub, registered in the default registry so that they appear beside
JupyterHub's own at ``/hub/metrics``."""

from prometheus_client import Counter, Histogram

SPAWN_BUCKETS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, float("inf"))

SPAWN_DURATION = Histogram(
    "mydocker_spawn_duration_seconds",
    "Time to start an environment, by environment and phase "
    "(scheduling: until a node accepted it; pull: image download and container creation; "
    "start: until the container runs; server_ready: until the server answers; total).",
    ["environment", "phase"],
    buckets=SPAWN_BUCKETS,
)

SPAWN_FAILURES = Counter(
    "mydocker_spawn_failures_total",
    "Environment starts that failed, by environment and reason (from Swarm: image_missing, no_resources, "
    "no_node, exited, oom, rejected, failed, port_conflict; from the hub: no_port, engine_unreachable, "
    "too_many_running, no_environment, forbidden, closed, stopped, name_clash; anything else: error).",
    ["environment", "reason"],
)
