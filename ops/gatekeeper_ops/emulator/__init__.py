"""The PrivateLink emulator: moto extended with the producer-side VPC endpoint connection lifecycle
(Describe/Accept/RejectVpcEndpointConnections, connection notifications, the permissions gate),
faithful to DESIGN.md's AWS facts. ``with mock_aws(), privatelink_emulator(): …`` in-process;
``install()`` or ``emulated_moto_server()`` for moto's server. Coverage and fidelity:
docs/emulator.md.
"""

from gatekeeper_ops.emulator.activation import install, is_installed, privatelink_emulator, uninstall
from gatekeeper_ops.emulator.lifecycle import (
    deliver_notifications,
    inject_unsuccessful,
    published_notifications,
    seed_connections,
)
from gatekeeper_ops.emulator.models import ConnectionEvent, ConnectionState, PublishedNotification
from gatekeeper_ops.emulator.server import emulated_moto_server, reset_moto_server
from gatekeeper_ops.emulator.settings import EmulatorSettings, EventualConsistency
from gatekeeper_ops.emulator.throttling import BucketSize, RequestThrottling, unthrottled

__all__ = [
    "BucketSize",
    "ConnectionEvent",
    "ConnectionState",
    "EmulatorSettings",
    "EventualConsistency",
    "PublishedNotification",
    "RequestThrottling",
    "deliver_notifications",
    "emulated_moto_server",
    "inject_unsuccessful",
    "install",
    "is_installed",
    "privatelink_emulator",
    "published_notifications",
    "reset_moto_server",
    "seed_connections",
    "uninstall",
    "unthrottled",
]
