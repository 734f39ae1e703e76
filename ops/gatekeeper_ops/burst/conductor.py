"""Lambda's concurrency on one virtual clock: concurrent invocations as threads, run one at a time
in virtual-time order (a discrete-event simulation).

Each invocation the local Lambda service dispatches runs in a thread of its own. Only one thread
runs at once; it runs until a scheduling point, where it parks with a wake-up time:
- every AWS call attempt (botocore's `Endpoint._do_get_response`) wakes `call_latency` later, so
  invocations dispatched together reach EC2 at the same virtual instant, in turn;
- every sleep (botocore's retry back-off, the wiring's `sleep`, a batching window) wakes after it,
  delaying that invocation only, not the world.
The conductor (the harness's thread) moves the clock to the earliest wake-up and resumes that
thread. An invocation that would wake after its function timeout is resumed at the timeout and
killed there (`FunctionTimedOut`), and any AWS call it would still make on the way out is refused
too. An invocation's fan-out (the decider's writes at once: the wiring's `fan_out`) forks: each
task runs as a child task in a thread of its own, from the same instant, under the same deadline,
and the invocation parks until its last child ends (N writes at once cost about one call latency,
not N); a child killed at the deadline kills its invocation. botocore's standard-mode retry quota
belongs to one client, i.e. one execution environment: here clients are shared, so each invocation
gets a quota of its own (as a fresh environment has), which its children share.
Calls from the conductor's own thread (the harness, the Lambda service's polling) take no time.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import partial
from typing import Any
from unittest import mock

import botocore.endpoint
from botocore.retries.quota import RetryQuota

from gatekeeper.wiring import services
from gatekeeper_ops.chaos.clock import START, VirtualClock
from gatekeeper_ops.local_lambda import Concurrency, FunctionTimedOut


class _Task:
    def __init__(self, work: Callable[[], object], parent: _Task | None = None) -> None:
        self.work = work
        self.go = threading.Event()
        self.thread: threading.Thread | None = None
        self.deadline: float | None = None  # elapsed seconds when the running invocation times out
        self.killed = False
        self.quotas: dict[int, RetryQuota] = {}
        # A child of a fan-out: its invocation's deadline and clients (their retry quotas), and the
        # invocation to wake when the last of its children ends.
        self.parent = parent
        self.children = 0  # children still running
        if parent is not None:
            self.deadline, self.quotas = parent.deadline, parent.quotas


class Conductor(VirtualClock, Concurrency):
    parallel = True

    def __init__(self, start: datetime = START, call_latency: float = 0.02) -> None:
        super().__init__(start)
        self.call_latency = call_latency
        self.timeouts = 0
        self.errors: list[BaseException] = []  # what escaped a task (a harness bug, not a handler error)
        self._ready: list[tuple[float, int, _Task]] = []
        self._order = itertools.count()
        self._local = threading.local()
        self._back = threading.Event()
        self._alive = 0
        self._until = -math.inf  # while run_until runs: how far the running work may go on alone

    # -- the clock and its patches -------------------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator[Conductor]:
        original_get_response = botocore.endpoint.Endpoint._do_get_response  # type: ignore[attr-defined]
        acquire, release = RetryQuota.acquire, RetryQuota.release

        def do_get_response(endpoint: Any, *args: Any, **kwargs: Any) -> Any:
            self.call_point()
            return original_get_response(endpoint, *args, **kwargs)

        def own(quota: RetryQuota) -> RetryQuota:
            task = self._current()
            return quota if task is None else task.quotas.setdefault(id(quota), RetryQuota())

        with (
            super().running(),
            mock.patch.object(botocore.endpoint.Endpoint, "_do_get_response", do_get_response),
            mock.patch.object(RetryQuota, "acquire", lambda quota, amount: acquire(own(quota), amount)),
            mock.patch.object(RetryQuota, "release", lambda quota, amount: release(own(quota), amount)),
            mock.patch.object(services, "fan_out", self.fan_out),
        ):
            yield self

    def sleep(self, seconds: float) -> None:
        task = self._current()
        if task is None:
            super().sleep(seconds)
            return
        self.slept += max(0.0, seconds)
        self._park(task, self.elapsed + max(0.0, seconds))

    def call_point(self) -> None:
        """Before an AWS call attempt: an invocation's call happens `call_latency` later."""
        task = self._current()
        if task is not None:
            self._park(task, self.elapsed + self.call_latency)

    def fan_out(self, tasks: Sequence[Callable[[], None]]) -> None:
        """Fork/join: each task a child task of the running invocation, all from this instant; the
        invocation goes on once the last has ended (killed, if one of them was)."""
        parent = self._current()
        if parent is None:  # the harness's own thread: its calls take no time anyway
            for task in tasks:
                task()
            return
        if parent.killed:
            raise FunctionTimedOut("after the function timeout")
        for task in tasks:
            # Each child in a copy of the invocation's context (the role it signs as), as a thread
            # pool's worker runs it.
            child = _Task(partial(contextvars.copy_context().run, task), parent)
            parent.children += 1
            self._alive += 1
            self._schedule(child, self.elapsed)
        self._back.set()  # parked without a wake-up time: its last child schedules it
        parent.go.wait()
        parent.go.clear()
        if parent.killed:
            self.timeouts += 1
            raise FunctionTimedOut("the function timeout passed in a fan-out (virtual time)")

    # -- Concurrency (what the local Lambda service asks for) ------------------------------------
    def dispatch(self, work: Callable[[], object]) -> None:
        self._alive += 1
        self._schedule(_Task(work), self.elapsed)

    def wait(self, seconds: float) -> None:
        self.sleep(seconds)

    @contextlib.contextmanager
    def function_timeout(self, seconds: float) -> Iterator[None]:
        task = self._current()
        if task is None:
            yield
            return
        task.deadline, task.killed = self.elapsed + seconds, False
        try:
            yield
        finally:
            task.deadline, task.killed = None, False

    # -- running -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether any dispatched work has not finished."""
        return self._alive > 0

    @property
    def next_wake(self) -> float:
        """When (elapsed seconds) the earliest parked work resumes; inf when none is parked."""
        return self._ready[0][0] if self._ready else math.inf

    def run_until(self, until: float) -> int:
        """Resume parked work in time order while it is due by `until`; the clock ends at `until`.
        Returns the number of resumptions."""
        steps = 0
        self._until = until
        try:
            while self._ready and self._ready[0][0] <= until:
                wake, _, task = heapq.heappop(self._ready)
                self.advance_to(wake)
                self._resume(task)
                steps += 1
        finally:
            self._until = -math.inf
        self.advance_to(until)
        return steps

    def _current(self) -> _Task | None:
        return getattr(self._local, "task", None)

    def _schedule(self, task: _Task, wake: float) -> None:
        heapq.heappush(self._ready, (wake, next(self._order), task))

    def _park(self, task: _Task, wake: float) -> None:
        if task.killed:  # a killed invocation does nothing more (a `finally` that calls AWS)
            raise FunctionTimedOut("after the function timeout")
        if task.deadline is not None and wake > task.deadline:
            wake, task.killed = task.deadline, True
        if not task.killed and wake <= self._until and (not self._ready or wake < self._ready[0][0]):
            self.advance_to(wake)  # nothing else is due first: go on without a thread switch
            return
        self._schedule(task, wake)
        self._back.set()
        task.go.wait()
        task.go.clear()
        if task.killed:
            if task.parent is None:  # a child's timeout is its invocation's, counted there
                self.timeouts += 1
            raise FunctionTimedOut("the function timeout passed (virtual time)")

    def _resume(self, task: _Task) -> None:
        self._back.clear()
        if task.thread is None:
            task.thread = threading.Thread(target=self._body, args=(task,), daemon=True)
            task.thread.start()
        else:
            task.go.set()
        self._back.wait()

    def _body(self, task: _Task) -> None:
        self._local.task = task
        try:
            task.work()
        except FunctionTimedOut as error:
            if task.parent is None:  # an invocation's own is the local Lambda service's to catch
                self.errors.append(error)
            else:
                task.parent.killed = True
        except BaseException as error:
            self.errors.append(error)
        finally:
            self._alive -= 1
            parent = task.parent
            if parent is not None:
                parent.children -= 1
                if parent.children == 0:
                    self._schedule(parent, self.elapsed)
            self._back.set()
