"""Who is calling: the IAM principals an EC2 request is made as, for the allowed-principals gate.

moto derives the account from the access key (keys minted by ``sts:AssumeRole`` belong to the
role's account; unknown keys to the default account 123456789012). A request counts as every
principal AWS would match against a service's allowed principals: the account root
(``arn:aws:iam::<acct>:root``), plus the assumed role's ARN or the IAM user's ARN behind the key.
"""

from __future__ import annotations

from typing import Any

from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition


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
