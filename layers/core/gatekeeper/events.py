"""The bus events the functions receive, as Powertools parser models (envelope + typed detail)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from gatekeeper.models import ConnectionClosed, ConnectionRequested


class ConnectionRequestedEvent(EventBridgeModel):
    """`Endpoint Connection Requested` on the gatekeeper bus."""

    detail: ConnectionRequested


class ConnectionClosedEvent(EventBridgeModel):
    """`Endpoint Connection Closed` on the gatekeeper bus."""

    detail: ConnectionClosed
