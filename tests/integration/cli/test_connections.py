"""`gatekeeper simulate|pending|approve|reject`: what policy would do (read only), and operator
decisions carried out by the real decision path after `settle()` — recorded, counted, notified."""

from __future__ import annotations

import contextlib
import io

import pytest

from gatekeeper_ops.sandbox.account import ProducerAccount

from .conftest import ACME, GLOBEX, REQUESTER, STRANGER, decider_actor, table_snapshot

TABLES = ("TenantsTableName", "TemplatesTableName", "DecisionsTableName")


def snapshot(producer: ProducerAccount) -> list[str]:
    return [table_snapshot(producer, table) for table in TABLES]


def held_request(producer: ProducerAccount) -> str:
    """acme asks from us-west-2: the standard template holds other regions for review."""
    endpoint = producer.consumer(ACME, "us-west-2").request_endpoint(
        producer.service, service_region="us-east-1"
    )
    producer.settle()
    assert producer.decisions.state(endpoint).status == "held"
    return endpoint


def accepted_request(producer: ProducerAccount) -> str:
    endpoint = producer.consumer(ACME).request_endpoint(producer.service)
    producer.settle()
    assert producer.decisions.state(endpoint).status == "accepted"
    return endpoint


# -- simulate -----------------------------------------------------------------------------------
def test_simulate_explains_an_accept_and_has_no_side_effects(seeded, cli):
    service = seeded.service.service_id
    seeded.settle()  # whatever seeding the tenants set moving (tenant sync) is done first
    invocations = len(seeded.lambdas.invocations)
    before = snapshot(seeded)
    result = cli.json("simulate", "--principal", ACME, "--service", service)
    assert result["simulated"] is True
    assert (result["decision"], result["reasons"], result["tenant_id"]) == ("accepted", ["Accept"], "acme")
    assert (result["template"], result["template_version"], result["quota_limit"]) == ("standard", 1, 3)
    statements = {s["sid"]: s for s in result["evaluation"]["statements"]}
    assert statements["Accept"]["matched"] is True
    assert statements["OtherRegion"]["matched"] is False
    [condition] = statements["OtherRegion"]["conditions"]
    assert (condition["key"], condition["context_values"], condition["condition_values"]) == (
        "endpoint:Region", ["us-east-1"], ["us-east-1"]
    )  # fmt: skip
    human = cli.ok("simulate", "--principal", ACME, "--service", service).stdout
    assert "decision  accepted  (Accept)" in human
    assert "Review OtherRegion did not match: StringNotEquals endpoint:Region" in human
    assert "quota     0 of 3 endpoints in use" in human
    # Read only: no table changed, nothing was put on the bus or published, no connection exists.
    assert snapshot(seeded) == before
    assert seeded.settle() == 0
    assert len(seeded.lambdas.invocations) == invocations


def test_simulate_outcomes(seeded, cli):
    cases = [
        (ACME, "us-west-2", "held", ["OtherRegion"]),
        (GLOBEX, None, "rejected", ["TenantSuspended"]),
        (STRANGER, None, "rejected", ["UnknownPrincipal"]),
        (f"arn:aws:iam::{ACME}:role/app", None, "accepted", ["Accept"]),
    ]
    for principal, region, decision, reasons in cases:
        args = ["--principal", principal, "--service", seeded.service.service_id]
        result = cli.json("simulate", *args, *(["--region", region] if region else []))
        assert (result["decision"], result["reasons"]) == (decision, reasons), principal
        assert result["explanation"]
    assert "simulating account 111122223333" in cli.ok("simulate", *args).stdout


def test_simulate_refuses_a_path_arn_and_warns_on_an_unmanaged_service(seeded, cli):
    error = cli.fails(
        "simulate", "--principal", f"arn:aws:iam::{ACME}:role/team/app", "--service", "vpce-svc-0a"
    )
    assert "has a path; PrivateLink does not accept principal ARNs with paths" in error
    result = cli.run("simulate", "--principal", ACME, "--service", "vpce-svc-0fffffffffffffff0")
    assert result.exit_code == 0
    assert "does not manage vpce-svc-0fffffffffffffff0" in result.stderr
    assert "ServiceNotEntitled" in result.stdout


