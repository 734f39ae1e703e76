"""The one place that reads the data plane behind our endpoint services: the Network Load Balancers
(elbv2) and what a consumer needs to connect (the service configuration, the listeners).

Read-only Describe calls, cached per container for a short TTL so a burst of requests costs one
look. Which zones have healthy targets:
- an NLB node in a zone sends an endpoint's traffic to targets in its own zone, or to targets in
  every enabled zone when cross-zone load balancing is on (the target group's
  `load_balancing.cross_zone.enabled`, which defaults to the load balancer's);
- a target's zone is the one it was registered with (`all` = every zone), else for an instance
  target its placement (EC2 DescribeInstances); a target whose zone cannot be told (an IP target
  described without one) counts only when cross-zone load balancing is on.
Any failure to read raises DataPlaneUnreadable: nothing here ever guesses "healthy".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from gatekeeper.models.decision import ServiceAccess
from gatekeeper.models.errors import DataPlaneUnreadable
from gatekeeper.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

DEFAULT_TTL_SECONDS = 30.0
# A failure is remembered briefly too, so one decision (assess, then the accepted notice) or a burst
# does not wait on a failing elbv2 again and again; the next look after it tries again.
FAILURE_TTL_SECONDS = 5.0
# The accepted notice is informational and read after the accept: once reading it has taken this
# long (a slow or hanging elbv2), the parts not read yet are left out rather than waited for.
ACCESS_BUDGET_SECONDS = 3.0
_CROSS_ZONE = "load_balancing.cross_zone.enabled"


@dataclass(frozen=True)
class DataPlane:
    """Where an endpoint service's traffic can reach a healthy target, as the NLBs report it now."""

    service_id: str
    load_balancer_arns: tuple[str, ...]
    zones: tuple[str, ...]  # zones the load balancers are enabled in
    healthy_zones: tuple[str, ...]  # zones whose traffic reaches a healthy target
    registered_targets: int
    healthy_targets: int
    cross_zone: bool  # on for at least one target group

    @property
    def has_healthy_targets(self) -> bool:
        return bool(self.healthy_zones)

    @property
    def unserved_zones(self) -> tuple[str, ...]:
        return tuple(zone for zone in self.zones if zone not in self.healthy_zones)

    def describe(self) -> str:
        """One explanation line naming the zones."""
        counts = (
            f"{self.healthy_targets} of {self.registered_targets} registered targets healthy; "
            f"cross-zone load balancing {'on' if self.cross_zone else 'off'}"
        )
        if not self.healthy_zones:
            zones = ", ".join(self.zones) or "no zone"
            return f"the load balancer of {self.service_id} has no healthy target serving {zones} ({counts})"
        served = f"healthy targets serve {', '.join(self.healthy_zones)}"
        if self.unserved_zones:
            served += f"; none serve {', '.join(self.unserved_zones)}"
        return f"the load balancer of {self.service_id}: {served} ({counts})"


