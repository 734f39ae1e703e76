"""An emulated AWS in this process for the demo: moto's server with the PrivateLink emulator on a
loopback port, a process environment that points every boto3 client at it, handler output sent
to a log file, and the producer account provisioned from template.yaml with the seed's services.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any
from unittest import mock

import boto3

from gatekeeper_ops.emulator import (
    EmulatorSettings,
    EventualConsistency,
    RequestThrottling,
    emulated_moto_server,
    reset_moto_server,
)
from gatekeeper_ops.emulator.provisioning import ProducerService, create_endpoint_service, role_arn
from gatekeeper_ops.fast_moto import faster_moto
from gatekeeper_ops.local_lambda import Invocation, LocalLambda, reset_handler_caches
from gatekeeper_ops.sandbox.account import CONTROL_PLANE_ROLE, ProducerAccount
from gatekeeper_ops.sandbox.seed import DemoSeed
from gatekeeper_ops.stack import ROOT, provision, register_outputs

FAKE_ACCESS_KEY_ID = "testing"
FAKE_SECRET_ACCESS_KEY = "testing"  # moto accepts anything; nothing here can reach real AWS
# Shell settings that would send a request somewhere else, or sign it as someone else.
_FOREIGN = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CA_BUNDLE",
    "MOTO_ACCOUNT_ID",  # pins every request to one account and defeats the consumer accounts
)


def aws_environment(endpoint_url: str, region: str) -> dict[str, str]:
    """What points boto3, the AWS CLI and the gatekeeper CLI at the emulated account."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": region,
    }


