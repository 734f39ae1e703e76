"""The PrivateLink emulator: moto extended with the producer-side VPC endpoint connection lifecycle.

moto 5 has endpoint services and endpoints but no connection lifecycle: a cross-account endpoint
is ``available`` at once and Describe/Accept/RejectVpcEndpointConnections and the connection
notification actions are not implemented. This package adds them, faithful to the AWS facts in
DESIGN.md, behind one switch::

    from moto import mock_aws
    from gatekeeper_ops.emulator import privatelink_emulator

    with mock_aws(), privatelink_emulator():
        ...  # plain boto3 clients now see the PrivateLink lifecycle

For moto's server, call ``install()`` in the process that starts ``ThreadedMotoServer`` (or use
``emulated_moto_server()``). See docs/emulator.md for what is covered and what is not.
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
