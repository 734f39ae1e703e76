"""Identifier formats (accounts, endpoint services, endpoints, tenants, principals) and the clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from gatekeeper.models.errors import InvalidPrincipal

ACCOUNT_ID = re.compile(r"^\d{12}$")
SERVICE_ID = re.compile(r"^vpce-svc-[0-9a-f]{8,17}$")
ENDPOINT_ID = re.compile(r"^vpce-[0-9a-f]{8,17}$")
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):(root|role/.+|user/.+)$")


def now_utc() -> datetime:
    return datetime.now(UTC)


def account_of(principal: str) -> str:
    """The AWS account a tenant principal (account id or IAM ARN) lives in.

    Raises InvalidPrincipal with the reason PrivateLink would refuse it.
    """
    if ACCOUNT_ID.match(principal):
        return principal
    match = PRINCIPAL_ARN.match(principal)
    if not match:
        raise InvalidPrincipal(
            f"principal {principal!r} is neither a 12-digit account id nor an IAM ARN of the form "
            "arn:aws:iam::<account>:root|role/<name>|user/<name>"
        )
    kind = match.group(2)
    if kind != "root" and kind.count("/") > 1:
        raise InvalidPrincipal(
            f"principal {principal} has a path; PrivateLink does not accept principal ARNs with paths "
            f"(use arn:aws:iam::{match.group(1)}:{kind.split('/')[0]}/{kind.rsplit('/', 1)[-1]})"
        )
    return match.group(1)


def principal_arn(principal: str) -> str:
    """The ARN form used in a service's allowed principals (`<account>` → `…:root`)."""
    return f"arn:aws:iam::{principal}:root" if ACCOUNT_ID.match(principal) else principal
