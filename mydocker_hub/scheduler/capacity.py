"""Will a class fit? Planned demand of overlapping sessions against what the Swarm nodes offer (pure).

Demand of a session = students × the environment's reservation (CPU reservation, or its limit when no
reservation is set; memory reservation, or its limit), per node pool.
Sessions that overlap in time add up. A pool's capacity = the sum over its ready, active nodes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ..environments.model import Environment, Session

DEFAULT_POOL = ""  # no node_pool: every node


@dataclass(frozen=True)
class NodeCapacity:
    node_id: str
    hostname: str
    cpus: float
    memory: int  # bytes
    pool: str  # value of the node-pool label ("" when unlabelled)
    ready: bool = True


@dataclass
class Verdict:
    environment: str
    session: Session
    pool: str
    fits: bool
    cpu_needed: float
    cpu_available: float
    memory_needed: int
    memory_available: int
    overlapping: list[str] = field(default_factory=list)  # other environments' sessions at the same time

    @property
    def message(self) -> str:
        if self.fits:
            return "fits"
        short = []
        if self.cpu_needed > self.cpu_available:
            short.append(f"CPU {self.cpu_needed:g} needed, {self.cpu_available:g} available")
        if self.memory_needed > self.memory_available:
            gib = 1024**3
            short.append(
                f"memory {self.memory_needed / gib:.1f} GiB needed, {self.memory_available / gib:.1f} GiB available"
            )
        pool = f"node pool {self.pool!r}" if self.pool else "the cluster"
        return (
            f"does not fit on {pool}: " + "; ".join(short) + ". Add nodes, lower the reservations or split the class."
        )


def per_student(env: Environment) -> tuple[float, int]:
    resources = env.resources
    cpu = resources.cpu_reservation or resources.cpu_limit or 0.0
    return float(cpu), int(resources.memory_reservation or resources.memory_limit or 0)


def _overlap(a: Session, b: Session) -> bool:
    return a.start < b.end and b.start < a.end


def verdicts(
    environments: list[Environment], nodes: list[NodeCapacity], now: dt.datetime, horizon: dt.timedelta
) -> list[Verdict]:
    """A verdict for every session that has not ended and starts within ``horizon``."""
    planned = [
        (env, session)
        for env in environments
        for session in env.sessions
        if session.end > now and session.start < now + horizon
    ]
    results = []
    for env, session in planned:
        pool = env.resources.node_pool or DEFAULT_POOL
        cpu_needed = memory_needed = 0.0
        overlapping = []
        for other_env, other in planned:
            if (other_env.resources.node_pool or DEFAULT_POOL) != pool or not _overlap(session, other):
                continue
            cpu, memory = per_student(other_env)
            cpu_needed += other.students * cpu
            memory_needed += other.students * memory
            if other is not session:
                overlapping.append(other_env.slug)
        eligible = [n for n in nodes if n.ready and (not pool or n.pool == pool)]
        cpu_available = sum(n.cpus for n in eligible)
        memory_available = sum(n.memory for n in eligible)
        results.append(
            Verdict(
                environment=env.slug,
                session=session,
                pool=pool,
                fits=cpu_needed <= cpu_available and memory_needed <= memory_available,
                cpu_needed=round(cpu_needed, 3),
                cpu_available=round(cpu_available, 3),
                memory_needed=int(memory_needed),
                memory_available=int(memory_available),
                overlapping=sorted(set(overlapping)),
            )
        )
    return sorted(results, key=lambda v: (v.session.start, v.environment))
