"""The EC2 errors the emulator answers with: whole-request errors and per-item ``Unsuccessful`` entries.

Codes and messages follow what AWS returns where it is known (``InvalidServiceName``,
``InvalidVpcEndpointServiceId.NotFound``, the ``maxResults`` message); where AWS does not document
them the choice is recorded in docs/emulator.md. Request errors are moto ``EC2ClientError``s so
moto serializes them as EC2 ``<Response><Errors>`` documents and boto3 raises ``ClientError``.
"""

from __future__ import annotations

from collections.abc import Iterable

from moto.ec2.exceptions import EC2ClientError


class EmulatorRequestError(EC2ClientError):
    """An EC2 error response raised by an emulated action."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


def service_name_not_found(service_name: str) -> EmulatorRequestError:
    # AWS answers a principal that is not allowed exactly as if the service did not exist.
    return EmulatorRequestError(
        "InvalidServiceName", f"The Vpc Endpoint Service '{service_name}' does not exist"
    )


def service_id_not_found(service_id: str) -> EmulatorRequestError:
    return EmulatorRequestError(
        "InvalidVpcEndpointServiceId.NotFound", f"The VpcEndpointService Id '{service_id}' does not exist"
    )


def endpoint_id_not_found(endpoint_id: str) -> EmulatorRequestError:
    return EmulatorRequestError(
        "InvalidVpcEndpointId.NotFound", f"The Vpc Endpoint Id '{endpoint_id}' does not exist"
    )


def notification_not_found(notification_id: str) -> EmulatorRequestError:
    return EmulatorRequestError(
        "InvalidConnectionNotification", f"The connection notification '{notification_id}' does not exist"
    )


def topic_unusable(topic_arn: str, reason: str) -> EmulatorRequestError:
    return EmulatorRequestError(
        "InvalidConnectionNotification",
        f"Cannot use SNS topic '{topic_arn}' for connection notifications: {reason}",
    )


def max_results_invalid(value: int, expectation: str) -> EmulatorRequestError:
    # EC2's own wording, e.g. "Value ( 1 ) for parameter maxResults is invalid. Expecting a value
    # greater than 5." (sic: 5 itself is accepted).
    return EmulatorRequestError(
        "InvalidParameterValue",
        f"Value ( {value} ) for parameter maxResults is invalid. Expecting a value {expectation}.",
    )


def invalid_next_token(token: str) -> EmulatorRequestError:
    return EmulatorRequestError(
        "InvalidPaginationToken", f"The pagination token '{token}' is not valid or is expired."
    )


def invalid_filter(name: str) -> EmulatorRequestError:
    return EmulatorRequestError("InvalidParameterValue", f"The filter '{name}' is invalid")


def invalid_connection_events(values: Iterable[str]) -> EmulatorRequestError:
    return EmulatorRequestError(
        "InvalidParameterValue",
        f"Invalid connection events {sorted(values)}; valid values are Accept, Connect, Delete and Reject.",
    )


def missing_parameter(name: str) -> EmulatorRequestError:
    return EmulatorRequestError("MissingParameter", f"The request must contain the parameter {name}")


def invalid_parameter_combination(message: str) -> EmulatorRequestError:
    return EmulatorRequestError("InvalidParameterCombination", message)


def unsuccessful(resource_id: str, code: str, message: str) -> dict[str, object]:
    """One ``UnsuccessfulItem`` of a batch answer (Accept/RejectVpcEndpointConnections)."""
    return {"ResourceId": resource_id, "Error": {"Code": code, "Message": message}}


def unsuccessful_unknown_endpoint(endpoint_id: str, service_id: str) -> dict[str, object]:
    # An id connected to another service gets the same answer as an unknown id, so a producer
    # cannot probe other services' connections.
    return unsuccessful(
        endpoint_id,
        "InvalidVpcEndpointId.NotFound",
        f"The Vpc Endpoint Id '{endpoint_id}' does not exist for service '{service_id}'",
    )


def unsuccessful_wrong_state(endpoint_id: str, state: str, action: str) -> dict[str, object]:
    return unsuccessful(
        endpoint_id,
        "InvalidState",
        f"Endpoint '{endpoint_id}' is in state '{state}' and cannot be {action}",
    )


def ip_address_type_not_supported(
    service_id: str, ip_address_type: str, supported: frozenset[str]
) -> EmulatorRequestError:
    # AWS does not document this error's wording; the code is EC2's generic parameter error.
    return EmulatorRequestError(
        "InvalidParameter",
        f"The VPC endpoint service {service_id} does not support IP address type {ip_address_type}; "
        f"it supports {', '.join(sorted(supported))}",
    )


def invalid_principal(principal: str) -> EmulatorRequestError:
    # EC2's answer, e.g. "InvalidPrincipal: Invalid Principal: 'arn:aws:sts::…:assumed-role/…'".
    return EmulatorRequestError("InvalidPrincipal", f"Invalid Principal: '{principal}'")


def unsuccessful_service_has_connections(service_id: str) -> dict[str, object]:
    # The API reference: reject Available or PendingAcceptance connections before deleting a service.
    return unsuccessful(
        service_id,
        "ExistingVpcEndpointConnections",
        f"Service {service_id} has existing active VPC Endpoint connections",
    )
