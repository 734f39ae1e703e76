"""The condition keys a template may test: their canonical names, value types and meaning.

Key names are case-insensitive, as in IAM: ``Tenant:status`` is ``tenant:Status``. The label
part of ``tenant:Labels/<key>`` keeps the spelling written in the template but is also matched
case-insensitively against the context.
"""

import re
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class KeyType(StrEnum):
    """What a context key carries; decides which operator families may test it."""

    STRING = "String"
    STRING_LIST = "StringList"
    NUMBER = "Number"
    DATE = "Date"
    BOOL = "Bool"
    LABEL = "Label"  # tenant-defined string; may hold a number, date or boolean as text


@dataclass(frozen=True, slots=True)
class ConditionKey:
    name: str
    type: KeyType
    description: str

    @property
    def multi_valued(self) -> bool:
        return self.type is KeyType.STRING_LIST


LABEL_PREFIX: Final = "tenant:Labels/"
LABEL_KEY_PATTERN: Final = "tenant:Labels/<key>"
_LABEL_NAME = re.compile(r"[A-Za-z0-9_.:/=+\-@]{1,128}")

_KEYS: Final = (
    ConditionKey("endpoint:Id", KeyType.STRING, "the interface endpoint id (vpce-…)"),
    ConditionKey("endpoint:Owner", KeyType.STRING, "the account id that owns the endpoint"),
    ConditionKey("endpoint:ServiceId", KeyType.STRING, "the endpoint service id (vpce-svc-…)"),
    ConditionKey("endpoint:Region", KeyType.STRING, "the endpoint's region (cross-region PrivateLink)"),
    ConditionKey("endpoint:IpAddressType", KeyType.STRING, "ipv4 | ipv6 | dualstack"),
    ConditionKey("endpoint:State", KeyType.STRING, "the connection state, e.g. pendingAcceptance"),
    ConditionKey("endpoint:CreatedAt", KeyType.DATE, "when the endpoint was created"),
    ConditionKey(
        "endpoint:HealthyTargets",
        KeyType.BOOL,
        "the service's NLB has a healthy target serving at least one of its zones (cross-zone counted); "
        "absent when the load balancer could not be read",
    ),
    ConditionKey(
        "endpoint:HealthyTargetZones",
        KeyType.STRING_LIST,
        "the NLB's zones whose traffic reaches a healthy target (cross-zone counted); "
        "absent when the load balancer could not be read",
    ),
    ConditionKey(
        "endpoint:Registered",
        KeyType.BOOL,
        "the tenant registered this endpoint id before it asked to connect (`registered_endpoints`)",
    ),
    ConditionKey("tenant:Id", KeyType.STRING, "the tenant that owns the requesting principal"),
    ConditionKey("tenant:Status", KeyType.STRING, "active | suspended"),
    ConditionKey("tenant:Services", KeyType.STRING_LIST, "service ids (or patterns) the tenant may use"),
    ConditionKey(LABEL_KEY_PATTERN, KeyType.LABEL, "a label on the tenant record"),
    ConditionKey("tenant:ActiveEndpoints", KeyType.NUMBER, "the tenant's endpoints currently holding a slot"),
    ConditionKey("tenant:ExpiresAt", KeyType.DATE, "when the tenant's entitlement expires"),
    ConditionKey("tenant:MaxEndpoints", KeyType.NUMBER, "the tenant record's endpoint quota"),
    ConditionKey("gatekeeper:CurrentTime", KeyType.DATE, "the decision time, supplied by the caller"),
)

DATA_PLANE_KEYS: Final = frozenset({"endpoint:HealthyTargets", "endpoint:HealthyTargetZones"})
"""Keys read from the load balancer (elbv2) behind the service: computed only for a template that
references one, so other templates cost no load balancer calls."""

CONDITION_KEYS: Final = MappingProxyType({key.name: key for key in _KEYS})
"""Every condition key, by canonical name (``tenant:Labels/<key>`` stands for all labels)."""

_BY_LOWER: Final = {key.name.lower(): key.name for key in _KEYS if key.type is not KeyType.LABEL}


def canonical_key(name: str) -> str | None:
    """The canonical spelling of a condition key, or None when it is not a known key."""
    lowered = name.strip().lower()
    if lowered.startswith(LABEL_PREFIX.lower()):
        label = name.strip()[len(LABEL_PREFIX) :]
        return LABEL_PREFIX + label if _LABEL_NAME.fullmatch(label) else None
    return _BY_LOWER.get(lowered)


def key_info(canonical: str) -> ConditionKey:
    """The declaration of a canonical key (labels share one declaration)."""
    if canonical.startswith(LABEL_PREFIX):
        return CONDITION_KEYS[LABEL_KEY_PATTERN]
    return CONDITION_KEYS[canonical]


def known_key_names() -> str:
    return ", ".join(CONDITION_KEYS)
