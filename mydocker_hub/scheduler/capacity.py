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


def _active(planned: list[tuple[Environment, Session]], moment: dt.datetime) -> list[tuple[Environment, Session]]:
    return [(env, session) for env, session in planned if session.start <= moment < session.end]


def _demand(sessions: list[tuple[Environment, Session]]) -> tuple[float, float]:
    cpu = memory = 0.0
    for env, session in sessions:
        per_cpu, per_memory = per_student(env)
        cpu += session.students * per_cpu
        memory += session.students * per_memory
    return cpu, memory


def _pool_of(env: Environment) -> str:
    return env.resources.node_pool or DEFAULT_POOL


@dataclass
class _Load:
    """A pool at one moment: what its running sessions need, what its nodes offer them, who runs."""

    cpu_needed: float
    cpu_available: float
    memory_needed: float
    memory_available: float
    sessions: list[tuple[Environment, Session]]

    @property
    def fits(self) -> bool:
        return self.cpu_needed <= self.cpu_available and self.memory_needed <= self.memory_available


def verdicts(
    environments: list[Environment], nodes: list[NodeCapacity], now: dt.datetime, horizon: dt.timedelta
) -> list[Verdict]:
    """A verdict for every session that has not ended and starts within ``horizon``.

    Each session is checked at every moment of it when another one starts (the peaks): two classes that
    never meet are not added up. A node pool's sessions run on its nodes only; sessions without a pool run on
    any node, beside what the pools' own sessions take of their nodes."""
    planned = [
        (env, session)
        for env in environments
        for session in env.sessions
        if session.end > now and session.start < now + horizon
    ]
    ready = [n for n in nodes if n.ready]
    capacity: dict[str, tuple[float, float]] = {}
    for pool in {n.pool for n in ready} | {_pool_of(env) for env, _ in planned}:
        members = ready if pool == DEFAULT_POOL else [n for n in ready if n.pool == pool]
        capacity[pool] = (sum(n.cpus for n in members), sum(n.memory for n in members))

    def at(pool: str, moment: dt.datetime) -> _Load:
        active = _active(planned, moment)
        mine = [(env, session) for env, session in active if _pool_of(env) == pool]
        cpu_needed, memory_needed = _demand(mine)
        cpu_available, memory_available = capacity[pool]
        if pool == DEFAULT_POOL:  # the pools' sessions take their share of the nodes first
            for other in {_pool_of(env) for env, _ in active} - {DEFAULT_POOL}:
                other_cpu, other_memory = _demand([(e, s) for e, s in active if _pool_of(e) == other])
                cpu_available -= min(other_cpu, capacity[other][0])
                memory_available -= min(other_memory, capacity[other][1])
        return _Load(cpu_needed, cpu_available, memory_needed, memory_available, mine)

    results = []
    for env, session in planned:
        pool = _pool_of(env)
        moments = [session.start] + [s.start for _, s in planned if session.start < s.start < session.end]
        checks = [at(pool, moment) for moment in moments]
        worst_cpu = max(checks, key=lambda load: load.cpu_needed - load.cpu_available)
        worst_memory = max(checks, key=lambda load: load.memory_needed - load.memory_available)
        results.append(
            Verdict(
                environment=env.slug,
                session=session,
                pool=pool,
                fits=all(load.fits for load in checks),
                cpu_needed=round(worst_cpu.cpu_needed, 3),
                cpu_available=round(max(worst_cpu.cpu_available, 0.0), 3),
                memory_needed=int(worst_memory.memory_needed),
                memory_available=int(max(worst_memory.memory_available, 0.0)),
                overlapping=sorted({e.slug for e, other in worst_cpu.sessions if other is not session}),
            )
        )
    return sorted(results, key=lambda v: (v.session.start, v.environment))
