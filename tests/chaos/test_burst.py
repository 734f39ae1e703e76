"""Issue 18's burst harness at a size that fits the suite (`make burst` runs 1,000): requests created
within one second under EC2's token buckets, Lambda's concurrency modelled in virtual time. What is
asserted is what must hold (every request decided, the invariants), never how fast.

Each scenario runs in one test, so that pytest-xdist never runs it twice."""

from __future__ import annotations

from gatekeeper_ops.burst.__main__ import main
from gatekeeper_ops.burst.run import BurstSettings, run
from gatekeeper_ops.burst.summary import table
from gatekeeper_ops.chaos.invariants import KEYS

REQUESTS = 30


def test_a_burst_under_drained_buckets_is_decided_in_full_and_the_invariants_hold():
    report = run(BurstSettings(requests=REQUESTS, services=2, seed=3, drained=True))
    figures = table(report)

    assert len(report.created) == REQUESTS, figures
    assert set(report.announced) == set(report.created), figures
    assert [i.key for i in report.invariants] == list(KEYS)
    assert report.ok, "\n".join(i.message() for i in report.invariants if not i.ok) + "\n\n" + figures
    # The buckets were on and met: drained, the first calls of each action were refused.
    calls = report.ec2_calls()
    assert calls["DescribeVpcEndpointConnections"][1] > 0, figures
    # Both services got requests, and the calls naming each were counted against it.
    assert set(report.calls_per_decision()) >= set(report.services), figures
    # Every decision is put down to the invocation that announced it.
    assert "unknown" not in report.how.values(), figures


def test_concurrent_invocations_reach_ec2_at_the_same_virtual_instant():
    """With full buckets nothing waits on EC2: the requests, created within one second, are all
    decided within a few (virtual) seconds, each by its first invocation."""
    report = run(BurstSettings(requests=10, seed=5))
    figures = table(report)

    assert report.ok, figures
    assert set(report.how.values()) == {"first invocation"}, figures
    assert report.ec2_calls()["DescribeVpcEndpointConnections"][1] == 0, figures
    assert report.last_decision < 5, figures  # virtual seconds: a model property, not a wall clock


def test_a_burst_behind_full_deliveries_is_decided_in_batches_the_decider_tops_up_itself():
    """The decider takes more of its queue into a full delivery's batch: fewer invocations and
    Describes than deliveries of ten would make, each decision still put down to its invocation."""
    report = run(BurstSettings(requests=100, seed=4))
    figures = table(report)

    assert report.ok, figures
    deciders = [i for i in report.invocations if i.function == "EvaluateConnectionFunction"]
    assert any(i.received for i in deciders), figures
    assert len(deciders) < 10, figures
    assert report.ec2_calls()["DescribeVpcEndpointConnections"][0] < 10, figures  # one a batch
    assert "unknown" not in report.how.values(), figures


def test_make_burst_prints_the_figures_and_exits_0(tmp_path, capsys):
    code = main(["--requests", "5", "--seed", "2", "--log-dir", str(tmp_path)])
    printed = capsys.readouterr().out

    assert code == 0, printed
    assert "First → last" in printed
    assert "Invariants" in printed
    assert (tmp_path / "gatekeeper-burst-5.log").exists()
