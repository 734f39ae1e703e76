"""The EC2 actions the emulator adds to moto and the ones it wraps, as ``EC2Response`` methods (plus
SNS ``Publish``, wrapped on ``SNSResponse``).

moto dispatches an EC2 request by its ``Action`` to the snake_case method of ``EC2Response``, then
serializes the returned ``ActionResult`` against botocore's model of that operation. The handlers
here only parse parameters, call one ``lifecycle`` function and return the result in the model's
member names (``VpcEndpointConnections``, ``Unsuccessful`` …) so boto3 parses it like AWS's answer.
``activation`` attaches them to ``EC2Response``; ``self`` is that moto response object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.sns.exceptions import SNSInvalidParameter

from gatekeeper_ops.emulator import errors, lifecycle
from gatekeeper_ops.emulator.identity import caller_principals, principal_arn, principal_type
from gatekeeper_ops.emulator.policy import Request, explicitly_denied
from gatekeeper_ops.emulator.settings import current_settings
from gatekeeper_ops.emulator.store import LOCK, SUPPORTED_IP_ADDRESS_TYPES_ATTRIBUTE

Handler = Callable[[Any], ActionResult]


def _filters(response: Any) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = response._filters_from_querystring()
    return filters


# --- new actions ----------------------------------------------------------------------------------


def describe_vpc_endpoint_connections(self: Any) -> ActionResult:
    self.error_on_dryrun()
    lifecycle.deliver_notifications()
    connections, next_token = lifecycle.describe_connections(
        self.current_account,
        self.region,
        filters=_filters(self),
        max_results=self._get_int_param("MaxResults"),
        next_token=self._get_param("NextToken"),
        # A reader is the calling account: its callers (the functions, each signing as its role, the CLI,
        # a harness) share what the account has seen of EC2, so no caller of it steps back.
        reader=self.current_account,
    )
    return ActionResult({"VpcEndpointConnections": connections, "NextToken": next_token})


def accept_vpc_endpoint_connections(self: Any) -> ActionResult:
    self.error_on_dryrun()
    lifecycle.deliver_notifications()
    unsuccessful = lifecycle.accept_connections(
        self.current_account,
        self.region,
        self._get_param("ServiceId"),
        self._get_param("VpcEndpointIds", []),
    )
    return ActionResult({"Unsuccessful": unsuccessful})


def reject_vpc_endpoint_connections(self: Any) -> ActionResult:
    self.error_on_dryrun()
    lifecycle.deliver_notifications()
    unsuccessful = lifecycle.reject_connections(
        self.current_account,
        self.region,
        self._get_param("ServiceId"),
        self._get_param("VpcEndpointIds", []),
    )
    return ActionResult({"Unsuccessful": unsuccessful})


def create_vpc_endpoint_connection_notification(self: Any) -> ActionResult:
    self.error_on_dryrun()
    lifecycle.deliver_notifications()
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
    lifecycle.deliver_notifications()
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
    lifecycle.deliver_notifications()
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
        lifecycle.deliver_notifications()
        service = lifecycle.authorize_connection(
            consumer_account=self.current_account,
            consumer_region=self.region,
            caller=caller_principals(self.current_account, self.region, self.get_access_key()),
            service_name=self._get_param("ServiceName"),
            service_region=self._get_param("ServiceRegion"),
            ip_address_type=self._get_param("IpAddressType"),
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
        lifecycle.deliver_notifications()
        result = original(self)
        lifecycle.endpoints_deleted(self.current_account, self.region, self._get_param("VpcEndpointIds", []))
        return result

    return delete_vpc_endpoints


def wrap_describe_vpc_endpoints(original: Handler) -> Handler:
    """Apply the ``pending`` rule to the consumer's view, exactly as for the producer's describe."""

    def describe_vpc_endpoints(self: Any) -> ActionResult:
        lifecycle.deliver_notifications()
        lifecycle.settle_consumer_endpoints(self.current_account, self.region)
        result = original(self)
        endpoints = _result_member(result, "VpcEndpoints") or []
        lifecycle.observe_consumer_endpoints(
            self.current_account, self.region, [str(endpoint.id) for endpoint in endpoints]
        )
        return result

    return describe_vpc_endpoints


def wrap_modify_vpc_endpoint_service_permissions(original: Handler) -> Handler:
    """Refuse allowed principals EC2 refuses (``InvalidPrincipal``), before moto stores anything."""

    def modify_vpc_endpoint_service_permissions(self: Any) -> ActionResult:
        for principal in self._get_param("AddAllowedPrincipals", []):
            principal_type(principal)
        return original(self)

    return modify_vpc_endpoint_service_permissions


def wrap_describe_vpc_endpoint_service_permissions(original: Handler) -> Handler:
    """moto lists bare ARNs; EC2 also says what each is (``PrincipalType``) and its permission id."""

    def describe_vpc_endpoint_service_permissions(self: Any) -> ActionResult:
        result = original(self)
        service_id = str(self._get_param("ServiceId"))
        principals = _result_member(result, "AllowedPrincipals") or []
        described = []
        for entry in principals:
            principal = str(entry["Principal"])
            described.append(
                {
                    "PrincipalType": _principal_type_or_unknown(principal),
                    "Principal": principal,
                    "ServicePermissionId": _permission_id(service_id, principal),
                    "ServiceId": service_id,
                }
            )
        return ActionResult({"AllowedPrincipals": sorted(described, key=lambda p: p["Principal"])})

    return describe_vpc_endpoint_service_permissions


def wrap_delete_vpc_endpoint_service_configurations(_original: Handler) -> Handler:
    """A service with live connections is not deleted; it is reported ``Unsuccessful`` as EC2 does."""

    def delete_vpc_endpoint_service_configurations(self: Any) -> ActionResult:
        lifecycle.deliver_notifications()
        requested = list(self._get_param("ServiceIds", []))
        held = [
            service_id
            for service_id in requested
            if lifecycle.service_has_live_connections(self.current_account, self.region, service_id)
        ]
        unsuccessful = [errors.unsuccessful_service_has_connections(service_id) for service_id in held]
        rest = [service_id for service_id in requested if service_id not in held]
        # moto's own handler is two lines over its backend; calling the backend keeps the ids apart.
        for missing in self.ec2_backend.delete_vpc_endpoint_service_configurations(rest):
            unsuccessful.append(
                errors.unsuccessful(
                    missing,
                    "InvalidVpcEndpointService.NotFound",
                    f"The VpcEndpointService Id '{missing}' does not exist",
                )
            )
        return ActionResult({"Unsuccessful": unsuccessful})

    return delete_vpc_endpoint_service_configurations


def wrap_create_vpc_endpoint_service_configuration(original: Handler) -> Handler:
    """Keep ``SupportedIpAddressTypes`` (moto drops it) so CreateVpcEndpoint can check it."""

    def create_vpc_endpoint_service_configuration(self: Any) -> ActionResult:
        result = original(self)
        config = _result_member(result, "ServiceConfiguration")
        types = self._get_param("SupportedIpAddressTypes", [])
        if config is not None and types:
            with LOCK:
                setattr(config, SUPPORTED_IP_ADDRESS_TYPES_ATTRIBUTE, tuple(types))
        return result

    return create_vpc_endpoint_service_configuration


def wrap_modify_vpc_endpoint_service_configuration(original: Handler) -> Handler:
    """Apply ``Add/RemoveSupportedIpAddressTypes`` (moto drops them) to what the emulator keeps."""

    def modify_vpc_endpoint_service_configuration(self: Any) -> ActionResult:
        result = original(self)
        add = list(self._get_param("AddSupportedIpAddressTypes", []))
        remove = set(self._get_param("RemoveSupportedIpAddressTypes", []))
        config = self.ec2_backend.configurations.get(self._get_param("ServiceId"))
        if config is not None and (add or remove):
            with LOCK:
                current = getattr(config, SUPPORTED_IP_ADDRESS_TYPES_ATTRIBUTE, None) or ("ipv4",)
                kept = [t for t in dict.fromkeys([*current, *add]) if t not in remove]
                setattr(config, SUPPORTED_IP_ADDRESS_TYPES_ATTRIBUTE, tuple(kept))
        return result

    return modify_vpc_endpoint_service_configuration


WRAPPED_ACTIONS: dict[str, Callable[[Handler], Handler]] = {
    "create_vpc_endpoint": wrap_create_vpc_endpoint,
    "delete_vpc_endpoints": wrap_delete_vpc_endpoints,
    "describe_vpc_endpoints": wrap_describe_vpc_endpoints,
    "modify_vpc_endpoint_service_permissions": wrap_modify_vpc_endpoint_service_permissions,
    "describe_vpc_endpoint_service_permissions": wrap_describe_vpc_endpoint_service_permissions,
    "delete_vpc_endpoint_service_configurations": wrap_delete_vpc_endpoint_service_configurations,
    "create_vpc_endpoint_service_configuration": wrap_create_vpc_endpoint_service_configuration,
    "modify_vpc_endpoint_service_configuration": wrap_modify_vpc_endpoint_service_configuration,
}


def wrap_sns_publish(original: Handler) -> Handler:
    """SNS refuses a Publish without a message body; moto delivers it."""

    def publish(self: Any) -> ActionResult:
        if not self._get_param("Message"):
            raise SNSInvalidParameter("Invalid parameter: Empty message")
        return original(self)

    return publish


SNS_WRAPPED_ACTIONS: dict[str, Callable[[Handler], Handler]] = {"publish": wrap_sns_publish}


class AccessDeniedException(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("AccessDeniedException", message)


def wrap_events_put_events(original: Handler) -> Handler:
    """EventBridge authorises PutEvents against the bus's resource policy: an explicit Deny (e.g. on
    ``events:source`` unless ``aws:PrincipalArn`` is a named role) refuses the whole call, for
    callers of the bus's own account too. moto stores the policy (PutPermission) but ignores it."""

    def put_events(self: Any) -> Any:
        if not current_settings().enforce_bus_policy:
            return original(self)
        caller = principal_arn(self.current_account, self.region, self.get_access_key())
        for entry in self._get_param("Entries") or []:
            bus = self.events_backend._get_event_bus(entry.get("EventBusName") or "default")
            request = Request(
                caller,
                "events:PutEvents",
                bus.arn,
                {
                    "aws:PrincipalArn": caller,
                    "events:source": str(entry.get("Source", "")),
                    "events:detail-type": str(entry.get("DetailType", "")),
                },
            )
            denial = explicitly_denied(bus.policy, request)
            if denial is not None:
                raise AccessDeniedException(
                    f"User: {caller} is not authorized to perform: events:PutEvents on resource: "
                    f"{bus.arn} with an explicit deny in a resource-based policy ({denial.reason})"
                )
        return original(self)

    return put_events


EVENTS_WRAPPED_ACTIONS: dict[str, Callable[[Handler], Handler]] = {"put_events": wrap_events_put_events}


def _principal_type_or_unknown(principal: str) -> str:
    try:
        return principal_type(principal)
    except errors.EmulatorRequestError:
        return "All" if principal == "*" else "Account"  # stored before the emulator validated


def _permission_id(service_id: str, principal: str) -> str:
    digest = hashlib.sha256(f"{service_id}|{principal}".encode()).hexdigest()[:17]
    return f"vpce-svc-perm-{digest}"


def _result_member(result: ActionResult, member: str) -> Any:
    body = result.result
    return body.get(member) if isinstance(body, dict) else None
