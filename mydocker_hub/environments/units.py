"""Units of environment profiles: sizes, durations and CPU counts as teachers write them."""

from __future__ import annotations

import math
import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)?B?\s*$", re.IGNORECASE)
_FACTORS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
MAX_BYTES = 2**62  # what Docker's 64-bit fields hold, with room
MAX_SECONDS = 366 * 86400
MIN_CPU = 0.01  # Docker's smallest CPU limit; less would be read as "no limit"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([hms])", re.IGNORECASE)


def parse_size(value) -> int:
    """``4G``, ``512Mi``, ``1.5G`` or a number of bytes -> bytes (K/M/G/T are powers of 1024, as in Docker)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size; write a size like 4G or 512M")
    if isinstance(value, int | float):
        if not math.isfinite(value) or not 0 < value <= MAX_BYTES:
            raise ValueError(f"{value!r} is not a positive size; write a size like 4G or 512M")
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size; write a number of bytes or a size like 4G or 512M")
    number, unit = float(match.group(1)), (match.group(2) or "").upper().rstrip("I")
    size = int(number * _FACTORS[unit])
    if not 0 < size <= MAX_BYTES:
        raise ValueError(f"{value!r} is not a positive size; write a size like 4G or 512M")
    return size


def parse_duration(value) -> int:
    """``20m``, ``1h30m``, ``90s`` or a number of minutes -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write minutes (20) or a duration like 20m, 1h30m, 90s")
    if isinstance(value, int | float):
        if not math.isfinite(value) or not 0 < value * 60 <= MAX_SECONDS:
            raise ValueError(
                f"{value!r} is not a duration between a second and a year; write minutes (20) or a duration like 20m"
            )
        return int(value * 60)
    text = str(value).strip().replace(" ", "")
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts).lower() != text.lower():
        raise ValueError(f"{value!r} is not a duration; write minutes (20) or a duration like 20m, 1h30m, 90s")
    factors = {"h": 3600, "m": 60, "s": 1}
    seconds = sum(float(number) * factors[unit.lower()] for number, unit in parts)
    if not 1 <= seconds <= MAX_SECONDS:
        raise ValueError(f"{value!r} is not a duration between a second and a year; write e.g. 20m or 8h")
    seconds = int(seconds)
    return seconds


def parse_cpu(value) -> float:
    """``2``, ``0.5``, ``"1.5"`` or ``"500m"`` (millicores) -> cores."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a CPU count; write a number of cores like 2 or 0.5, or 500m")
    try:
        if isinstance(value, str) and value.strip().endswith("m"):
            cores = float(value.strip()[:-1]) / 1000
        else:
            cores = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a CPU count; write a number of cores like 2 or 0.5, or 500m") from None
    if not MIN_CPU <= cores <= 1024:  # also refuses nan and inf
        raise ValueError(f"{value!r} is not a CPU count between 0.01 and 1024 cores; write e.g. 2 or 0.5")
    return cores