# -- pending ------------------------------------------------------------------------------------
@pytest.mark.consistent_reads
def test_pending_lists_held_and_undecided_connections_with_what_policy_says_now(seeded, cli):
    held = held_request(seeded)
    accepted_request(seeded)
    undecided = seeded.consumer(GLOBEX).request_endpoint(seeded.service)  # not settled yet
    rows = {row["vpc_endpoint_id"]: row for row in cli.json("pending")}
    assert set(rows) == {held, undecided}
    assert (rows[held]["status"], rows[held]["recorded"]["reasons"]) == ("held", ["OtherRegion"])
    assert (rows[held]["now"]["decision"], rows[held]["region"]) == ("held", "us-west-2")
    assert (rows[undecided]["status"], rows[undecided]["now"]["decision"]) == ("undecided", "rejected")
    assert rows[undecided]["now"]["reasons"] == ["TenantSuspended"]
    human = cli.ok("pending").stdout
    assert held in human
    assert "held (OtherRegion)" in human


def test_pending_with_nothing_waiting(seeded, cli):
    assert cli.json("pending") == []
    assert "no pending connections" in cli.ok("pending").stdout
    assert "does not manage vpce-svc-0fffffffffffffff0" in cli.fails(
        "pending", "--service", "vpce-svc-0fffffffffffffff0"
    )


# -- approve ------------------------------------------------------------------------------------
def test_approve_of_a_held_request_is_accepted_and_notified_after_settle(seeded, cli):
    endpoint = held_request(seeded)
    notices = seeded.subscribe_decisions("acme", {"tenant_id": ["acme"]})
    result = cli.json("approve", endpoint, "--reason", "eu expansion, OPS-42")
    assert (result["published"], result["requested_by"], result["requested_decision"]) == (
        True,
        REQUESTER,
        "accepted",
    )
    assert result["policy_now"] == {"decision": "held", "reasons": ["OtherRegion"]}
    assert seeded.decisions.state(endpoint).status == "held"  # the CLI only asked
    seeded.settle()
    assert seeded.decisions.state(endpoint).status == "accepted"
    assert seeded.connection_state(endpoint) in ("pending", "available")
    assert seeded.decisions.active_endpoints("acme") == 1
    [notice] = seeded.received(notices)
    assert (notice["decision"], notice["actor"], notice["trigger"]) == (
        "accepted",
        decider_actor(),
        "operator",
    )
    assert notice["reasons"] == ["OperatorDecision"]
    assert (
        notice["explanation"][0]
        == f"eu expansion, OPS-42 (requested by {REQUESTER}, as stated by the caller)"
    )
    trail = cli.json("decisions", "--endpoint", endpoint)
    assert [(d["decision"], d["actor"]) for d in trail] == [("accepted", decider_actor()), ("held", "auto")]


def test_approve_asks_when_policy_disagrees_and_a_no_publishes_nothing(seeded, cli):
    endpoint = seeded.consumer(GLOBEX).request_endpoint(seeded.service)  # suspended tenant, undecided
    result = cli.run("approve", endpoint, input="n\n")
    assert result.exit_code == 1
    assert "Policy would reject" in result.output
    assert "(TenantSuspended)" in result.output
    seeded.settle()  # only the notification's own request is decided: by policy, not by an operator
    [decision] = seeded.decisions.decisions_for_endpoint(endpoint)
    assert (decision.outcome, decision.actor) == ("rejected", "auto")


def test_approve_with_yes_overrides_policy(seeded, cli):
    endpoint = held_request(seeded)
    cli.ok("approve", endpoint, "--yes")
    seeded.settle()
    assert seeded.decisions.state(endpoint).decision.actor == decider_actor()


