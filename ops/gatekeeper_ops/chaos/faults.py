"""Transient AWS faults on the handlers' own clients, the way AWS produces them (throttling, 5xx,
connection errors, answers lost after the call applied, killed invocations, `Unsuccessful`
items), all through botocore's real retry handler. Which and how: `FaultInjector`; the run:
docs/chaos.md.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber

from gatekeeper_ops.emulator import inject_unsuccessful
from gatekeeper_ops.local_lambda import FunctionTimedOut

TRANSIENT_KINDS = ("throttle", "server_error", "connection", "lost")
DECK = 100  # attempts over which the transient share is exact
IDEMPOTENCY_WINDOW = 600.0  # seconds DynamoDB remembers a ClientRequestToken

_THROTTLE_CODES: dict[str, tuple[tuple[int, str], ...]] = {
    "ec2": ((503, "RequestLimitExceeded"),),
    "dynamodb": ((400, "ThrottlingException"), (400, "ProvisionedThroughputExceededException")),
    "sns": ((400, "Throttling"),),
    "eventbridge": ((400, "ThrottlingException"),),
}
_SERVER_ERRORS: dict[str, tuple[tuple[int, str], ...]] = {
    "ec2": ((500, "InternalError"), (503, "Unavailable")),
    "dynamodb": ((500, "InternalServerError"), (503, "ServiceUnavailable")),
    "sns": ((500, "InternalError"), (503, "ServiceUnavailable")),
    "eventbridge": ((500, "InternalException"), (503, "ServiceUnavailable")),
}
_CONNECTION_ACTIONS = {"AcceptVpcEndpointConnections": "accept", "RejectVpcEndpointConnections": "reject"}


@dataclass
class FaultPlan:
    """How often things go wrong, per HTTP attempt of a handler's AWS call."""

    rate: float = 0.20  # transient faults (the four kinds below, by weight): exact per 100 attempts
    weights: dict[str, float] = field(
        default_factory=lambda: {"throttle": 0.35, "server_error": 0.25, "connection": 0.2, "lost": 0.2}
    )
    crash_rate: float = 0.01  # the invocation dies at this call (half before it, half after it applied)
    unsuccessful_rate: float = 0.10  # Accept/Reject answered with the endpoint in Unsuccessful


class SimulatedTimeout(FunctionTimedOut):
    """The invocation ran out of time at an AWS call (raised by the injector)."""


