"""Will a class fit? Planned demand of overlapping sessions against what the Swarm nodes offer (pure).

Demand of a session = students × the environment's reservation (CPU reservation, or its limit when no
reservation is set; memory reservation, or its limit), per node pool.
Sessions that overlap in time add up. A pool's capacity = the sum over its ready, active nodes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ..environments.model import Environment, Session
from ..i18n import Message

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
        """In English (the log, the JSON report)."""
        return str(self.explanation())

    def explanation(self) -> Message:
        """What the page says, in its reader's language: fits, or what is short and what to do."""
        if self.fits:
            return Message("fits")
        short: list[Message] = []
        if self.cpu_needed > self.cpu_available:
            short.append(
                Message(
                    "CPU %(needed)s needed, %(available)s available",
                    needed=_decimal(self.cpu_needed, "g"),
                    available=_decimal(self.cpu_available, "g"),
                )
            )
        if self.memory_needed > self.memory_available:
            gib = 1024**3
            short.append(
                Message(
                    "memory %(needed)s GiB needed, %(available)s GiB available",
                    needed=_decimal(self.memory_needed / gib),
                    available=_decimal(self.memory_available / gib),
                )
            )
        where = Message("node pool %(pool)s", pool=repr(self.pool)) if self.pool else Message("the cluster")
        together = Message(" (with %(others)s at the same time)", others=", ".join(self.overlapping))
        return Message(
            "does not fit on %(where)s%(together)s: %(short)s. Add nodes, give the environment less CPU or memory "
            "(its reservations, or its limits where it sets no reservation) or split the class.",
            where=where,
            together=together if self.overlapping else "",
            short=lambda language: (" ; " if language == "fr" else "; ").join(
                part.in_language(language) for part in short
            ),
        )


def _decimal(value: float, form: str = ".1f"):
    """``value`` (one decimal by default), written as the reader's language writes it (30.5, 30,5)."""
    return lambda language: format(value, form).replace(".", "," if language == "fr" else ".")


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
