"""The emulator's tunable behaviour, one immutable settings object for the whole process.

Settings are process-wide because moto's server and in-process mocks share one set of backends;
``install()`` and ``privatelink_emulator()`` replace them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from gatekeeper_ops.emulator.models import StateCasing
from gatekeeper_ops.emulator.throttling import RequestThrottling


@dataclass(frozen=True)
class EventualConsistency:
    """EC2's eventual consistency and SNS's asynchronous delivery, made reproducible.

    On AWS a ``DescribeVpcEndpointConnections`` right after a change can still answer the old
    world: a new connection missing, or its previous state. But only for a while, and a caller that
    has seen the new state does not see the old one again. With this switched on:

    stale_seconds:
        After a connection is created or changes state through the API, the producer's
        ``DescribeVpcEndpointConnections`` may show what was there before (nothing, for a new
        connection) for at most this many seconds of ``clock.now()`` (a virtual clock moves it).
        Default 5 s. Accept and Reject act on the true state.
    stale_reads:
        Within that time, each reader (the caller's access key) gets at most this many stale
        describes of the change; its next one shows the truth. ``None``: time alone ends the lag.
        Default 1. A reader never sees a state older than one it has seen (monotonic reads).
    max_delivery_delay_seconds:
        Each notification is held for a delay drawn (seeded) from 0..this many seconds. Held
        notifications go out at the next emulated EC2 call after they are due, or when a caller
        runs ``deliver_notifications()``.
    reorder:
        Notifications due in the same delivery run go out in a seeded random order.
    seed:
        Seeds the delays and the order; the same seed and calls give the same run.
    """

    stale_reads: int | None = 1
    stale_seconds: float = 5.0
    max_delivery_delay_seconds: float = 0.0
    reorder: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        reads = 0 if self.stale_reads is None else self.stale_reads
        if reads < 0 or self.stale_seconds < 0 or self.max_delivery_delay_seconds < 0:
            raise ValueError(f"eventual consistency lags must be >= 0, got {self}")


@dataclass(frozen=True)
class EmulatorSettings:
    """How the emulated PrivateLink behaves.

    pending_seconds:
        How long an accepted connection stays ``pending`` before it is ``available`` (seconds of
        ``time.time()``, so a virtual clock moves it). Default 1 s.
    pending_reads:
        Optionally ends ``pending`` earlier: after this many describe calls (producer
        ``DescribeVpcEndpointConnections`` or consumer ``DescribeVpcEndpoints``, whichever comes
        first) have shown it. ``1`` (default) shows ``pending`` exactly once to a caller that
        describes at once; ``0`` skips it; ``None`` leaves it to time alone.
    deleting_seconds / deleting_reads:
        The same two limits for ``deleting`` after a consumer deletes its endpoint, before the
        connection is ``deleted``.
    closed_retention_seconds:
        How long ``deleted`` and ``rejected`` connections stay in ``DescribeVpcEndpointConnections``
        before they age out (default one hour; ``None`` keeps them for ever).
    default_page_size:
        Page size of ``DescribeVpcEndpointConnections`` when the caller passes no ``MaxResults``.
        ``None`` (default) returns every connection in one page; set it to exercise a caller's
        pagination even when it does not ask for pages.
    state_casing:
        ``camelCase`` (``pendingAcceptance``, what the EC2 API emits) or ``PascalCase``
        (``PendingAcceptance``, the botocore enum spelling) for states in describe output.
    enforce_notification_permissions:
        On (default): a notification is delivered only if the topic policy lets
        ``vpce.amazonaws.com`` ``sns:Publish`` for this source (``aws:SourceAccount``,
        ``aws:SourceArn``, explicit Deny wins) and, for a KMS-encrypted topic, the key policy lets it
        ``kms:GenerateDataKey*`` and ``kms:Decrypt``. Otherwise it is dropped and recorded, as AWS
        silently delivers nothing. Off: any existing topic receives.
    require_topic_permission:
        When true, ``CreateVpcEndpointConnectionNotification`` itself refuses a topic whose policy
        does not admit vpce (``InvalidConnectionNotification``), a stricter check than AWS makes.
    enforce_bus_policy:
        When true, EventBridge ``PutEvents`` is refused (``AccessDeniedException``) when an explicit
        Deny of the bus's resource policy applies to the caller (``aws:PrincipalArn``: the role behind
        assumed-role keys, else the account root) and the entry (``events:source``), as AWS does. Off
        (default) for suites that put forged events to test the decider's own defences; on in the
        sandbox (``make demo``), where the local Lambda service signs handlers' calls as their roles.
    eventual_consistency:
        ``None`` (default): describes are consistent and notifications synchronous.
        ``EventualConsistency(...)`` switches on the bounded lag and asynchronous, reorderable
        delivery (the sandbox and the integration suites run with ``EventualConsistency()``).
    throttling:
        ``None`` (default): EC2 never throttles. ``RequestThrottling(...)``: EC2's per-action token
        buckets answer ``RequestLimitExceeded`` (``emulator.throttling``); the sandbox and the chaos
        and burst harnesses switch them on.
    """

    pending_reads: int | None = 1
    pending_seconds: float = 1.0
    deleting_reads: int | None = 1
    deleting_seconds: float = 1.0
    closed_retention_seconds: float | None = 3600.0
    default_page_size: int | None = None
    state_casing: StateCasing = "camelCase"
    enforce_notification_permissions: bool = True
    require_topic_permission: bool = False
    enforce_bus_policy: bool = False
    eventual_consistency: EventualConsistency | None = None
    throttling: RequestThrottling | None = None

    def __post_init__(self) -> None:
        for name in ("pending_reads", "deleting_reads"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 or None, got {value}")
        for name in ("pending_seconds", "deleting_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        retention = self.closed_retention_seconds
        if retention is not None and retention < 0:
            raise ValueError(f"closed_retention_seconds must be >= 0 or None, got {retention}")
        if self.default_page_size is not None and not 5 <= self.default_page_size <= 1000:
            raise ValueError(f"default_page_size must be within 5..1000, got {self.default_page_size}")


_lock = threading.Lock()
_current = EmulatorSettings()


def current_settings() -> EmulatorSettings:
    return _current


def replace_settings(settings: EmulatorSettings) -> EmulatorSettings:
    """Make ``settings`` current; return the previous ones so a caller can restore them."""
    global _current  # one process-wide value, guarded by _lock
    with _lock:
        previous, _current = _current, settings
    return previous
