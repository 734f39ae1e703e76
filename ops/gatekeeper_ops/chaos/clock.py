"""One virtual clock for a whole chaos run: moto, the handlers and the harness read the same time.

time-machine freezes `time.time()` / `datetime.now()` (moto's SQS visibility and retention, the
decision service's staleness test, decision timestamps) at a chosen instant; the run moves it on
explicitly. Sleeps move it on too instead of waiting: botocore's retry back-off
(`botocore.endpoint` sleeps between attempts) and the decider's pauses between re-reads of a
connection EC2 does not list yet (the wiring's `sleep`, given to services built in the block). The
decider's per-connection writes (the wiring's `fan_out`) run one after another.
`time.monotonic()` and `time.perf_counter()` are left real, so wall seconds can still be measured.
"""

from __future__ import annotations

import contextlib
import time
import types
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from unittest import mock

import botocore.endpoint
import time_machine

from gatekeeper.wiring import services

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def one_after_another(tasks: Sequence[Callable[[], None]]) -> None:
    """The decider's fan-out on this clock: a call takes no virtual time here, and one thread keeps
    the run deterministic by seed (the faults are drawn in call order)."""
    for task in tasks:
        task()


class VirtualClock:
    def __init__(self, start: datetime = START) -> None:
        self.start = start
        self.slept = 0.0  # seconds spent in (virtual) sleeps: back-off of retries
        self._traveller: time_machine.Traveller | None = None

    @contextlib.contextmanager
    def running(self) -> Iterator[VirtualClock]:
        """Freeze time at `start`, and make botocore's retry sleeps and the services' waits virtual,
        for the block (services built before it keep theirs: the run builds its own inside)."""
        travel = time_machine.travel(self.start, tick=False)
        self._traveller = travel.start()
        virtual = types.SimpleNamespace(sleep=self.sleep, time=time.time, monotonic=time.monotonic)
        try:
            with (
                mock.patch.object(botocore.endpoint, "time", virtual),
                mock.patch.object(services, "sleep", self.sleep),
                mock.patch.object(services, "fan_out", one_after_another),
            ):
                yield self
        finally:
            travel.stop()
            self._traveller = None

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the start."""
        return (datetime.now(UTC) - self.start).total_seconds()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"the clock does not go back ({seconds} s)")
        if self._traveller is None:
            raise RuntimeError("the virtual clock is not running")
        self._traveller.shift(seconds)

    def advance_to(self, elapsed: float) -> None:
        """Move on to `elapsed` seconds after the start (no-op when already there)."""
        if elapsed > self.elapsed:
            self.advance(elapsed - self.elapsed)

    def sleep(self, seconds: float) -> None:
        self.slept += max(0.0, seconds)
        self.advance(max(0.0, seconds))