@contextlib.contextmanager
def process_environment(values: dict[str, str], remove: tuple[str, ...] = ()) -> Iterator[None]:
    """Set (and remove) process environment variables for the block; restore all of them after,
    including what the local Lambda service sets for the handlers."""
    saved = dict(os.environ)
    for name in (*remove, *(n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_"))):
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def emulated_aws(region: str, port: int = 0) -> Iterator[str]:
    """moto's server with the emulator on 127.0.0.1 (a free port unless given), this process's
    environment pointing at it; yields the endpoint URL."""
    environment = {
        **aws_environment("http://127.0.0.1:0", region),
        "AWS_REGION": region,
        # A user's ~/.aws files could name another endpoint per service or profile.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # ~1,300 default AMIs per EC2 backend and account: slow to build, never used here.
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }
    werkzeug = logging.getLogger("werkzeug")
    previous_level = werkzeug.level
    werkzeug.setLevel(logging.ERROR)  # one access-log line per request otherwise
    # The check of template.yaml's topic policy that AWS makes: vpce.amazonaws.com may publish.
    # and EC2's eventual consistency: a new connection is missing from a reader's first Describe
    # within 5 s after its notification, and notifications go out asynchronously, in a seeded,
    # shuffled order; EC2's per-action token buckets (RequestLimitExceeded), full at the start; and
    # the bus policy: only the stack's functions put vpce.gatekeeper, only operators the operator source.
    settings = EmulatorSettings(
        require_topic_permission=True,
        enforce_bus_policy=True,
        eventual_consistency=EventualConsistency(),
        throttling=RequestThrottling(),
    )
    try:
        with (
            process_environment(environment, remove=_FOREIGN),
            faster_moto(),
            emulated_moto_server(settings, port=port) as url,
        ):
            os.environ["AWS_ENDPOINT_URL"] = url
            reset_moto_server(url)  # a fresh account even if this process used moto before
            _forget_handler_clients()
            try:
                yield url
            finally:
                _forget_handler_clients()  # no cached client may outlive the server
    finally:
        werkzeug.setLevel(previous_level)


def _forget_handler_clients() -> None:
    # Only once imported: importing the handlers' runtime builds their Logger and Metrics, which
    # must wait for the handler environment (POWERTOOLS_*) the local Lambda service sets.
    if "gatekeeper.wiring.services" in sys.modules:
        reset_handler_caches()


@contextlib.contextmanager
def output_to(log: IO[str]) -> Iterator[None]:
    """What handlers print (Powertools EMF metrics) and warn goes to `log` for the block.

    The caller's console must hold its own reference to the real stdout."""
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield


@contextlib.contextmanager
def handler_logs_to(log: IO[str]) -> Iterator[None]:
    """The handlers' Powertools logger writes its JSON lines to `log` for the block.

    Enter it once the handlers' environment is set: importing the logger configures it."""
    from gatekeeper.observability import logger

    handler: Any = logger.registered_handler
    if not isinstance(handler, logging.StreamHandler):
        yield
        return
    previous = handler.setStream(log)
    try:
        yield
    finally:
        # A logger first built while stdout was redirected holds `log` itself (setStream then
        # answers None): never leave it a file that is about to be closed.
        handler.setStream(_CurrentStdout() if previous is None or previous is log else previous)


class _CurrentStdout:
    """A stream that writes wherever sys.stdout points at the time of writing."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def importable_handlers() -> None:
    """The local Lambda service imports handlers as the template names them
    (`functions.<name>.app`), from the source tree, which an installed console script does not
    have on its path."""
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))


@dataclass
class DeciderPauses:
    """The decider's pauses between re-reads of a connection EC2 does not list yet, counted for the
    summaries, then taken with the sleep that was in force. With `slept` off (the load run) they are
    only counted: one invocation runs at a time here, so a pause would hold up every other request,
    which on AWS runs meanwhile in another execution environment; and the emulator's lag counts
    reads, not seconds, so EC2 answers the same."""

    sleep: Callable[[float], None]
    slept: bool = True
    seconds: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        if self.slept:
            self.sleep(seconds)


@contextlib.contextmanager
def decider_pauses() -> Iterator[DeciderPauses]:
    """The wiring's `sleep` counted for the block: enter it before the decision service is built
    (before the local Lambda service starts, or any handler runs)."""
    from gatekeeper.wiring import services

    pauses = DeciderPauses(services.sleep)
    with mock.patch.object(services, "sleep", pauses):
        yield pauses


@dataclass
class DemoProducer:
    """The emulated producer account of the demo: the stack and every endpoint service it manages."""

    account: ProducerAccount
    services: dict[str, ProducerService]  # seed key → service

    @property
    def service_ids(self) -> dict[str, str]:
        return {key: service.service_id for key, service in self.services.items()}


def create_producer(
    seed: DemoSeed,
    *,
    on_invocation: Callable[[Invocation], None] | None = None,
    stack_name: str = "vpce-gatekeeper",
) -> DemoProducer:
    """The same steps as ProducerAccount.create, for several endpoint services: every service is
    created first, then the stack is provisioned from template.yaml to manage all of them
    (EndpointServiceIds) — one connection notification per service to the stack's topic."""
    importable_handlers()
    session = boto3.Session(region_name=seed.region)
    ec2, elbv2 = session.client("ec2"), session.client("elbv2")
    services = {
        service.key: create_endpoint_service(
            ec2,
            elbv2,
            name=service.name,
            acceptance_required=True,
            # No one at first: tenant sync adds each tenant's principals when its record is written
            # (ManageAllowedPrincipals), as on a real account; an account no tenant names is refused by
            # EC2 itself before any request reaches the gatekeeper.
            allowed_principals=(),
            supported_regions=seed.supported_regions,
            cidr=f"10.{index}.0.0/16",
        )
        for index, service in enumerate(seed.services)
    }
    account_id = session.client("sts").get_caller_identity()["Account"]
    parameters = {
        "EndpointServiceIds": ",".join(s.service_id for s in services.values()),
        "TableDeletionProtection": "false",
        "ControlPlanePrincipalArns": role_arn(account_id, CONTROL_PLANE_ROLE),
    }
    stack = provision(session, parameters, stack_name=stack_name)
    register_outputs(session, stack)
    lambdas = LocalLambda(stack, session, on_invocation=on_invocation)
    primary = services[seed.services[0].key]
    return DemoProducer(ProducerAccount(session, primary, stack, lambdas), services)
