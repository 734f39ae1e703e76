"""Errors a person can act on. Each names the thing at fault and what to do about it."""

from __future__ import annotations


class GatekeeperError(Exception):
    """Base of every error the core raises on purpose."""


class InvalidPrincipal(GatekeeperError, ValueError):
    """A tenant principal PrivateLink would not accept."""


class TenantInvalid(GatekeeperError):
    """A stored tenant record does not validate (e.g. hand-edited in the console)."""

    def __init__(self, message: str, tenant_id: str | None = None) -> None:
        super().__init__(message)
        self.tenant_id = tenant_id  # the tenant its key names, when known


class TenantNotFound(GatekeeperError):
    pass


class WriteConflict(GatekeeperError):
    """A write lost a race or would break a uniqueness rule; nothing was written."""


class TenantConflict(WriteConflict):
    pass


class QuotaExceeded(GatekeeperError):
    """The tenant has no free endpoint slot."""


class DecisionInProgress(GatekeeperError):
    """Another invocation is deciding this endpoint right now; retry later."""


class TemplateNotFound(GatekeeperError):
    pass


class ConnectionActionFailed(GatekeeperError):
    """EC2 answered an Accept/Reject with the endpoint in `Unsuccessful`."""

    def __init__(self, action: str, vpc_endpoint_id: str, code: str, message: str) -> None:
        super().__init__(f"{action} of {vpc_endpoint_id} was unsuccessful: {code}: {message}")
        self.action = action
        self.vpc_endpoint_id = vpc_endpoint_id
        self.code = code


class PermissionsNotChanged(GatekeeperError):
    """ModifyVpcEndpointServicePermissions answered without making the change."""


class ConnectionNotVisible(GatekeeperError):
    """EC2 does not (yet) list a connection a source saw: Describe is eventually consistent.
    Raised so the event is delivered again later, never decided on a read that missed it."""


class OutcomeUnknown(GatekeeperError):
    """An Accept/Reject whose effect cannot be confirmed yet; the claim stays for a retry to finish."""


class EventRefused(GatekeeperError, ValueError):
    """An event that is not a request this function takes (wrong source or detail-type)."""


class PublishFailed(GatekeeperError):
    """EventBridge reported failed entries."""


class NotificationUnparseable(GatekeeperError):
    """An SQS message that holds no usable connection notification; retrying will not help."""


class DataPlaneUnreadable(GatekeeperError):
    """The load balancer behind an endpoint service could not be read (elbv2 or EC2 refused, timed
    out or answered something unexpected). Never read as "healthy": the decision holds."""
