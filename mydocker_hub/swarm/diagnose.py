"""Turn what Swarm says about a task into a reason code and a message a student can act on.

Pure functions over the task JSON of ``docker.APIClient.tasks()``; the reason codes label the
``mydocker_spawn_failures_total`` metric.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..i18n import Message

#: task states on the way to running, in order (Swarm's own vocabulary)
PENDING_STATES = ("new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting")
FAILED_STATES = ("failed", "rejected", "orphaned")
#: states of a task that is over (Swarm replaces it when the restart policy says so)
ENDED_STATES = FAILED_STATES + ("remove", "shutdown", "complete")


#: failures that another attempt cannot cure: the start fails at the first one
CERTAIN_REASONS = ("image_missing", "oom", "port_conflict")


#: a task that ended before its server answered: even exit code 0 ("complete") means the start failed
START_FAILED_STATES = FAILED_STATES + ("complete",)


def latest_failure(tasks: list[dict], image: str) -> tuple[Failure | None, int]:
    """(why the newest failed task failed, how many failed) among a fresh service's tasks, newest first."""
    failed = [task for task in tasks if task_state(task) in START_FAILED_STATES]
    return (diagnose_failed(failed[0], image) if failed else None), len(failed)


def ends_start(failure: Failure, failed_count: int, attempts: int) -> bool:
    """Whether a start gives up. A missing image, running out of memory or a taken port end it at once;
    any other failure (the program exited, the engine refused or lost the task) when ``attempts`` tasks
    have failed: a server that exits once because something it needed was briefly unreachable (the hub's
    API while a whole class starts) is started again by Swarm."""
    return failure.reason in CERTAIN_REASONS or failed_count >= max(1, attempts)


PORT_TAKEN = Message("A network port was taken on the server; please try again.")


@dataclass(frozen=True)
class Failure:
    reason: str  # short code: image_missing, no_resources, exited, oom, rejected, port_conflict
    message: Message  # for the student, in their language
    detail: str  # for the logs


def task_state(task: dict) -> str:
    return task.get("Status", {}).get("State", "unknown")


def _err(task: dict) -> str:
    status = task.get("Status", {})
    return status.get("Err") or status.get("Message") or ""


def diagnose_failed(task: dict, image: str) -> Failure:
    """Why a task that left the path to ``running`` failed."""
    err = _err(task)
    container = task.get("Status", {}).get("ContainerStatus", {}) or {}
    exit_code = container.get("ExitCode")
    lowered = err.lower()
    if (
        "no such image" in lowered
        or "pull access denied" in lowered
        or "manifest unknown" in lowered
        or ("not found" in lowered and "image" in lowered)
    ):
        return Failure(
            "image_missing",
            Message(
                "The image %(image)s of this environment is not available on the server. "
                "Ask the environment's teacher to build or publish it (or fix its name in the environment file).",
                image=image,
            ),
            err,
        )
    if "address already in use" in lowered or "port is already allocated" in lowered:
        return Failure("port_conflict", PORT_TAKEN, err)
    if exit_code == 137 or "oom" in lowered:
        return Failure(
            "oom",
            Message(
                "The environment ran out of memory while starting and was stopped. "
                "Ask its teacher to raise its memory limit."
            ),
            f"{err} (exit code {exit_code})",
        )
    code = exit_code if exit_code is not None else _exit_code_from(err)
    if str(code) in ("126", "127"):  # the shell's "not found" and "not executable" (commands start through /bin/sh)
        return Failure(
            "exited",
            Message(
                "A program this environment starts is not in its image, or cannot be run (exit code %(code)s). "
                "Ask its teacher to check the image and the command in the environment file.",
                code=code,
            ),
            err,
        )
    if exit_code not in (None, 0) or "non-zero exit" in lowered or task_state(task) == "complete":
        return Failure(
            "exited",
            Message(
                "The environment's program stopped right after starting (exit code %(code)s). "
                "Its teacher can see the container logs; try again later or contact them.",
                code=code,
            ),
            err,
        )
    if task_state(task) == "rejected":
        return Failure("rejected", Message("The server refused to start the environment: %(error)s", error=err), err)
    stopped = Message(
        "The environment stopped while starting (%(state)s): %(error)s", state=task_state(task), error=err
    )
    return Failure("failed", stopped, err)


def _exit_code_from(err: str) -> str:
    match = re.search(r"exit \((\d+)\)", err)
    return match.group(1) if match else "?"


def diagnose_pending(task: dict) -> Failure | None:
    """A pending task that cannot be scheduled (no node with the resources or labels), else None."""
    err = _err(task).lower()
    if "port already in use" in err or "port is already allocated" in err:
        return Failure("port_conflict", PORT_TAKEN, _err(task))
    if "insufficient resources" in err:
        return Failure(
            "no_resources",
            Message(
                "No server currently has enough free CPU, memory or GPU for this environment. "
                "Stop another of your environments or try again later; teachers can lower its reservations."
            ),
            _err(task),
        )
    if "constraint" in err or "no suitable node" in err:  # checked last: Swarm says this before every reason
        return Failure(
            "no_node",
            Message(
                "No server matches this environment's placement (node pool). "
                "Ask an administrator to add a node to that pool or fix the environment's node_pool."
            ),
            _err(task),
        )
    return None


#: (percent, message) shown on the spawn-pending page while a task is in a state ("preparing" names the image)
PROGRESS = {
    "new": (15, Message("Waiting for Swarm to accept the environment")),
    "allocated": (20, Message("Environment accepted by Swarm")),
    "pending": (25, Message("Waiting for a server with free resources")),
    "assigned": (35, Message("Assigned to a server")),
    "accepted": (40, Message("Accepted by the server")),
    "ready": (60, Message("Image ready, creating the container")),
    "starting": (70, Message("Starting the container")),
    "running": (80, Message("Container running, waiting for the environment to answer")),
}


def progress_message(state: str, image: str) -> tuple[int, Message]:
    """(percent, message) shown on the spawn-pending page for a task in ``state``."""
    if state == "preparing":
        return 50, Message("Preparing: downloading the image %(image)s if needed", image=image)
    return PROGRESS.get(state, (50, Message("Swarm reports: %(state)s", state=state)))
