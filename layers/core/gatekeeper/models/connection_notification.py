"""Defensive parsing of VPC endpoint connection notifications.

AWS does not document the SNS message body of a connection notification, so it is a trigger
only: we look for the endpoint id under known keys in any case, else for any `vpce-…` id in the
text, and then read the truth with DescribeVpcEndpointConnections. Nothing here depends on the
body's exact shape (the emulator's chosen body is one of many this accepts).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from gatekeeper.models.errors import NotificationUnparseable

_ENDPOINT = re.compile(r"\bvpce-(?!svc-)[0-9a-f]{8,17}\b")
_SERVICE = re.compile(r"\bvpce-svc-[0-9a-f]{8,17}\b")
_ENDPOINT_KEYS = ("vpcendpointid", "endpointid")
_SERVICE_KEYS = ("serviceid", "vpcendpointserviceid")
_EVENT_KEYS = ("eventtype", "event", "connectionevent", "connectionevents")
_EVENT = re.compile(r"^(?:connect|accept|reject|delete)$", re.IGNORECASE)


@dataclass(frozen=True)
class ConnectionNotification:
    vpc_endpoint_id: str
    service_id: str | None
    message_id: str | None
    # `Connect|Accept|Reject|Delete` when the body seems to say so: a hint for retrying a read that
    # looks stale, never a reason to decide anything.
    event: str | None = None
    # True when the endpoint id was found under a known key; False when only the fallback (any one
    # `vpce-…` id in the text) found it: the body is not the shape we know (`gatekeeper verify`).
    by_known_key: bool = True


def _find_key(value: Any, names: tuple[str, ...], pattern: re.Pattern[str]) -> str | None:
    if isinstance(value, dict):
        for k, v in value.items():
            if (
                isinstance(k, str)
                and k.replace("_", "").replace("-", "").lower() in names
                and isinstance(v, str)
            ):
                match = pattern.search(v)
                if match:
                    return match.group(0)
        for v in value.values():
            found = _find_key(v, names, pattern)
            if found:
                return found
    if isinstance(value, list):
        for v in value:
            found = _find_key(v, names, pattern)
            if found:
                return found
    return None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def parse_notification(body: str) -> ConnectionNotification:
    """An SQS body (an SNS envelope, or a raw message) → the endpoint it is about.

    Raises NotificationUnparseable when no endpoint id can be found: retrying cannot help.
    """
    envelope = _loads(body)
    message: Any = body
    message_id = None
    if isinstance(envelope, dict) and "Message" in envelope:
        message_id = envelope.get("MessageId") if isinstance(envelope.get("MessageId"), str) else None
        message = envelope["Message"]
    elif envelope is not None:
        message = envelope
    document = _loads(message) if isinstance(message, str) else message
    endpoint = _find_key(document, _ENDPOINT_KEYS, _ENDPOINT) if document is not None else None
    service = _find_key(document, _SERVICE_KEYS, _SERVICE) if document is not None else None
    text = message if isinstance(message, str) else json.dumps(message, default=str)
    by_known_key = endpoint is not None
    if endpoint is None:
        endpoints = set(_ENDPOINT.findall(text))
        if len(endpoints) != 1:
            what = "no" if not endpoints else f"{len(endpoints)} different"
            raise NotificationUnparseable(
                f"connection notification {message_id or ''} names {what} VPC endpoint ids; "
                f"cannot tell which connection changed (body starts {text[:120]!r})"
            )
        endpoint = endpoints.pop()
    if service is None:
        services = set(_SERVICE.findall(text))
        service = services.pop() if len(services) == 1 else None
    event = _find_key(document, _EVENT_KEYS, _EVENT) if document is not None else None
    return ConnectionNotification(
        endpoint, service, message_id, event.capitalize() if event else None, by_known_key
    )
