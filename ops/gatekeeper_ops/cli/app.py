"""The `gatekeeper` operator CLI: the root command, its global options, and the one place where a
failure becomes a single line on stderr and a non-zero exit status.

    gatekeeper [--stack-name NAME] [--profile P] [--region R] COMMAND …
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from gatekeeper_ops.cli import connections, decisions, reconcile, report, services, templates, tenants, verify
from gatekeeper_ops.cli.context import DEFAULT_STACK, STACK_ENV, Gatekeeper, describe_error
from gatekeeper_ops.cli.help import CommandGroup, examples

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class GatekeeperGroup(CommandGroup):
    """Turns every failure into one actionable line: no traceback reaches an operator."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click Context
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # exit codes, usage errors, declined prompts
            raise
        except KeyboardInterrupt:
            typer.echo("error: interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if isinstance(ctx.obj, Gatekeeper) and ctx.obj.debug:
                raise
            message = describe_error(exc)
            if message is None:
                detail = " ".join(str(exc).split())
                message = f"unexpected {type(exc).__name__}: {detail} (run with --debug for the traceback)"
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(EXIT_FAILURE) from None


app = typer.Typer(
    cls=GatekeeperGroup,
    name="gatekeeper",
    help=(
        "Operate vpce-gatekeeper: tenants, policy templates, pending connections, decisions and "
        "endpoint services. Finds the stack's resources from its CloudFormation outputs, with the "
        "usual AWS profile/region settings (AWS_ENDPOINT_URL for the sandbox)."
    ),
    epilog=examples(
        "gatekeeper tenants list",
        "gatekeeper --profile prod --region eu-west-1 pending",
        "GATEKEEPER_STACK=gatekeeper-dev gatekeeper decisions --since 24h",
        "gatekeeper report usage --since 7d --output csv > usage.csv",
        "gatekeeper --install-completion   # tab completion for your shell",
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"gatekeeper {version('vpce-gatekeeper')}")
        except PackageNotFoundError:  # pragma: no cover - always installed with the project
            typer.echo("gatekeeper (version unknown)")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    stack_name: Annotated[
        str, typer.Option("--stack-name", envvar=STACK_ENV, help="The deployed stack (CloudFormation name).")
    ] = DEFAULT_STACK,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="AWS named profile (default: AWS_PROFILE, as for the AWS CLI)."),
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region (default: the profile's).")
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", envvar="GATEKEEPER_DEBUG", help="Show tracebacks of unexpected errors.")
    ] = False,
    _show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    ctx.obj = Gatekeeper(stack_name=stack_name, profile=profile, region=region, debug=debug)


app.add_typer(tenants.app, name="tenants")
app.add_typer(templates.app, name="templates")
app.add_typer(services.app, name="services")
app.add_typer(report.app, name="report")
connections.register(app)
decisions.register(app)
reconcile.register(app)
verify.register(app)


def main() -> None:
    app()
