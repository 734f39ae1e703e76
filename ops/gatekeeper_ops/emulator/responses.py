"""The EC2 actions the emulator adds to moto, and the three it wraps, as ``EC2Response`` methods.

moto dispatches an EC2 request by its ``Action`` to the snake_case method of ``EC2Response``, then
serializes the returned ``ActionResult`` against botocore's model of that operation. The handlers
here only parse parameters, call one ``lifecycle`` function and return the result in the model's
member names (``VpcEndpointConnections``, ``Unsuccessful`` …) so boto3 parses it like AWS's answer.
``activation`` attaches them to ``EC2Response``; ``self`` is that moto response object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult

from gatekeeper_ops.emulator import lifecycle
from gatekeeper_ops.emulator.identity import caller_principals

Handler = Callable[[Any], ActionResult]


def _filters(response: Any) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = response._filters_from_querystring()
    return filters


# --- new actions ----------------------------------------------------------------------------------


def describe_vpc_endpoint_connections(self: Any) -> ActionResult:
    self.error_on_dryrun()
    connections, next_token = lifecycle.describe_connections(
        self.current_account,
        self.region,
        filters=_filters(self),
        max_results=self._get_int_param("MaxResults"),
        next_token=self._get_param("NextToken"),
    )
    return ActionResult({"VpcEndpointConnections": connections, "NextToken": next_token})


def accept_vpc_endpoint_connections(self: Any) -> ActionResult:
    self.error_on_dryrun()
    unsuccessful = lifecycle.accept_connections(
        self.current_account,
        self.region,
        self._get_param("ServiceId"),
        self._get_param("VpcEndpointIds", []),
    )
    return ActionResult({"Unsuccessful": unsuccessful})


def reject_vpc_endpoint_connections(self: Any) -> ActionResult:
    self.error_on_dryrun()
    unsuccessful = lifecycle.reject_connections(
        self.current_account,
        self.region,
        self._get_param("ServiceId"),
        self._get_param("VpcEndpointIds", []),
    )
    return ActionResult({"Unsuccessful": unsuccessful})


def create_vpc_endpoint_connection_notification(self: Any) -> ActionResult:
    self.error_on_dryrun()
    notification = lifecycle.create_notification(
        self.current_account,
        self.region,
        service_id=self._get_param("ServiceId"),
        vpc_endpoint_id=self._get_param("VpcEndpointId"),
        topic_arn=self._get_param("ConnectionNotificationArn"),
        events=self._get_param("ConnectionEvents", []),
    )
    return ActionResult(
        {"ConnectionNotification": notification.to_api(), "ClientToken": self._get_param("ClientToken")}
    )


def describe_vpc_endpoint_connection_notifications(self: Any) -> ActionResult:
    self.error_on_dryrun()
    notifications, next_token = lifecycle.describe_notifications(
        self.current_account,
        self.region,
        notification_id=self._get_param("ConnectionNotificationId"),
        filters=_filters(self),
        max_results=self._get_int_param("MaxResults"),
        next_token=self._get_param("NextToken"),
    )
    return ActionResult({"ConnectionNotificationSet": notifications, "NextToken": next_token})


def delete_vpc_endpoint_connection_notifications(self: Any) -> ActionResult:
    self.error_on_dryrun()
    lifecycle.delete_notifications(
        self.current_account, self.region, self._get_param("ConnectionNotificationIds", [])
    )
    return ActionResult({"Unsuccessful": []})


NEW_ACTIONS: dict[str, Handler] = {
    "describe_vpc_endpoint_connections": describe_vpc_endpoint_connections,
    "accept_vpc_endpoint_connections": accept_vpc_endpoint_connections,
    "reject_vpc_endpoint_connections": reject_vpc_endpoint_connections,
    "create_vpc_endpoint_connection_notification": create_vpc_endpoint_connection_notification,
    "describe_vpc_endpoint_connection_notifications": describe_vpc_endpoint_connection_notifications,
    "delete_vpc_endpoint_connection_notifications": delete_vpc_endpoint_connection_notifications,
}


# --- wrapped moto actions -------------------------------------------------------------------------


def wrap_create_vpc_endpoint(original: Handler) -> Handler:
    """Gate endpoints to customer endpoint services by allowed principals; record the connection."""

    def create_vpc_endpoint(self: Any) -> ActionResult:
        service = lifecycle.authorize_connection(
            consumer_account=self.current_account,
            consumer_region=self.region,
            caller=caller_principals(self.current_account, self.region, self.get_access_key()),
            service_name=self._get_param("ServiceName"),
            service_region=self._get_param("ServiceRegion"),
        )
        result = original(self)
        if service is not None:
            endpoint = _result_member(result, "VpcEndpoint")
            lifecycle.register_connection(
                service,
                endpoint,
                consumer_account=self.current_account,
                consumer_region=self.region,
                ip_address_type=self._get_param("IpAddressType"),
            )
        return result

    return create_vpc_endpoint


def wrap_delete_vpc_endpoints(original: Handler) -> Handler:
    """After moto deletes endpoints, mark their connections ``deleted`` and announce ``Delete``."""

    def delete_vpc_endpoints(self: Any) -> ActionResult:
        result = original(self)
        lifecycle.endpoints_deleted(self.current_account, self.region, self._get_param("VpcEndpointIds", []))
        return result

    return delete_vpc_endpoints


def wrap_describe_vpc_endpoints(original: Handler) -> Handler:
    """Apply the ``pending`` rule to the consumer's view, exactly as for the producer's describe."""

    def describe_vpc_endpoints(self: Any) -> ActionResult:
        lifecycle.settle_consumer_endpoints(self.current_account, self.region)
        result = original(self)
        endpoints = _result_member(result, "VpcEndpoints") or []
        lifecycle.observe_consumer_endpoints(
            self.current_account, self.region, [str(endpoint.id) for endpoint in endpoints]
        )
        return result

    return describe_vpc_endpoints


WRAPPED_ACTIONS: dict[str, Callable[[Handler], Handler]] = {
    "create_vpc_endpoint": wrap_create_vpc_endpoint,
    "delete_vpc_endpoints": wrap_delete_vpc_endpoints,
    "describe_vpc_endpoints": wrap_describe_vpc_endpoints,
}


def _result_member(result: ActionResult, member: str) -> Any:
    body = result.result
    return body.get(member) if isinstance(body, dict) else None