@dataclass
class FaultInjector:
    """`FaultInjector.instrument(client)` takes moto's stubber off one botocore client and puts itself in
    its place (a `before-send` handler that calls the stubber when the request should reach moto). Per
    HTTP attempt, with the plan's probabilities (the transient share exactly `rate` in every hundred
    attempts, at random places), the request:

    - is answered with a throttling error (`RequestLimitExceeded`, `ThrottlingException`,
      `ProvisionedThroughputExceededException`, `Throttling`) or a 500/503 (`InternalError`,
      `ServiceUnavailable`), in the service's own wire format, without reaching moto;
    - fails to connect (`EndpointConnectionError`, `ConnectionClosedError`), without reaching moto;
    - reaches moto and is applied, then the answer is lost (`ReadTimeoutError`);
    - kills the invocation (`FunctionTimedOut`), before the call or after it was applied;
    - for Accept/RejectVpcEndpointConnections, is answered with the endpoint in `Unsuccessful`
      (the emulator's `inject_unsuccessful`).

    All of these go through botocore's real retry handler (the client's own retry mode and quota), as
    on AWS. DynamoDB makes TransactWriteItems idempotent by ClientRequestToken for 10 minutes (botocore
    fills it in and reuses it on retries); moto does not, so the injector answers a token it has seen
    succeed with the first answer, without applying the transaction again.
    """

    plan: FaultPlan
    rng: random.Random
    now: Callable[[], float]  # the (virtual) clock, epoch seconds
    enabled: bool = True
    # Called before every attempt that reaches moto: (service, operation, parsed parameters).
    before_call: Callable[[str, str, dict[str, Any]], None] | None = None
    faults: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (kind, service, operation)
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (service, operation)
    sdk_retries: Counter[tuple[str, str]] = field(default_factory=Counter)  # botocore's own retries
    attempts_under_faults: int = 0  # attempts made while `enabled`
    idempotent_replays: int = 0
    clients: int = 0
    # Which invocation is running (the harness's count of finished ones), to file faults under it.
    invocation: Callable[[], int] = lambda: -1
    # (time, invocation, kind, service, operation): for the timelines of failures
    log: list[tuple[float, int, str, str, str]] = field(default_factory=list)
    _tokens: dict[str, tuple[float, int, dict[str, str], bytes]] = field(default_factory=dict)
    _deck: list[bool] = field(default_factory=list)

    def instrument(self, client: Any) -> Any:
        """Put the injector between this client and moto."""
        events = client.meta.events
        events.unregister("before-send", botocore_stubber)
        protocol = client.meta.service_model.protocol
        events.register(
            "before-send", lambda event_name, request, **_: self._send(event_name, request, protocol)
        )
        self.clients += 1
        return client

    def count(self, kind: str) -> int:
        return sum(n for (k, _, _), n in self.faults.items() if k == kind)

    # -- one attempt -----------------------------------------------------------------------
    def _send(self, event_name: str, request: AWSPreparedRequest, protocol: str) -> AWSResponse:
        _, service, operation = event_name.split(".", 2)
        self.attempts[(service, operation)] += 1
        if _attempt(request) > 1:
            self.sdk_retries[(service, operation)] += 1
        if not self.enabled:
            return self._apply(event_name, request, service, operation)
        self.attempts_under_faults += 1
        roll = self.rng.random()
        if roll < self.plan.crash_rate / 2:
            self._count("crash", service, operation)
            raise SimulatedTimeout(f"killed before {service}:{operation}")
        kind = self._pick() if self._draw() else None
        if kind == "throttle":
            self._count(kind, service, operation)
            status, code = self.rng.choice(_THROTTLE_CODES.get(service, ((400, "ThrottlingException"),)))
            return _error_response(request, protocol, status, code, "Rate exceeded")
        if kind == "server_error":
            self._count(kind, service, operation)
            status, code = self.rng.choice(_SERVER_ERRORS.get(service, ((500, "InternalError"),)))
            return _error_response(request, protocol, status, code, "We encountered an internal error.")
        if kind == "connection":
            self._count(kind, service, operation)
            error = self.rng.choice((EndpointConnectionError, ConnectionClosedError))
            raise error(endpoint_url=request.url)
        if operation in _CONNECTION_ACTIONS and self.rng.random() < self.plan.unsuccessful_rate:
            for endpoint in _form(request).get("VpcEndpointId.1", []):
                inject_unsuccessful(endpoint, action=_CONNECTION_ACTIONS[operation], times=1)
                self._count("unsuccessful", service, operation)
        response = self._apply(event_name, request, service, operation)
        if kind == "lost":
            self._count(kind, service, operation)
            raise ReadTimeoutError(endpoint_url=request.url)
        if roll > 1 - self.plan.crash_rate / 2:
            self._count("crash", service, operation)
            raise SimulatedTimeout(f"killed after {service}:{operation} was applied")
        return response

    def _apply(
        self, event_name: str, request: AWSPreparedRequest, service: str, operation: str
    ) -> AWSResponse:
        """What moto answers — or, for a TransactWriteItems token seen succeed, the first answer."""
        token = None
        if (service, operation) == ("dynamodb", "TransactWriteItems"):
            token = _parameters(request).get("ClientRequestToken")
            cached = self._tokens.get(token) if token else None
            if cached and self.now() - cached[0] < IDEMPOTENCY_WINDOW:
                self.idempotent_replays += 1
                _, status, headers, body = cached
                return AWSResponse(request.url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]
        if self.before_call is not None:
            self.before_call(service, operation, _parameters(request))
        response = botocore_stubber(event_name=event_name, request=request)
        if response is None:
            raise RuntimeError(f"moto does not serve {event_name} ({request.url})")
        if token and response.status_code == 200:
            self._tokens[token] = (self.now(), response.status_code, dict(response.headers), response.content)
        return response

    def _draw(self) -> bool:
        """Whether this attempt gets a transient fault: drawn from shuffled decks of 100 attempts
        holding exactly rate x 100 faults, so the share is the rate in every hundred attempts while
        which attempts fail stays random."""
        if not self._deck:
            faulty = round(self.plan.rate * DECK)
            self._deck = [True] * faulty + [False] * (DECK - faulty)
            self.rng.shuffle(self._deck)
        return self._deck.pop()

    def _pick(self) -> str:
        kinds = [k for k in TRANSIENT_KINDS if self.plan.weights.get(k, 0) > 0]
        return self.rng.choices(kinds, weights=[self.plan.weights[k] for k in kinds])[0]

    def _count(self, kind: str, service: str, operation: str) -> None:
        self.faults[(kind, service, operation)] += 1
        self.log.append((self.now(), self.invocation(), kind, service, operation))


def _attempt(request: AWSPreparedRequest) -> int:
    header = request.headers.get("amz-sdk-request", "")
    text = header.decode() if isinstance(header, bytes) else str(header)
    for part in text.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "attempt" and value.isdigit():
            return int(value)
    return 1


def _form(request: AWSPreparedRequest) -> dict[str, list[str]]:
    body = request.body or b""
    return parse_qs(body.decode() if isinstance(body, bytes) else str(body))


def _parameters(request: AWSPreparedRequest) -> dict[str, Any]:
    body = request.body or b""
    text = body.decode() if isinstance(body, bytes) else str(body)
    if text.startswith("{"):
        parsed: dict[str, Any] = json.loads(text)
        return parsed
    return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text).items()}


def _error_response(
    request: AWSPreparedRequest, protocol: str, status: int, code: str, message: str
) -> AWSResponse:
    """An error answer as the service would put it on the wire."""
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id}
    if protocol == "ec2":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        headers["Content-Type"] = "text/xml;charset=UTF-8"
    elif protocol == "query":
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        headers["Content-Type"] = "text/xml"
    elif protocol == "json":
        body = json.dumps({"__type": f"com.amazonaws.service#{code}", "message": message})
        headers["Content-Type"] = "application/x-amz-json-1.0"
    else:
        raise NotImplementedError(f"error answers for protocol {protocol!r} are not emulated")
    return AWSResponse(request.url, status, headers, MockRawResponse(body.encode()))  # type: ignore[arg-type]
