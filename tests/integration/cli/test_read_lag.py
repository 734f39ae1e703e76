"""What an operator reads from EC2 is at most EC2's read lag behind (docs/emulator.md, eventual
consistency): a few seconds after an accept, the CLI and the AWS CLI show the accepted state."""

from __future__ import annotations

import pytest

from gatekeeper_ops.emulator import EventualConsistency
from gatekeeper_ops.emulator import clock as emulator_clock
from gatekeeper_ops.sandbox.account import ProducerAccount

from .conftest import ACME, Cli


def test_an_accept_older_than_the_read_lag_is_what_every_reader_sees(
    seeded: ProducerAccount, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = seeded.consumer(ACME).request_endpoint(seeded.service)
    seeded.settle()
    assert seeded.decisions.state(endpoint).status == "accepted"

    later = emulator_clock.now() + EventualConsistency().stale_seconds
    monkeypatch.setattr(emulator_clock, "now", lambda: later)

    assert cli.json("pending") == []  # not listed as waiting for a decision
    [connection] = seeded.client("ec2").describe_vpc_endpoint_connections()["VpcEndpointConnections"]
    assert connection["VpcEndpointState"] in ("pending", "available")
