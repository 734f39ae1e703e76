"""The composition root: AWS clients and the services built from Settings, once per container.

Each builder imports its own use case, stores and adapters: a handler's cold start pays only for
the part of the core it runs (evaluate never loads the reconciler, ingest never the policy engine).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from gatekeeper.wiring.settings import Settings, settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient

    from gatekeeper.adapters.bus import EventPublisher
    from gatekeeper.adapters.endpoint_service import EndpointService
    from gatekeeper.adapters.load_balancers import LoadBalancers
    from gatekeeper.dal.decisions import DecisionStore
    from gatekeeper.dal.templates import TemplateStore
    from gatekeeper.dal.tenants import TenantStore
    from gatekeeper.logic.announcer import Announcer
    from gatekeeper.logic.decision_service import DecisionService
    from gatekeeper.logic.reconciler import Reconciler
    from gatekeeper.logic.tenant_sync import TenantSync

# Short timeouts: a stuck call should fail and be retried, not eat the function's timeout. One retry
# layer: botocore's standard mode (throttling incl. RequestLimitExceeded/EC2ThrottledException, 5xx,
# connection errors; exponential backoff, full jitter). EC2 throttles per account and API, so it
# gets more attempts.
_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
_EC2_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 5})
# Load balancer health and the accepted notice: cached, and a failure holds (or leaves the notice
# bare) instead of waiting, so shorter timeouts and fewer attempts than the calls that decide.
_ELBV2_CONFIG = Config(connect_timeout=2, read_timeout=4, retries={"mode": "standard", "max_attempts": 2})


def client(service: str, config: Config = _CONFIG) -> Any:
    return boto3.client(service, config=config)  # type: ignore[call-overload]


# (service, botocore Config) → a client. The Lambda functions use `client` above (looked up at call
# time, so the chaos harness can wrap it); the operator CLI passes its own (its session, profile
# and region, clients built at first use) and gets the very same services.
ClientFactory = Callable[[str, Config], Any]


def sleep(seconds: float) -> None:
    """How the Lambda functions wait within an invocation (the decider's re-reads of a connection EC2
    does not list yet). Looked up when a service is built, like `client`, so a harness on a virtual
    clock (the chaos run) makes the waits virtual."""
    time.sleep(seconds)


def _factory(clients: ClientFactory | None) -> ClientFactory:
    return clients or client


def dynamodb(clients: ClientFactory | None = None) -> DynamoDBClient:
    return _factory(clients)("dynamodb", _CONFIG)  # type: ignore[no-any-return]


def endpoint_service(clients: ClientFactory | None = None) -> EndpointService:
    from gatekeeper.adapters.endpoint_service import EndpointService

    ec2: EC2Client = _factory(clients)("ec2", _EC2_CONFIG)
    return EndpointService(ec2)


class _OnFirstCall:
    """A client built at its first call instead of at init, for one a handler may never use: close
    shares the decision service and never reads a load balancer (evaluate only does for some
    templates and accepts), tenant sync alerts operators only about an invalid record."""

    def __init__(self, clients: ClientFactory | None, service: str, config: Config) -> None:
        self._clients, self._service, self._config = clients, service, config
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = _factory(self._clients)(self._service, self._config)
        return getattr(self._client, name)


def load_balancers(config: Settings, clients: ClientFactory | None = None) -> LoadBalancers:
    """Reads the services' NLBs (elbv2) and service configurations (EC2); cached per container."""
    from gatekeeper.adapters.load_balancers import LoadBalancers

    ec2: EC2Client = _OnFirstCall(clients, "ec2", _ELBV2_CONFIG)  # type: ignore[assignment]
    elbv2 = _OnFirstCall(clients, "elbv2", _ELBV2_CONFIG)
    return LoadBalancers(elbv2, ec2, ttl_seconds=config.data_plane_cache_seconds)


def event_publisher(config: Settings, clients: ClientFactory | None = None) -> EventPublisher:
    from gatekeeper.adapters.bus import EventPublisher

    events: EventBridgeClient = _factory(clients)("events", _CONFIG)
    return EventPublisher(events, config.event_bus_name)


def _announcer(endpoints: EndpointService, config: Settings) -> Announcer:
    from gatekeeper.logic.announcer import Announcer

    return Announcer(endpoints, event_publisher(config), frozenset(config.endpoint_service_ids))


@dataclass(frozen=True)
class Stores:
    """The three tables' stores. The CLI passes read-once snapshots of them to assess with."""

    tenants: TenantStore
    templates: TemplateStore
    decisions: DecisionStore


