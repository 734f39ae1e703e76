"""Who is calling: the IAM principals an EC2 request is made as, for the allowed-principals gate.

moto derives the account from the access key (keys minted by ``sts:AssumeRole`` belong to the
role's account; unknown keys to the default account 123456789012). A request counts as every
principal AWS would match against a service's allowed principals: the account root
(``arn:aws:iam::<acct>:root``), plus the assumed role's ARN or the IAM user's ARN behind the key.
"""

from __future__ import annotations

import re
from typing import Any

from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition

from gatekeeper_ops.emulator import errors

_PARTITION = r"aws(?:-cn|-us-gov)?"
_NAME = r"[\w+=,.@-]{1,64}"
#: The allowed-principal forms EC2 accepts, and the ``PrincipalType`` it reports for each.
PRINCIPAL_FORMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("All", re.compile(r"\*")),
    ("Account", re.compile(rf"arn:{_PARTITION}:iam::\d{{12}}:root")),
    ("Role", re.compile(rf"arn:{_PARTITION}:iam::\d{{12}}:role/{_NAME}")),
    ("User", re.compile(rf"arn:{_PARTITION}:iam::\d{{12}}:user/{_NAME}")),
    ("Service", re.compile(r"[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?")),
    (
        "OrganizationUnit",
        re.compile(
            rf"arn:{_PARTITION}:organizations::\d{{12}}:"
            r"(?:organization/o-[a-z0-9]{10,32}|ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})"
        ),
    ),
)


def principal_type(principal: str) -> str:
    """The ``PrincipalType`` of an allowed principal, or ``InvalidPrincipal`` as EC2 answers.

    IAM ARNs must name an account root, a role or a user without a path (``role/a/b`` is refused:
    PrivateLink does not accept principal ARNs with paths), assumed-role session ARNs
    (``arn:aws:sts::…:assumed-role/…``) are refused, and service principals, organizations and
    OUs are accepted.
    """
    for kind, form in PRINCIPAL_FORMS:
        if form.fullmatch(principal):
            return kind
    raise errors.invalid_principal(principal)


def caller_principals(account_id: str, region: str, access_key_id: str) -> frozenset[str]:
    partition = get_partition(region)
    principals = {f"arn:{partition}:iam::{account_id}:root"}
    access_key = _access_key(account_id, partition, access_key_id)
    if access_key is not None:
        role_arn = getattr(access_key, "role_arn", None)
        user_name = getattr(access_key, "user_name", None)
        if role_arn:
            principals.add(str(role_arn))
        elif user_name:
            principals.add(f"arn:{partition}:iam::{account_id}:user/{user_name}")
    return frozenset(principals)


def principal_arn(account_id: str, region: str, access_key_id: str) -> str:
    """The caller as IAM's ``aws:PrincipalArn`` names it: the role behind an assumed-role key (not
    the session), else the IAM user, else the account root."""
    principals = caller_principals(account_id, region, access_key_id)
    root = f"arn:{get_partition(region)}:iam::{account_id}:root"
    named = sorted(p for p in principals if p != root)
    return named[0] if named else root


def principal_allowed(caller: frozenset[str], allowed: frozenset[str]) -> bool:
    return "*" in allowed or bool(caller & allowed)


def _access_key(account_id: str, partition: str, access_key_id: str) -> Any | None:
    account = iam_backends.get(account_id)
    if account is None:
        return None
    backend = dict(account.items()).get(partition)
    if backend is None:
        return None
    return backend.access_keys.get(access_key_id)
