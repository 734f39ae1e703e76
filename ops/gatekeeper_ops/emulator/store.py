"""Where the emulator keeps its state: one ``PrivateLinkStore`` per (account, region).

Each store hangs off moto's own EC2 backend object for that account and region. moto resets a
backend by wiping its ``__dict__`` (``BaseBackend.reset``) and then drops it from the
``BackendDict`` — on ``mock_aws()`` start and stop and on ``POST /moto-api/reset`` — so the
emulator's state disappears at exactly the moments moto's does, without a reset hook of its own.

All emulator reads and writes happen under ``LOCK``: moto's threaded server serves requests
concurrently and a transition touches two accounts' state.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.ec2.models import ec2_backends
from moto.ec2.utils import random_resource_id

from gatekeeper_ops.emulator.models import (
    ConnectionEvent,
    ConnectionNotification,
    PublishedNotification,
    VpcEndpointConnection,
)
from gatekeeper_ops.emulator.notifications import NotificationSource

LOCK = threading.RLock()

# The attribute name on moto's EC2Backend; private enough not to collide with moto's own fields.
_STORE_ATTRIBUTE = "_gatekeeper_privatelink_store"
SUPPORTED_IP_ADDRESS_TYPES_ATTRIBUTE = "_gatekeeper_supported_ip_address_types"


@dataclass(frozen=True)
class ServiceRef:
    """Where a consumer endpoint's connection lives: the service owner's account and region."""

    account_id: str
    region: str
    service_id: str


@dataclass
class QueuedNotification:
    """A notification waiting for delivery under eventual consistency."""

    sequence: int
    due: float
    order: float
    notification: ConnectionNotification
    event: ConnectionEvent
    connection: VpcEndpointConnection
    body: str
    source: NotificationSource


@dataclass
class PrivateLinkStore:
    """The PrivateLink state of one account in one region.

    As a producer it holds the connections to its endpoint services (``connections``, keyed by
    endpoint id, in arrival order) and its notifications; as a consumer it remembers which of its
    endpoints are connected to which service (``outbound``).
    """

    account_id: str
    region: str
    connections: dict[str, VpcEndpointConnection] = field(default_factory=dict)
    notifications: dict[str, ConnectionNotification] = field(default_factory=dict)
    outbound: dict[str, ServiceRef] = field(default_factory=dict)
    published: list[PublishedNotification] = field(default_factory=list)
    queued: list[QueuedNotification] = field(default_factory=list)
    rng: random.Random | None = None
    # Injected faults: (action, endpoint id) → queued (code, message) answers, for resilience tests.
    faults: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)
    _sequence: int = 0

    def next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence


def ec2_backend(account_id: str, region: str) -> Any:
    """moto's EC2 backend for an account and region (created on first use, as moto does)."""
    return ec2_backends[account_id][region]


def store_for(account_id: str, region: str) -> PrivateLinkStore:
    backend = ec2_backend(account_id, region)
    with LOCK:
        store = getattr(backend, _STORE_ATTRIBUTE, None)
        if not isinstance(store, PrivateLinkStore):
            store = PrivateLinkStore(account_id=account_id, region=region)
            setattr(backend, _STORE_ATTRIBUTE, store)
        return store


def existing_store(account_id: str, region: str) -> PrivateLinkStore | None:
    """The store if that account/region already has one, without creating moto backends."""
    account_backends = ec2_backends.get(account_id)
    if account_backends is None:
        return None
    backend = dict(account_backends.items()).get(region)
    store = getattr(backend, _STORE_ATTRIBUTE, None)
    return store if isinstance(store, PrivateLinkStore) else None


def all_stores() -> Iterator[PrivateLinkStore]:
    """Every existing store, without creating moto backends (copies: the server adds accounts)."""
    for account_backends in list(ec2_backends.values()):
        for backend in list(dict(account_backends.items()).values()):
            store = getattr(backend, _STORE_ATTRIBUTE, None)
            if isinstance(store, PrivateLinkStore):
                yield store


@dataclass(frozen=True)
class EndpointService:
    """A moto endpoint-service configuration together with the account and region that own it."""

    account_id: str
    region: str
    config: Any

    @property
    def service_id(self) -> str:
        return str(self.config.id)

    @property
    def service_name(self) -> str:
        return str(self.config.service_name)

    @property
    def acceptance_required(self) -> bool:
        # moto keeps what the request carried: a bool from Create, a "true"/"false" string after Modify.
        return str(self.config.acceptance_required).lower() == "true"

    @property
    def allowed_principals(self) -> frozenset[str]:
        return frozenset(self.config.principals)

    @property
    def supported_ip_address_types(self) -> frozenset[str]:
        # moto ignores SupportedIpAddressTypes; the emulator keeps it on the config (default ipv4).
        return frozenset(getattr(self.config, SUPPORTED_IP_ADDRESS_TYPES_ATTRIBUTE, None) or ("ipv4",))

    @property
    def supported_regions(self) -> frozenset[str]:
        # The service's own region is always served, whether or not the producer listed it.
        listed = {entry["Region"] for entry in self.config.supported_regions}
        return frozenset(listed | {self.region})


def find_service(service_id: str, region: str) -> EndpointService | None:
    """The endpoint service with this id in ``region``, whichever account owns it."""
    # Copies of moto's dicts: another server thread may add an account or region meanwhile.
    for account_id, account_backends in list(ec2_backends.items()):
        backend = dict(account_backends.items()).get(region)
        if backend is None:
            continue
        config = backend.configurations.get(service_id)
        if config is not None:
            return EndpointService(account_id=account_id, region=region, config=config)
    return None


def owned_service(account_id: str, region: str, service_id: str) -> EndpointService | None:
    """The service if ``account_id`` owns it in ``region``; other accounts' services are invisible."""
    config = ec2_backend(account_id, region).configurations.get(service_id)
    if config is None:
        return None
    return EndpointService(account_id=account_id, region=region, config=config)


def consumer_endpoint(account_id: str, region: str, endpoint_id: str) -> Any | None:
    """moto's ``VPCEndPoint`` object of a consumer, if it (still) exists."""
    account_backends = ec2_backends.get(account_id)
    if account_backends is None:
        return None
    backend = dict(account_backends.items()).get(region)
    if backend is None:
        return None
    return backend.vpc_end_points.get(endpoint_id)


def new_connection_id() -> str:
    return f"vpce-con-{random_resource_id(17)}"


def new_notification_id() -> str:
    return f"vpce-nfn-{random_resource_id(17)}"