def test_approve_wait_returns_the_recorded_decision(seeded, cli, monkeypatch):
    endpoint = held_request(seeded)

    # Waiting polls the decisions table; here the "Lambda service" runs while the CLI sleeps (its
    # logs kept out of the CLI's stdout, as they would be in AWS).
    def lambda_runs_meanwhile(seconds: float) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            seeded.settle()

    monkeypatch.setattr("gatekeeper_ops.cli.connections.sleep", lambda_runs_meanwhile)
    result = cli.json("approve", endpoint, "--wait", "30")
    assert result["decision"]["decision"] == "accepted"
    assert result["decision"]["actor"] == decider_actor()


def test_approve_wait_times_out_in_one_line(seeded, cli, monkeypatch):
    endpoint = held_request(seeded)
    monkeypatch.setattr("gatekeeper_ops.cli.connections.sleep", lambda seconds: None)
    monkeypatch.setattr("gatekeeper_ops.cli.connections.time.monotonic", iter(range(0, 1000, 10)).__next__)
    error = cli.fails("approve", endpoint, "--wait", "15")
    assert "no decision was recorded within 15s" in error


def test_approve_refusals(seeded, cli):
    assert "no connection vpce-0123456789abcdef0" in cli.fails("approve", "vpce-0123456789abcdef0")
    accepted = accepted_request(seeded)
    assert "is already accepted (" in cli.ok("approve", accepted).stdout  # pending or available
    stranger = seeded.consumer(STRANGER).request_endpoint(seeded.service)
    seeded.settle()  # rejected: unknown principal
    assert f"{stranger} is rejected; only a pendingAcceptance connection can be approved" in cli.fails(
        "approve", stranger
    )


# -- reject -------------------------------------------------------------------------------------
def test_reject_of_an_accepted_connection_revokes_it(seeded, cli):
    endpoint = accepted_request(seeded)
    notices = seeded.subscribe_decisions("revoked", {"decision": ["revoked"]})
    result = cli.run("reject", endpoint, "--reason", "contract ended", input="n\n")
    assert result.exit_code == 1
    assert "rejecting it revokes the tenant's access" in result.output
    seeded.settle()
    assert seeded.decisions.state(endpoint).status == "accepted"  # declined: nothing happened

    cli.ok("reject", endpoint, "--reason", "contract ended", "--yes")
    seeded.settle()
    state = seeded.decisions.state(endpoint)
    assert (state.status, state.decision.actor) == ("revoked", decider_actor())
    assert seeded.connection_state(endpoint) == "rejected"
    assert seeded.decisions.active_endpoints("acme") == 0
    [notice] = seeded.received(notices)
    assert notice["explanation"] == [f"contract ended (requested by {REQUESTER}, as stated by the caller)"]
    # Asking again is not an error: it is already what was asked, and nothing is published.
    again = cli.json("reject", endpoint, "--reason", "contract ended")
    assert (again["published"], again["state"]) == (False, "rejected")
    assert seeded.settle() == 0


def test_reject_of_a_held_request(seeded, cli):
    endpoint = held_request(seeded)
    cli.ok("reject", endpoint, "--reason", "not approved for eu")
    seeded.settle()
    state = seeded.decisions.state(endpoint)
    assert (state.status, state.decision.actor, state.decision.reasons) == (
        "rejected",
        decider_actor(),
        ("OperatorDecision",),
    )
    assert seeded.connection_state(endpoint) == "rejected"


def test_reject_needs_a_reason(seeded, cli):
    result = cli.run("reject", "vpce-0123456789abcdef0")
    assert result.exit_code == 2
    assert "--reason" in result.output


def test_reject_refuses_what_the_gatekeeper_never_accepted(seeded, cli):
    endpoint = seeded.consumer(STRANGER).request_endpoint(seeded.service)
    # Accepted by hand, outside the decision path.
    seeded.client("ec2").accept_vpc_endpoint_connections(
        ServiceId=seeded.service.service_id, VpcEndpointIds=[endpoint]
    )
    seeded.settle()
    error = cli.fails("reject", endpoint, "--reason", "who let you in", "--yes")
    assert "the gatekeeper never accepted it (recorded: nothing)" in error
    assert "aws ec2 reject-vpc-endpoint-connections" in error
    assert cli.fails("reject", endpoint.replace("vpce-", "vpce-f"), "--reason", "x").startswith(
        "error: no connection"
    )