class LoadBalancers:
    def __init__(
        self,
        elbv2: Any,  # no elbv2 type stubs in the lock; the calls are checked by the unit tests' Stubber
        ec2: EC2Client,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        failure_ttl_seconds: float = FAILURE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._elbv2 = elbv2
        self._ec2 = ec2
        self._ttl = ttl_seconds
        self._failure_ttl = min(failure_ttl_seconds, ttl_seconds)
        self._clock = clock
        self._cache: dict[tuple[str, ...], tuple[float, Any]] = {}

    # -- what the decision path asks -----------------------------------------------------------
    def data_plane(self, service_id: str, load_balancer_arns: Sequence[str] = ()) -> DataPlane:
        """Which zones of the service's NLBs reach a healthy target. `load_balancer_arns` as the
        connection carries them; when it carries none, the service configuration's."""
        key = ("data-plane", service_id)  # a service's connections all carry the service's NLBs
        return self._cached(key, lambda: self._read_data_plane(service_id, tuple(load_balancer_arns)))

    def service_access(self, service_id: str, load_balancer_arns: Sequence[str] = ()) -> ServiceAccess:
        """What a consumer needs to connect: service name, listener ports, private DNS name and its
        verification state, and (when the data plane reads) the zones with healthy targets. The
        service configuration must read; listeners and health are left out when they do not."""
        key = ("access", service_id)
        return self._cached(key, lambda: self._read_access(service_id, tuple(load_balancer_arns)))

    # -- reading ----------------------------------------------------------------------------------
    def _cached[T](self, key: tuple[str, ...], read: Callable[[], T]) -> T:
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            if isinstance(hit[1], DataPlaneUnreadable):
                raise hit[1]
            return cast(T, hit[1])
        try:
            value = read()
        except DataPlaneUnreadable as exc:
            self._cache[key] = (now + self._failure_ttl, exc)
            raise
        except (ClientError, BotoCoreError, KeyError, TypeError, ValueError) as exc:
            failure = DataPlaneUnreadable(f"{key[1]}: {type(exc).__name__}: {exc}")
            self._cache[key] = (now + self._failure_ttl, failure)
            raise failure from exc
        self._cache[key] = (now + self._ttl, value)
        return value

    def _fresh(self, key: tuple[str, ...]) -> bool:
        hit = self._cache.get(key)
        return hit is not None and hit[0] > self._clock()

    def _service_configuration(self, service_id: str) -> dict[str, Any]:
        found = self._ec2.describe_vpc_endpoint_service_configurations(ServiceIds=[service_id])
        configurations = found.get("ServiceConfigurations", [])
        if not configurations:
            raise DataPlaneUnreadable(f"EC2 does not describe the endpoint service {service_id}")
        return dict(configurations[0])

    def _arns(self, service_id: str, given: tuple[str, ...]) -> tuple[str, ...]:
        arns = given or tuple(self._service_configuration(service_id).get("NetworkLoadBalancerArns", []))
        if not arns:
            raise DataPlaneUnreadable(f"{service_id} has no network load balancer")
        return arns

    def _read_data_plane(self, service_id: str, given: tuple[str, ...]) -> DataPlane:
        arns = self._arns(service_id, given)
        zones: set[str] = set()
        healthy_zones: set[str] = set()
        registered = healthy = 0
        any_cross_zone = False
        balancers = self._elbv2.describe_load_balancers(LoadBalancerArns=list(arns))["LoadBalancers"]
        if len(balancers) != len(arns):
            raise DataPlaneUnreadable(f"{service_id}: elbv2 describes {len(balancers)} of {len(arns)} NLBs")
        for balancer in balancers:
            arn = balancer["LoadBalancerArn"]
            lb_zones = {zone["ZoneName"] for zone in balancer.get("AvailabilityZones", [])}
            zones |= lb_zones
            lb_cross_zone = self._attribute(
                self._elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn), "false"
            )
            for group in self._target_groups(arn):
                group_arn = group["TargetGroupArn"]
                setting = self._attribute(
                    self._elbv2.describe_target_group_attributes(TargetGroupArn=group_arn),
                    "use_load_balancer_configuration",
                )
                inherited = setting == "use_load_balancer_configuration"
                cross_zone = (lb_cross_zone if inherited else setting) == "true"
                any_cross_zone |= cross_zone
                health = self._elbv2.describe_target_health(TargetGroupArn=group_arn)
                targets = health["TargetHealthDescriptions"]
                registered += len(targets)
                up = [t["Target"] for t in targets if t["TargetHealth"]["State"] == "healthy"]
                healthy += len(up)
                if up and cross_zone:
                    healthy_zones |= lb_zones
                elif up:
                    healthy_zones |= self._zones_of(up, group.get("TargetType", "instance"), lb_zones)
        return DataPlane(
            service_id=service_id,
            load_balancer_arns=arns,
            zones=tuple(sorted(zones)),
            healthy_zones=tuple(sorted(healthy_zones & zones)),
            registered_targets=registered,
            healthy_targets=healthy,
            cross_zone=any_cross_zone,
        )

    @staticmethod
    def _attribute(response: dict[str, Any], default: str) -> str:
        for attribute in response.get("Attributes", []):
            if attribute.get("Key") == _CROSS_ZONE:
                return str(attribute.get("Value", default)).lower()
        return default

    def _target_groups(self, load_balancer_arn: str) -> Iterator[dict[str, Any]]:
        marker: str | None = None
        while True:
            kwargs: dict[str, Any] = {"LoadBalancerArn": load_balancer_arn}
            if marker:
                kwargs["Marker"] = marker
            page = self._elbv2.describe_target_groups(**kwargs)
            yield from page.get("TargetGroups", [])
            marker = page.get("NextMarker")
            if not marker:
                return

    def _zones_of(self, targets: list[dict[str, Any]], target_type: str, lb_zones: set[str]) -> set[str]:
        zones: set[str] = set()
        unplaced: list[str] = []
        for target in targets:
            zone = target.get("AvailabilityZone")
            if zone == "all":
                zones |= lb_zones
            elif zone:
                zones.add(zone)
            elif target_type == "instance":
                unplaced.append(target["Id"])
        if unplaced:
            zones |= self._instance_zones(unplaced)
        return zones

    def _instance_zones(self, instance_ids: list[str]) -> set[str]:
        zones: set[str] = set()
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"InstanceIds": sorted(set(instance_ids))}
            if token:
                kwargs["NextToken"] = token
            page = self._ec2.describe_instances(**kwargs)
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    zone = instance.get("Placement", {}).get("AvailabilityZone")
                    if zone:
                        zones.add(zone)
            token = page.get("NextToken")
            if not token:
                return zones

    def _read_access(self, service_id: str, given: tuple[str, ...]) -> ServiceAccess:
        started = self._clock()
        configuration = self._service_configuration(service_id)
        arns = given or tuple(configuration.get("NetworkLoadBalancerArns", []))
        dns = configuration.get("PrivateDnsNameConfiguration") or {}
        ports: tuple[int, ...] | None = None
        healthy_zones: tuple[str, ...] | None = None
        try:
            ports = tuple(sorted({port for arn in arns for port in self._listener_ports(arn)}))
        except (ClientError, BotoCoreError, KeyError) as exc:
            logger.warning("Listener ports unreadable; left out of the notice", extra={"error": str(exc)})
        try:
            spent = self._clock() - started > ACCESS_BUDGET_SECONDS
            if spent and not self._fresh(("data-plane", service_id)):
                raise DataPlaneUnreadable("not read: the notice's time budget is spent")
            healthy_zones = self.data_plane(service_id, arns).healthy_zones
        except DataPlaneUnreadable as exc:
            logger.warning("Target health unreadable; left out of the notice", extra={"error": str(exc)})
        return ServiceAccess(
            service_name=configuration["ServiceName"],
            ports=ports,
            private_dns_name=configuration.get("PrivateDnsName"),
            private_dns_name_state=dns.get("State") if configuration.get("PrivateDnsName") else None,
            healthy_zones=healthy_zones,
        )

    def _listener_ports(self, load_balancer_arn: str) -> Iterator[int]:
        marker: str | None = None
        while True:
            kwargs: dict[str, Any] = {"LoadBalancerArn": load_balancer_arn}
            if marker:
                kwargs["Marker"] = marker
            page = self._elbv2.describe_listeners(**kwargs)
            yield from (int(listener["Port"]) for listener in page.get("Listeners", []))
            marker = page.get("NextMarker")
            if not marker:
                return
