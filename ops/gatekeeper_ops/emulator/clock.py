"""The emulator's clock: wall time read at every call, so tests can move it.

Lifecycle timing (``pending`` and ``deleting`` durations, the age-out of closed connections, the
consistency lag, notification delays) reads ``time.time()`` through here, never
``time.monotonic()``: a virtual clock (time-machine, or ``monkeypatch`` of ``now``) then moves the
emulator's world too.
"""

from __future__ import annotations

import time


def now() -> float:
    """Seconds since the epoch, looked up on every call (patchable)."""
    return time.time()
