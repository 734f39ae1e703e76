"""The one place that talks to EC2 about endpoint connections.

Accept/Reject succeed at the HTTP level and report per-endpoint failures in `Unsuccessful`;
those are raised, never ignored. There is one retry layer, botocore's standard mode (the client's
Config in gatekeeper.wiring.services): it retries throttling (`RequestLimitExceeded`,
`EC2ThrottledException`), 5xx and connection errors with exponential backoff and full jitter.
Nothing here retries again on top of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from gatekeeper.models.connection import VpcEndpointConnection
from gatekeeper.models.errors import ConnectionActionFailed, PermissionsNotChanged

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


# Ids a Describe filter carries at once (EC2 documents up to 200 values a filter for its Describe
# calls); more are read in chunks, each paged.
FILTER_VALUES = 200


class EndpointService:
    def __init__(self, client: EC2Client) -> None:
        self._client = client

    def connection(self, vpc_endpoint_id: str, service_id: str | None = None) -> VpcEndpointConnection | None:
        filters: list[Any] = [{"Name": "vpc-endpoint-id", "Values": [vpc_endpoint_id]}]
        if service_id:
            filters.append({"Name": "service-id", "Values": [service_id]})
        response = self._client.describe_vpc_endpoint_connections(Filters=filters)
        found = response.get("VpcEndpointConnections", [])
        return VpcEndpointConnection.model_validate(found[0]) if found else None

    def connections_by_id(self, vpc_endpoint_ids: Sequence[str]) -> dict[str, VpcEndpointConnection]:
        """The connections of these endpoints that EC2 lists, by endpoint id: one Describe (a filter
        takes many `vpc-endpoint-id` values) per FILTER_VALUES ids, 1,000 a page. An id missing from
        the answer is not listed (yet: Describe is eventually consistent)."""
        unique = list(dict.fromkeys(vpc_endpoint_ids))
        found: dict[str, VpcEndpointConnection] = {}
        for start in range(0, len(unique), FILTER_VALUES):
            chunk = unique[start : start + FILTER_VALUES]
            for connection in self._pages([{"Name": "vpc-endpoint-id", "Values": chunk}]):
                found[connection.vpc_endpoint_id] = connection
        return found

    def connections(
        self,
        service_ids: str | Sequence[str],
        states: Sequence[str] | None = None,
        owners: Sequence[str] | None = None,
    ) -> Iterator[VpcEndpointConnection]:
        """Every connection of a service, or of several in the same calls (a filter takes many
        values), of some states, of some consumer accounts; 1,000 a page."""
        services = [service_ids] if isinstance(service_ids, str) else list(service_ids)
        if not services:
            return
        filters: list[Any] = [{"Name": "service-id", "Values": services}]
        if states:
            filters.append({"Name": "vpc-endpoint-state", "Values": list(states)})
        if owners:
            filters.append({"Name": "vpc-endpoint-owner", "Values": list(owners)})
        yield from self._pages(filters)

    def _pages(self, filters: list[Any]) -> Iterator[VpcEndpointConnection]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Filters": filters, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page = self._describe(kwargs)
            for raw in page.get("VpcEndpointConnections", []):
                yield VpcEndpointConnection.model_validate(raw)
            token = page.get("NextToken")
            if not token:
                return

    def _describe(self, kwargs: dict[str, Any]) -> Any:
        return self._client.describe_vpc_endpoint_connections(**kwargs)

    def accept_all(
        self, service_id: str, vpc_endpoint_ids: Sequence[str]
    ) -> dict[str, ConnectionActionFailed]:
        """Accept many connections of one service in one call; the ids EC2 answered in `Unsuccessful`,
        each with its error (the others were accepted). A call that fails raises: its effect is unknown."""
        response = self._client.accept_vpc_endpoint_connections(
            ServiceId=service_id, VpcEndpointIds=list(vpc_endpoint_ids)
        )
        return _unsuccessful("Accept", vpc_endpoint_ids, response)

    def reject_all(
        self, service_id: str, vpc_endpoint_ids: Sequence[str]
    ) -> dict[str, ConnectionActionFailed]:
        """Reject (or revoke) many connections of one service in one call; see accept_all."""
        response = self._client.reject_vpc_endpoint_connections(
            ServiceId=service_id, VpcEndpointIds=list(vpc_endpoint_ids)
        )
        return _unsuccessful("Reject", vpc_endpoint_ids, response)

    def accept(self, service_id: str, vpc_endpoint_id: str) -> None:
        response = self._client.accept_vpc_endpoint_connections(
            ServiceId=service_id, VpcEndpointIds=[vpc_endpoint_id]
        )
        _raise_unsuccessful("Accept", vpc_endpoint_id, response)

    def reject(self, service_id: str, vpc_endpoint_id: str) -> None:
        response = self._client.reject_vpc_endpoint_connections(
            ServiceId=service_id, VpcEndpointIds=[vpc_endpoint_id]
        )
        _raise_unsuccessful("Reject", vpc_endpoint_id, response)

    def allowed_principals(self, service_id: str) -> frozenset[str]:
        """The principals allowed to create endpoints to the service (`*`: anyone)."""
        principals: set[str] = set()
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"ServiceId": service_id, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page = self._client.describe_vpc_endpoint_service_permissions(**kwargs)
            principals |= {p["Principal"] for p in page.get("AllowedPrincipals", []) if p.get("Principal")}
            token = page.get("NextToken")
            if not token:
                return frozenset(principals)

    def change_allowed_principals(
        self, service_id: str, add: frozenset[str] = frozenset(), remove: frozenset[str] = frozenset()
    ) -> None:
        """Add and remove allowed principals in one call. Removing one closes no existing connection."""
        if not add and not remove:
            return
        kwargs: dict[str, Any] = {"ServiceId": service_id}
        if add:
            kwargs["AddAllowedPrincipals"] = sorted(add)
        if remove:
            kwargs["RemoveAllowedPrincipals"] = sorted(remove)
        response = self._client.modify_vpc_endpoint_service_permissions(**kwargs)
        if response.get("ReturnValue") is False:
            raise PermissionsNotChanged(
                f"EC2 answered ModifyVpcEndpointServicePermissions for {service_id} with ReturnValue "
                "false; the allowed principals were not changed and the change will be retried"
            )


def _raise_unsuccessful(action: str, vpc_endpoint_id: str, response: Any) -> None:
    for item in response.get("Unsuccessful", []):
        if item.get("ResourceId") in (vpc_endpoint_id, None):
            error = item.get("Error", {})
            raise ConnectionActionFailed(
                action, vpc_endpoint_id, error.get("Code", "Unknown"), error.get("Message", "")
            )


def _unsuccessful(
    action: str, vpc_endpoint_ids: Sequence[str], response: Any
) -> dict[str, ConnectionActionFailed]:
    """`Unsuccessful` items by endpoint id. An item without a ResourceId cannot be placed: it fails
    every id of the call (none is assumed done)."""
    failed: dict[str, ConnectionActionFailed] = {}
    for item in response.get("Unsuccessful", []):
        error = item.get("Error", {})
        code, message = error.get("Code", "Unknown"), error.get("Message", "")
        owners = (
            [item["ResourceId"]] if item.get("ResourceId") in vpc_endpoint_ids else list(vpc_endpoint_ids)
        )
        for endpoint in owners:
            failed[endpoint] = ConnectionActionFailed(action, endpoint, code, message)
    return failed
