"""`gatekeeper services …`: the endpoint services the stack manages, and attaching one more.

Service configuration (acceptance, connection notifications) is an operator's job, never the
Lambda's — the functions have no permission to change it — so those EC2 calls live here, in the
operator package, not in the core's EndpointService adapter.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from gatekeeper_ops.cli.context import CliError, gatekeeper
from gatekeeper_ops.cli.help import CommandGroup, examples
from gatekeeper_ops.cli.output import (
    JsonOption,
    OutputOption,
    QueryOption,
    YesOption,
    rendering,
    say,
    table,
    warn,
)

app = typer.Typer(
    cls=CommandGroup,
    rich_markup_mode=None,
    help="Endpoint services: what the stack manages, and attaching one.",
    no_args_is_help=True,
)

# The events the stack's own ConnectionNotification resources send (template.yaml; a test keeps
# them equal): an Accept notification would only cost a Describe.
NOTIFICATION_EVENTS = ["Connect", "Reject", "Delete"]


@dataclass(frozen=True)
class ServiceConfiguration:
    """What EC2 says about one of this account's endpoint services."""

    service_id: str
    service_name: str
    state: str
    acceptance_required: bool
    supported_regions: tuple[str, ...]
    load_balancers: tuple[str, ...]

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> ServiceConfiguration:
        return cls(
            service_id=raw["ServiceId"],
            service_name=raw.get("ServiceName", ""),
            state=raw.get("ServiceState", ""),
            acceptance_required=bool(raw.get("AcceptanceRequired")),
            supported_regions=tuple(r.get("Region", "") for r in raw.get("SupportedRegions", [])),
            load_balancers=tuple(
                raw.get("NetworkLoadBalancerArns", []) + raw.get("GatewayLoadBalancerArns", [])
            ),
        )