def stores(config: Settings, clients: ClientFactory | None = None) -> Stores:
    from gatekeeper.dal.decisions import DecisionStore
    from gatekeeper.dal.templates import TemplateStore
    from gatekeeper.dal.tenants import TenantStore

    table_client = dynamodb(clients)
    return Stores(
        tenants=TenantStore(table_client, config.tenants_table),
        templates=TemplateStore(table_client, config.templates_table),
        decisions=DecisionStore(table_client, config.decisions_table),
    )


def build_decision_service(
    config: Settings,
    clients: ClientFactory | None = None,
    tables: Stores | None = None,
    sleeper: Callable[[float], None] | None = None,
) -> DecisionService:
    """The one decision service: the evaluate and close functions' (`decision_service()`), and the
    operator CLI's, which only assesses with it (`gatekeeper simulate`, `pending`, `approve`).
    `sleeper`: how it waits between re-reads (default `sleep`, i.e. `time.sleep`)."""
    from gatekeeper.adapters.decision_topic import DecisionNotifier
    from gatekeeper.logic.decision_service import DecisionService

    tables = tables or stores(config, clients)
    sns: SNSClient = _factory(clients)("sns", _CONFIG)
    return DecisionService(
        tenants=tables.tenants,
        templates=tables.templates,
        decisions=tables.decisions,
        endpoint_service=endpoint_service(clients),
        notifier=DecisionNotifier(sns, config.decision_topic_arn),
        bus=event_publisher(config, clients),
        managed_services=frozenset(config.endpoint_service_ids),
        service_region=config.region,
        default_action=config.default_action,
        unknown_principal_action=config.unknown_principal_action,
        operator_actor=config.operator_actor,
        stale_after=timedelta(seconds=config.claim_stale_seconds),
        load_balancers=load_balancers(config, clients),
        sleep=sleeper or sleep,
    )


@cache
def decision_service() -> DecisionService:
    return build_decision_service(settings())


def load_policy_engine() -> None:
    """evaluate_connection's init: the engine every evaluation runs, loaded now rather than at the
    first request. The decision service imports it only when it first evaluates, because
    close_connection shares the service and never does."""
    importlib.import_module("gatekeeper.policy")


@cache
def announcer() -> Announcer:
    """ingest_notifications': it reads EC2 only for a Delete notification (a Connect goes on the bus
    by its ids, EC2's Accept/Reject are dropped), so its EC2 client is built at the first Delete,
    not on the cold start of the path that decides."""
    from gatekeeper.adapters.endpoint_service import EndpointService

    ec2: EC2Client = _OnFirstCall(None, "ec2", _EC2_CONFIG)  # type: ignore[assignment]
    return _announcer(EndpointService(ec2), settings())


def build_reconciler(config: Settings) -> Reconciler:
    from gatekeeper.dal.decisions import DecisionStore
    from gatekeeper.dal.tenants import TenantStore
    from gatekeeper.logic.reconciler import Reconciler

    table_client = dynamodb()
    endpoints = endpoint_service()
    return Reconciler(
        endpoint_service=endpoints,
        decisions=DecisionStore(table_client, config.decisions_table),
        tenants=TenantStore(table_client, config.tenants_table),
        announcer=_announcer(endpoints, config),
        managed_services=config.endpoint_service_ids,
        manage_allowed_principals=config.manage_allowed_principals,
        stale_after=timedelta(seconds=config.claim_stale_seconds),
    )


@cache
def reconciler() -> Reconciler:
    return build_reconciler(settings())


def build_tenant_sync(config: Settings) -> TenantSync:
    from gatekeeper.adapters.alerts import OperatorAlerts
    from gatekeeper.dal.decisions import DecisionStore
    from gatekeeper.logic.tenant_sync import TenantSync

    endpoints = endpoint_service()
    sns: SNSClient | None = _OnFirstCall(None, "sns", _CONFIG) if config.alarm_topic_arn else None  # type: ignore[assignment]
    return TenantSync(
        endpoint_service=endpoints,
        decisions=DecisionStore(dynamodb(), config.decisions_table),
        announcer=_announcer(endpoints, config),
        alerts=OperatorAlerts(sns, config.alarm_topic_arn),
        managed_services=config.endpoint_service_ids,
        manage_allowed_principals=config.manage_allowed_principals,
    )


@cache
def tenant_sync() -> TenantSync:
    return build_tenant_sync(settings())
