"""Pre-pull benchmark: the first spawn of an image that is not on the node, on demand vs after the
scheduler's pre-pull, compared with a warm spawn (image already there), in one run.

    .venv/bin/python bench/prepull_bench.py [--rounds 3] [--layer-mb 200]

Each round builds a fresh image (the test image plus a layer of random bytes, so nothing is cached),
pushes it to a registry on loopback (Debian's docker-registry) and removes it from the node. Then:
- cold: a teacher starts it through the hub; the node pulls it during the spawn;
- after pre-pull: the image is removed again, ``Scheduler.tick`` runs 25 minutes before a session (clock
  moved by a parameter), then the teacher starts it;
- warm: started again with the image in place.
Prints seconds from the request until the hub reports the server ready. Goal: after pre-pull ≤ 1.1× warm.
Not a test: figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mydocker_hub.scheduler.core import HubClient, Scheduler  # noqa: E402
from mydocker_hub.scheduler.prepull import PrePuller  # noqa: E402
from mydocker_hub.swarm.client import AsyncDocker  # noqa: E402
from tests.hubprocess import TEST_IMAGE, Hub  # noqa: E402
from tests.registry import Registry  # noqa: E402


def sh(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {result.stderr}")
    return result.stdout


def remove_image(image: str) -> None:
    """Remove the image once Swarm has removed the stopped server's container (it does so asynchronously)."""
    for _ in range(120):
        if not sh("docker", "ps", "-aq", "--filter", f"ancestor={image}").strip():
            break
        time.sleep(0.5)
    sh("docker", "rmi", image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layer-mb", type=int, default=200)
    options = parser.parse_args()
    prefix = f"mdb{secrets.token_hex(3)}"
    workdir = Path(tempfile.mkdtemp(prefix="prepull-bench-"))
    registry = Registry(workdir)
    start = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    hub = Hub(workdir, prefix, environments={})
    hub.start()
    hub.ensure_user("teacher")
    hub.login("teacher")
    results: dict[str, list[float]] = {"cold (on demand)": [], "after pre-pull": [], "warm": []}
    try:
        for round_number in range(options.rounds):
            image = f"{registry.host}/bench-course:{prefix}-{round_number}"
            dockerfile = (
                f"FROM {TEST_IMAGE}\nUSER 0\n"
                f"RUN head -c {options.layer_mb * 1000 * 1000} /dev/urandom > /opt/course-data\nUSER 1000\n"
            )
            sh("docker", "build", "-q", "-t", image, "-", stdin=dockerfile)
            sh("docker", "push", "-q", image)
            sh("docker", "rmi", image)
            slug = f"course{round_number}"
            end = start + dt.timedelta(hours=2)
            (hub.environments / f"{slug}.yaml").write_text(
                f'title: Course\nimage: {image}\nsessions:\n  - {{start: "{start.isoformat()}", '
                f'end: "{end.isoformat()}", students: 30}}\n'
            )
            results["cold (on demand)"].append(hub.spawn("teacher", slug))
            hub.stop_server("teacher", slug)
            remove_image(image)
            scheduler = Scheduler(
                environments_dir=str(hub.environments),
                hub=HubClient(f"{hub.url}/hub/api", hub.token),
                prepuller=PrePuller(AsyncDocker.shared(4), label=prefix),
                state_file=str(workdir / f"state-{round_number}.json"),
            )
            asyncio.run(scheduler.tick(now=start - dt.timedelta(minutes=25)))
            results["after pre-pull"].append(hub.spawn("teacher", slug))
            hub.stop_server("teacher", slug)
            results["warm"].append(hub.spawn("teacher", slug))
            hub.stop_server("teacher", slug)
            remove_image(image)
    finally:
        hub.stop()
        registry.stop()
        subprocess.run(["docker", "volume", "prune", "-f", "--filter", f"label=org.mydocker.managed={prefix}"])
    print(f"Image: {TEST_IMAGE} + a {options.layer_mb} MB layer, from a registry on loopback; {options.rounds} rounds")
    print(f"{'spawn':<20} {'median s':>9} {'max s':>7}")
    for kind, values in results.items():
        print(f"{kind:<20} {statistics.median(values):9.1f} {max(values):7.1f}")
    warm = statistics.median(results["warm"])
    print(f"after pre-pull / warm = {statistics.median(results['after pre-pull']) / warm:.2f} (goal ≤ 1.10)")
    print(f"cold / warm = {statistics.median(results['cold (on demand)']) / warm:.2f}")


if __name__ == "__main__":
    main()
