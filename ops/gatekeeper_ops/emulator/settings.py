"""The emulator's tunable behaviour, one immutable settings object for the whole process.

Settings are process-wide because moto's server and in-process mocks share one set of backends;
``install()`` and ``privatelink_emulator()`` replace them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from gatekeeper_ops.emulator.models import StateCasing


@dataclass(frozen=True)
class EmulatorSettings:
    """How the emulated PrivateLink behaves.

    pending_reads:
        After an accept, how many describe calls (producer ``DescribeVpcEndpointConnections`` or
        consumer ``DescribeVpcEndpoints``, whichever comes first) still show the connection as
        ``pending`` before it becomes ``available``. ``1`` (default) makes ``pending`` observable
        exactly once; ``0`` skips it.
    default_page_size:
        Page size of ``DescribeVpcEndpointConnections`` when the caller passes no ``MaxResults``.
        ``None`` (default) returns every connection in one page; set it to exercise a caller's
        pagination even when it does not ask for pages.
    state_casing:
        ``camelCase`` (``pendingAcceptance``, what the EC2 API emits) or ``PascalCase``
        (``PendingAcceptance``, the botocore enum spelling) for states in describe output.
    require_topic_permission:
        When true, a notification is only delivered if the SNS topic policy allows the
        ``vpce.amazonaws.com`` service principal to ``sns:Publish`` (as on AWS); otherwise the
        emulator publishes to any existing topic.
    """

    pending_reads: int = 1
    default_page_size: int | None = None
    state_casing: StateCasing = "camelCase"
    require_topic_permission: bool = False

    def __post_init__(self) -> None:
        if self.pending_reads < 0:
            raise ValueError(f"pending_reads must be >= 0, got {self.pending_reads}")
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
