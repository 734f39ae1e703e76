"""EC2's request rate limiting: a token bucket per account, Region and API action, answering
``RequestLimitExceeded`` (HTTP 503) when empty, refilled on the emulator's clock. The documented
sizes, the scope and what is not modelled are on `RequestThrottling`; docs/emulator.md and
docs/burst.md say how the sandbox and `make burst` use it.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gatekeeper_ops.emulator import clock

NON_MUTATING_PREFIXES = ("Describe", "Get", "List", "Search")


@dataclass(frozen=True)
class BucketSize:
    capacity: float
    refill_per_second: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill_per_second <= 0:
            raise ValueError(f"a bucket holds >= 1 token and refills at > 0 tokens/s, got {self}")


NON_MUTATING = BucketSize(100, 20)
MUTATING = BucketSize(200, 5)
DOCUMENTED: Mapping[str, BucketSize] = MappingProxyType(
    {
        "RunInstances": BucketSize(1000, 2),
        "StartInstances": BucketSize(1000, 2),
        "TerminateInstances": BucketSize(1000, 20),
        "StopInstances": BucketSize(1000, 20),
    }
)


@dataclass(frozen=True)
class RequestThrottling:
    """The buckets' sizes. ``overrides``: per action (``"DescribeVpcEndpointConnections"``), on top
    of ``DOCUMENTED``. ``initial_fill``: the share of its capacity a bucket holds at its first
    request (0 = drained, as when the account's other automation has just spent it).

    AWS EC2 developer guide, "Request throttling for the Amazon EC2 API": every EC2 action has a bucket
        of its own per account and Region; a request takes one token; a request that finds the bucket empty
        fails with ``RequestLimitExceeded`` (HTTP 503) and requests to other actions are not affected; a
        bucket below its capacity is refilled at a fixed rate and never holds more than its capacity. The
        buckets are shared with everything else the account does, so a run can start them drained.

        The documented sizes this emulator uses (``DOCUMENTED``; anything else: by category):

        ==========================================  ========  ===========  ===================================
        action(s)                                   capacity  refill (/s)  category
        ==========================================  ========  ===========  ===================================
        Describe*, Get*, List*, Search*             100       20           non-mutating
        every other action (Accept/Reject/           200       5            mutating
        Modify…VpcEndpoint…, CreateVpcEndpoint,
        DeleteVpcEndpoints, Create…Notification…)
        RunInstances, StartInstances                1000      2            own bucket
        TerminateInstances, StopInstances           1000      20           own bucket
        ==========================================  ========  ===========  ===================================

        The guide's "unfiltered and unpaginated non-mutating" bucket (50, 10/s) applies to a few
        instance/volume/snapshot Describes called without filters or pagination; none of them is called
        here, so it is not modelled. Refill is continuous (fractional tokens), a close reading of "a set
        number of tokens is added back every second" that does not make callers wait for a whole second.

        Scope: calls reaching the emulated EC2 endpoint (moto's ``EC2Response``): the producer's handlers
        and the gatekeeper CLI, and also consumers' calls (in their own accounts' buckets). A harness's own
        bookkeeping (provisioning, observing the end state) runs inside ``unthrottled()`` so it neither
        spends tokens nor is refused; that works where moto answers in the calling thread (``mock_aws``),
        not across moto's threaded server (the sandbox), where a harness's calls count like anyone's.
        Time is the emulator's clock (``clock.now``), so a virtual clock refills the buckets.
    """

    non_mutating: BucketSize = NON_MUTATING
    mutating: BucketSize = MUTATING
    overrides: Mapping[str, BucketSize] = field(default_factory=dict)
    initial_fill: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.initial_fill <= 1:
            raise ValueError(f"initial_fill is a share of the capacity (0..1), got {self.initial_fill}")

    def size(self, action: str) -> BucketSize:
        if action in self.overrides:
            return self.overrides[action]
        if action in DOCUMENTED:
            return DOCUMENTED[action]
        return self.non_mutating if action.startswith(NON_MUTATING_PREFIXES) else self.mutating

    @classmethod
    def drained(cls) -> RequestThrottling:
        return cls(initial_fill=0.0)


@dataclass
class TokenBucket:
    size: BucketSize
    tokens: float
    updated: float  # clock.now() of the last refill

    def take(self, now: float) -> bool:
        """Refill for the time since the last call, then take one token if there is one."""
        if now > self.updated:
            self.tokens = min(
                self.size.capacity, self.tokens + (now - self.updated) * self.size.refill_per_second
            )
            self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


Key = tuple[str, str, str]  # account, region, action


class Buckets:
    """Every (account, region, action)'s bucket, made at its first request; what each answered."""

    def __init__(self, throttling: RequestThrottling) -> None:
        self.throttling = throttling
        self._buckets: dict[Key, TokenBucket] = {}
        self._lock = threading.Lock()
        self.allowed: Counter[Key] = Counter()
        self.throttled: Counter[Key] = Counter()
        # Answered requests by the endpoint service they name ("" for none): calls per service.
        self.by_service: Counter[tuple[str, str, str, str]] = Counter()

    def take(self, account: str, region: str, action: str, service: str = "") -> bool:
        key = (account, region, action)
        now = clock.now()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                size = self.throttling.size(action)
                bucket = self._buckets[key] = TokenBucket(
                    size, size.capacity * self.throttling.initial_fill, now
                )
            taken = bucket.take(now)
            (self.allowed if taken else self.throttled)[key] += 1
            if taken:
                self.by_service[(*key, service)] += 1
            return taken

    def tokens(self, account: str, region: str, action: str) -> float | None:
        """Tokens in a bucket as of its last request (None: never asked)."""
        bucket = self._buckets.get((account, region, action))
        return None if bucket is None else bucket.tokens


_lock = threading.Lock()
_current: Buckets | None = None
_exempt = threading.local()


def buckets(throttling: RequestThrottling) -> Buckets:
    """The buckets in use for these settings: made at the first request after the emulator was
    (re)installed, or when the settings changed."""
    global _current  # noqa: PLW0603 - one process-wide state, as moto's backends are; guarded by _lock
    with _lock:
        if _current is None or _current.throttling is not throttling:
            _current = Buckets(throttling)
        return _current


def reset() -> None:
    """Forget every bucket (``install()`` does: a new emulator session starts with fresh buckets)."""
    global _current  # noqa: PLW0603 - see buckets()
    with _lock:
        _current = None


@contextlib.contextmanager
def unthrottled() -> Iterator[None]:
    """EC2 calls this thread makes in the block neither spend tokens nor are refused (a harness's
    own setup and observation, which is not the producer's traffic)."""
    previous = getattr(_exempt, "on", False)
    _exempt.on = True
    try:
        yield
    finally:
        _exempt.on = previous


def request_limit_exceeded() -> tuple[int, dict[str, str], str]:
    """EC2's answer to a throttled request, as EC2 sends it: HTTP 503 and its XML error document."""
    request_id = str(uuid.uuid4())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
        "<Message>Request limit exceeded.</Message></Error></Errors>"
        f"<RequestID>{request_id}</RequestID></Response>"
    )
    return 503, {"Content-Type": "text/xml;charset=UTF-8", "x-amzn-RequestId": request_id}, body


Dispatch = Callable[[Any], tuple[int, dict[str, str], str]]


def wrap_call_action(original: Dispatch) -> Dispatch:
    """moto's ``call_action`` behind the buckets (installed on ``EC2Response`` by activation)."""
    from gatekeeper_ops.emulator.settings import current_settings

    def call_action(self: Any) -> tuple[int, dict[str, str], str]:
        throttling = current_settings().throttling
        if throttling is not None and not getattr(_exempt, "on", False):
            action = str(self._get_action())
            if not buckets(throttling).take(self.current_account, self.region, action, _service_named(self)):
                return request_limit_exceeded()
        return original(self)

    return call_action


def _service_named(response: Any) -> str:
    """The endpoint service a request names: its ServiceId, or its one `service-id` filter value."""
    service = response._get_param("ServiceId")
    if service:
        return str(service)
    values = response._filters_from_querystring().get("service-id", [])
    return str(values[0]) if len(values) == 1 else ""


THROTTLED_ACTIONS: dict[str, Callable[[Dispatch], Dispatch]] = {"call_action": wrap_call_action}
