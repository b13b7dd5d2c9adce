"""Partitioned cookies (CHIPS) for pages framed by an LMS.

Browsers that block third-party cookies (Chromium here, Safari, Firefox's strict mode) still keep a cookie
set inside Moodle's iframe when it is ``SameSite=None; Secure; Partitioned``: it then lives only in that
Moodle's partition, which is exactly where an embedded session belongs. Python's ``http.cookies`` learns the
``Partitioned`` attribute in 3.14; this teaches it to older versions (the only change: one more flag).
"""

from __future__ import annotations

from http.cookies import Morsel


def enable_partitioned_cookies() -> None:
    """Let ``Morsel`` (hence tornado's ``set_cookie(..., partitioned=True)``) write ``Partitioned``."""
    if "partitioned" not in Morsel._reserved:  # Python < 3.14
        Morsel._reserved["partitioned"] = "Partitioned"
        Morsel._flags.add("partitioned")
