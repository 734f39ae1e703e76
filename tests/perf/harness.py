"""What the bench's measurements share: an embedded producer account (moto + the PrivateLink
emulator, the stack provisioned from template.yaml, the real handlers delivered in-process), a
counter of the AWS API calls made through the handlers' session (`gatekeeper.wiring.services.session`,
the one their clients come from) and boto3's default session (the plain baseline's), and the
consumers and tenants of the workloads.

Only calls on those two sessions are counted: the sandbox, the local Lambda service's own polling
(SQS receive/delete, stream reads) and the consumers use sessions of their own.
Nothing here asserts a time; `tests/perf/test_bench.py` runs it at a tiny size.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
from moto import mock_aws

from gatekeeper.models.tenant import Tenant
from gatekeeper_ops.emulator import privatelink_emulator
from gatekeeper_ops.emulator.provisioning import (
    ConsumerNetwork,
    consumer_session,
    create_consumer_network,
    create_interface_endpoint,
)
from gatekeeper_ops.fast_moto import faster_moto
from gatekeeper_ops.local_lambda import handler_session, reset_handler_caches
from gatekeeper_ops.sandbox.account import ProducerAccount

REGION = "us-east-1"
OTHER_REGION = "us-west-2"  # a supported region the standard template holds for review
# The handlers' logs and metrics would drown the numbers (and cost time that is not theirs).
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
# The workload's accounts: an entitled tenant, a suspended one, and an account no tenant names.
ENTITLED, SUSPENDED, UNKNOWN = "700000000001", "710000000001", "720000000001"
# High enough that quota never refuses a bench request (the record allows at most 10,000).
BENCH_QUOTA = 10_000


def lambda_like_environment() -> None:
    """Credentials and region as a function sees them; nothing may reach a real account."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        MOTO_EC2_LOAD_DEFAULT_AMIS="false",
    )
    for variable in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(variable, None)


