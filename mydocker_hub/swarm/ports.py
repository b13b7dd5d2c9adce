"""Host ports for host-mode publishing (the Swarm ingress routing mesh is not assumed)."""

import random


class PortRangeExhausted(Exception):
    """No free port is left in the configured range."""


def parse_port_range(text: str) -> range:
    """``"30000-30999"`` -> ``range(30000, 31000)``; raise ValueError with the expected form otherwise."""
    try:
        low_text, high_text = text.split("-", 1)
        low, high = int(low_text), int(high_text)
    except ValueError:
        raise ValueError(f"port range {text!r} is not of the form LOW-HIGH, e.g. 30000-30999") from None
    if not 1024 <= low <= high <= 65535:
        raise ValueError(f"port range {text!r} must lie within 1024-65535, LOW <= HIGH")
    return range(low, high + 1)


def pick_free_ports(port_range: range, in_use: set[int], count: int, rng=random) -> list[int]:
    """``count`` distinct ports of ``port_range`` not in ``in_use``, chosen at random.

    Random choice keeps two hubs (or two restarts) that have not yet seen each other's services from
    colliding on the lowest free port.
    """
    if count == 0:
        return []
    free = len(port_range) - sum(1 for port in in_use if port in port_range)
    if free < count:
        raise PortRangeExhausted(
            f"only {free} free ports left in {port_range.start}-{port_range.stop - 1}, {count} needed"
        )
    chosen: list[int] = []
    while len(chosen) < count:
        port = rng.randrange(port_range.start, port_range.stop)
        if port not in in_use and port not in chosen:
            chosen.append(port)
    return chosen