class EndpointServiceAdmin:
    """Describe and configure this account's endpoint services (producer side)."""

    def __init__(self, ec2: Any) -> None:
        self._ec2 = ec2

    def configurations(self, service_ids: list[str] | None = None) -> list[ServiceConfiguration]:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"ServiceIds": service_ids} if service_ids else {}
        found: list[ServiceConfiguration] = []
        try:
            for page in self._ec2.get_paginator("describe_vpc_endpoint_service_configurations").paginate(
                **kwargs
            ):
                found += [ServiceConfiguration.from_api(raw) for raw in page.get("ServiceConfigurations", [])]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidVpcEndpointServiceId.NotFound":
                raise CliError(
                    f"no endpoint service {', '.join(service_ids or [])} owned by this account in this "
                    "region (check --region/--profile; `gatekeeper services list --all` lists yours)"
                ) from None
            raise
        return found

    def allowed_principals(self, service_id: str) -> list[str]:
        response = self._ec2.describe_vpc_endpoint_service_permissions(ServiceId=service_id)
        return [p.get("Principal", "") for p in response.get("AllowedPrincipals", [])]

    def notifications(self, service_id: str) -> list[dict[str, Any]]:
        return self.notifications_of([service_id]).get(service_id, [])

    def notifications_of(self, service_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """service id → its connection notifications: one call (and its pages) for all of them."""
        found: dict[str, list[dict[str, Any]]] = {}
        if not service_ids:
            return found
        pages = self._ec2.get_paginator("describe_vpc_endpoint_connection_notifications")
        for page in pages.paginate(Filters=[{"Name": "service-id", "Values": service_ids}]):
            for notification in page.get("ConnectionNotificationSet", []):
                found.setdefault(str(notification.get("ServiceId", "")), []).append(notification)
        return found

    def require_acceptance(self, service_id: str) -> None:
        self._ec2.modify_vpc_endpoint_service_configuration(ServiceId=service_id, AcceptanceRequired=True)

    def notify(self, service_id: str, topic_arn: str) -> str:
        response = self._ec2.create_vpc_endpoint_connection_notification(
            ServiceId=service_id, ConnectionNotificationArn=topic_arn, ConnectionEvents=NOTIFICATION_EVENTS
        )
        return str(response["ConnectionNotification"]["ConnectionNotificationId"])


@dataclass(frozen=True)
class SamconfigEdit:
    """Where the stack's EndpointServiceIds is set for `sam deploy`, and the line it should read."""

    file: str
    env: str
    parameter_overrides: str

    @property
    def section(self) -> str:
        return f"[{self.env}.deploy.parameters]"

    def document(self) -> dict[str, str]:
        return {
            "file": self.file,
            "env": self.env,
            "section": self.section,
            **{"parameter_overrides": self.parameter_overrides},
        }


_SERVICE_IDS = re.compile(r"""(?<![\w-])EndpointServiceIds=("[^"]*"|'[^']*'|\S*)""")


def samconfig_edit(path: Path, stack_name: str, env: str | None, services: list[str]) -> SamconfigEdit:
    """The samconfig environment that deploys this stack (its stack_name), else `default`, with its
    parameter_overrides rewritten to list `services`."""
    listed = ",".join(services)
    config: dict[str, Any] = {}
    if path.is_file():
        try:
            config = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            config = {}
    if env is None:
        env = next(
            (
                name
                for name, sections in config.items()
                if isinstance(sections, dict)
                and any(
                    isinstance(sections.get(command), dict)
                    and sections[command].get("parameters", {}).get("stack_name") == stack_name
                    for command in ("global", "deploy")
                )
            ),
            "default",
        )
    deploy = (
        config.get(env, {}).get("deploy", {}).get("parameters", {})
        if isinstance(config.get(env), dict)
        else {}
    )
    overrides = str(deploy.get("parameter_overrides", "") or "")
    if _SERVICE_IDS.search(overrides):
        overrides = _SERVICE_IDS.sub(lambda _: f"EndpointServiceIds={listed}", overrides, count=1)
    else:
        overrides = f"EndpointServiceIds={listed} {overrides}".strip()
    return SamconfigEdit(str(path), env, overrides)


def _notifies(notifications: list[dict[str, Any]], topic_arn: str) -> bool:
    return any(n.get("ConnectionNotificationArn") == topic_arn for n in notifications)


@app.command(
    name="list", epilog=examples("gatekeeper services list", "gatekeeper services list --all --output json")
)
def list_services(
    ctx: typer.Context,
    show_all: Annotated[
        bool, typer.Option("--all", help="Every endpoint service of this account, managed or not.")
    ] = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """The endpoint services the stack manages: acceptance, notification to the stack's topic,
    allowed principals and connections by state."""
    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    stack = gk.stack
    admin = EndpointServiceAdmin(gk.client("ec2"))
    configurations = admin.configurations(None if show_all else list(stack.managed_services))
    listed = [config.service_id for config in configurations]
    # One call each for every service's notifications and connections; permissions are per service.
    notifications = admin.notifications_of(listed)
    states: dict[str, Counter[str]] = {service_id: Counter() for service_id in listed}
    for connection in gk.connections(listed):
        states[connection.service_id][connection.vpc_endpoint_state] += 1
    rows: list[dict[str, Any]] = []
    for config in configurations:
        rows.append(
            {
                "service_id": config.service_id,
                "service_name": config.service_name,
                "state": config.state,
                "managed": config.service_id in stack.managed_services,
                "acceptance_required": config.acceptance_required,
                "notifies_stack": _notifies(
                    notifications.get(config.service_id, []), stack.connection_notification_topic_arn
                ),
                "allowed_principals": admin.allowed_principals(config.service_id),
                "supported_regions": list(config.supported_regions),
                "connections": dict(sorted(states[config.service_id].items())),
            }
        )
    if not render.human:
        render.emit(rows)
        return
    table(
        None,
        (
            "service",
            "managed",
            "acceptance",
            "notifies stack",
            "principals",
            "regions",
            "connections",
        ),
        [
            (
                r["service_id"],
                "yes" if r["managed"] else "no",
                "required" if r["acceptance_required"] else "NOT required",
                "yes" if r["notifies_stack"] else "NO",
                len(r["allowed_principals"]),
                r["supported_regions"],
                r["connections"],
            )
            for r in rows
        ],
    )
    for r in rows:
        if r["managed"] and not (r["acceptance_required"] and r["notifies_stack"]):
            warn(
                f"{r['service_id']} is not fully attached; run `gatekeeper services attach {r['service_id']}`"
            )


@app.command(
    epilog=examples(
        "gatekeeper services attach vpce-svc-0123456789abcdef0",
        "gatekeeper services attach vpce-svc-0123456789abcdef0 --yes --output json",
    )
)
def attach(
    ctx: typer.Context,
    service_id: Annotated[
        str, typer.Argument(help="Endpoint service id (vpce-svc-…) owned by this account.")
    ],
    *,
    samconfig: Annotated[
        Path,
        typer.Option("--samconfig", help="The samconfig.toml that deploys the stack (for the reminder)."),
    ] = Path("samconfig.toml"),
    config_env: Annotated[
        str | None,
        typer.Option(
            "--config-env",
            help="Its environment (default: the one whose stack_name is this stack's, else default).",
        ),
    ] = None,
    yes: YesOption = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Prepare an endpoint service for the gatekeeper: require acceptance (asks first) and send its
    connection notifications to the stack's topic. The stack parameter EndpointServiceIds must
    also list it for the functions to decide its connections: the reminder names the samconfig
    environment and the parameter_overrides line to put there."""
    from gatekeeper.models.identifiers import SERVICE_ID

    if not SERVICE_ID.match(service_id):
        raise CliError(f"{service_id!r} is not an endpoint service id (vpce-svc-…)")
    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    stack = gk.stack
    admin = EndpointServiceAdmin(gk.client("ec2"))
    [config] = admin.configurations([service_id])
    steps: list[str] = []
    if not config.acceptance_required:
        if not yes:
            typer.confirm(
                f"{service_id} accepts every connection without review. Set AcceptanceRequired=true?",
                abort=True,
                err=True,
            )
        admin.require_acceptance(service_id)
        steps.append("acceptance required set")
    topic = stack.connection_notification_topic_arn
    if _notifies(admin.notifications(service_id), topic):
        steps.append("notifications already go to the stack's topic")
    else:
        notification_id = admin.notify(service_id, topic)
        steps.append(
            f"connection notification {notification_id} created ({', '.join(NOTIFICATION_EVENTS)} → {topic})"
        )
    managed = service_id in stack.managed_services
    reminder = None
    edit = None
    if not managed:
        edit = samconfig_edit(samconfig, stack.name, config_env, [*stack.managed_services, service_id])
        reminder = (
            f"add {service_id} to the stack parameter EndpointServiceIds — until then the functions ignore "
            f"its connections: in {edit.file} {edit.section} set "
            f'parameter_overrides = "{edit.parameter_overrides}", then `sam build && sam deploy '
            f"--config-env {edit.env}` (samconfig keeps it for the next deploy; a bare "
            "--parameter-overrides would be lost)"
        )
    if not render.human:
        render.emit(
            {
                "service_id": service_id,
                "steps": steps,
                "managed": managed,
                "reminder": reminder,
                "samconfig": edit.document() if edit else None,
            }
        )
        return
    for step in steps:
        say(f"{service_id}: {step}")
    if reminder:
        warn(reminder)
