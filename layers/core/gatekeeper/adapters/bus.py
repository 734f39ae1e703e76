"""The EventBridge publisher: the only code that puts events on the gatekeeper bus."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gatekeeper.models.errors import PublishFailed

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

from gatekeeper.models.events import CLOSED, DECIDED, REQUESTED, REVOCATION_REQUESTED, SOURCE

__all__ = ["CLOSED", "DECIDED", "REQUESTED", "REVOCATION_REQUESTED", "SOURCE", "EventPublisher"]
BATCH = 10  # PutEvents takes at most ten entries


class EventPublisher:
    def __init__(self, client: EventBridgeClient, bus_name: str, source: str = SOURCE) -> None:
        self._client = client
        self._bus_name = bus_name
        self._source = source

    def publish(self, detail_type: str, details: Sequence[dict[str, Any]]) -> int:
        """Put events of one detail type ten at a time; raise PublishFailed if any entry was refused."""
        refused = [why for why in self.put([(detail_type, detail) for detail in details]) if why]
        if refused:
            raise PublishFailed(
                f"{len(refused)} of {len(details)} '{detail_type}' events were refused: {refused[0]}"
            )
        return len(details)

    def put(self, events: Sequence[tuple[str, dict[str, Any]]]) -> list[str | None]:
        """Put events of any detail types, (detail type, detail) each, ten a call. What became of
        each, in order: None when the bus took it, else why it was refused ("code: message"). A call
        that fails raises (the events of earlier calls were put)."""
        entries: list[PutEventsRequestEntryTypeDef] = [
            {
                "Source": self._source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, default=str),
                "EventBusName": self._bus_name,
            }
            for detail_type, detail in events
        ]
        refused: list[str | None] = []
        for start in range(0, len(entries), BATCH):
            chunk = entries[start : start + BATCH]
            response = self._client.put_events(Entries=chunk)
            results = list(response.get("Entries", []))
            if not response.get("FailedEntryCount", 0):
                refused += [None] * len(chunk)
            elif len(results) != len(chunk):  # which ones failed cannot be told: none counts as put
                refused += [f"{response['FailedEntryCount']} of {len(chunk)} refused"] * len(chunk)
            else:
                refused += [
                    f"{r['ErrorCode']}: {r.get('ErrorMessage')}" if r.get("ErrorCode") else None
                    for r in results
                ]
        return refused