@dataclass
class ApiCalls:
    """Every AWS API call made through one boto3 session: how many of each, and the seconds spent
    inside them (the emulated AWS). `on_call(operation, params)` sees each call as it starts."""

    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    seconds_by_operation: Counter[str] = field(default_factory=Counter)
    listeners: list[Any] = field(default_factory=list)

    def attach(self, session: boto3.Session) -> ApiCalls:
        """Count the calls of every client `session` makes from now on."""
        events = session.events
        events.register("before-parameter-build", self._before_build)
        events.register("before-call", self._before)
        events.register("after-call", self._after)
        return self

    def clear(self) -> None:
        self.counts.clear()
        self.seconds = 0.0
        self.seconds_by_operation.clear()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _before_build(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        name = f"{model.service_model.service_name}:{model.name}"
        for listener in self.listeners:
            listener(name, params)

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        name = f"{model.service_model.service_name}:{model.name}"
        self.counts.update([name])
        context["bench_started"] = (name, time.perf_counter())

    def _after(self, context: dict[str, Any], **_: Any) -> None:
        name, started = context.pop("bench_started", (None, 0.0))
        if name is not None:
            spent = time.perf_counter() - started
            self.seconds += spent
            self.seconds_by_operation[name] += spent


@dataclass
class BenchConsumer:
    account_id: str
    ec2: Any
    network: ConsumerNetwork

    def request(self, service_name: str, service_region: str | None = None) -> str:
        return create_interface_endpoint(self.ec2, service_name, self.network, service_region=service_region)


@dataclass
class BenchStack:
    """One emulated producer account running the stack, with the workload's tenants in place."""

    producer: ProducerAccount
    calls: ApiCalls  # the handlers' calls (their session) and the baseline's (boto3's default session)
    _consumers: dict[tuple[str, str], BenchConsumer] = field(default_factory=dict)
    _loader: Any = None

    @property
    def service_id(self) -> str:
        return self.producer.service.service_id

    @property
    def service_name(self) -> str:
        return self.producer.service.service_name

    def consumer(self, account_id: str, region: str = REGION) -> BenchConsumer:
        """A consumer account with a network; botocore's (static) service models shared, since
        parsing EC2's per session is most of what making one costs."""
        if (account_id, region) not in self._consumers:
            if self._loader is None:
                self._loader = botocore.session.get_session().get_component("data_loader")
            core = botocore.session.Session()
            core.register_component("data_loader", self._loader)
            session = consumer_session(
                self.producer.client("sts"), account_id, region_name=region, botocore_session=core
            )
            ec2 = session.client("ec2")
            self._consumers[(account_id, region)] = BenchConsumer(
                account_id, ec2, create_consumer_network(ec2)
            )
        return self._consumers[(account_id, region)]

    def settle(self) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            self.producer.settle()


def bench_tenants(service_id: str) -> list[Tenant]:
    """The entitled and the suspended tenant; the unknown account is nobody's."""
    common: dict[str, Any] = {
        "services": (service_id,),
        "template": "standard",
        "max_endpoints": BENCH_QUOTA,
        "parameters": {"MaxEndpoints": BENCH_QUOTA},
    }
    return [
        Tenant(tenant_id="bench-entitled", display_name="Entitled", principals=(ENTITLED,), **common),
        Tenant(
            tenant_id="bench-suspended",
            display_name="Suspended",
            status="suspended",
            principals=(SUSPENDED,),
            **common,
        ),
    ]


@contextlib.contextmanager
def bench_stack() -> Iterator[BenchStack]:
    """The stack on an embedded emulated AWS, built-in templates pushed, the bench tenants added.

    - `gatekeeper_ops.fast_moto`: moto's TransactWriteItems copies whole tables otherwise, a cost
      that grows with the data and that DynamoDB does not have (same answers either way).
    - `ManageAllowedPrincipals=false`: the service keeps allowing `*`, so an account no tenant
      names can connect and be rejected by the gatekeeper (with the default, EC2 refuses it first).
    - EC2 reads are consistent (the emulator's default): no Describe retries from its read lag.
    """
    saved_environment = dict(os.environ)
    lambda_like_environment()
    try:
        with faster_moto(), mock_aws(), privatelink_emulator():
            with contextlib.redirect_stdout(io.StringIO()):
                producer = ProducerAccount.create(
                    boto3.Session(region_name=REGION),
                    parameters={"ManageAllowedPrincipals": "false"},
                    extra_environment=QUIET,
                )
                producer.push_builtin_templates()
                for tenant in bench_tenants(producer.service.service_id):
                    producer.add_tenant(tenant)
                producer.settle()
            # The baseline builds its clients from boto3's default session (mock_aws resets it), the
            # handlers from theirs: count both, from a fresh one each (the handlers' clients are
            # rebuilt on it at their next invocation, as after a cold start).
            boto3.setup_default_session(region_name=REGION)
            assert boto3.DEFAULT_SESSION is not None
            calls = ApiCalls().attach(boto3.DEFAULT_SESSION).attach(handler_session())
            yield BenchStack(producer, calls)
    finally:
        # Leave the process as found (the fast test runs inside pytest): the stack's environment,
        # the counting default session and the handlers' cached clients all go.
        os.environ.clear()
        os.environ.update(saved_environment)
        boto3.DEFAULT_SESSION = None
        reset_handler_caches()


@contextlib.contextmanager
def partition_scoped_queries() -> Iterator[None]:
    """moto's Query on a table (not an index) sorts the whole table to find one partition, so a
    sweep's per-tenant slot queries cost O(table) each: about a minute of a 10,000-connection sweep
    that DynamoDB does not have. This hands moto's query only the partition it asks for; the answers
    are the same (its own code still orders, pages and filters them)."""
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = list(self.items[hash_key].values()) if hash_key in self.items else []
        self.all_items = lambda: partition  # an instance attribute shadows the method for this call
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.query = original  # type: ignore[method-assign]
