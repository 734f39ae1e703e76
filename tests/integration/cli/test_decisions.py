"""`gatekeeper decisions`: the audit trail by tenant, endpoint, time and outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gatekeeper_ops.cli.context import CliError
from gatekeeper_ops.cli.decisions import parse_since

from .conftest import ACME, STRANGER


@pytest.fixture
def decided(seeded):
    """Three decisions: acme accepted, acme held (us-west-2), a stranger rejected (no tenant)."""
    endpoints = {
        "accepted": seeded.consumer(ACME).request_endpoint(seeded.service),
        "held": seeded.consumer(ACME, "us-west-2").request_endpoint(
            seeded.service, service_region="us-east-1"
        ),
        "rejected": seeded.consumer(STRANGER).request_endpoint(seeded.service),
    }
    seeded.settle()
    return endpoints


def test_all_decisions_newest_first_including_unknown_principals(decided, cli):
    trail = cli.json("decisions")
    assert sorted(d["decision"] for d in trail) == ["accepted", "held", "rejected"]
    times = [d["decided_at"] for d in trail]
    assert times == sorted(times, reverse=True)
    stranger = next(d for d in trail if d["decision"] == "rejected")
    assert (stranger["tenant_id"], stranger["reasons"], stranger["actor"]) == (
        None,
        ["UnknownPrincipal"],
        "auto",
    )


def test_filters(decided, cli):
    assert sorted(d["decision"] for d in cli.json("decisions", "--tenant", "acme")) == ["accepted", "held"]
    [one] = cli.json("decisions", "--endpoint", decided["held"])
    assert (one["decision"], one["vpc_endpoint_region"]) == ("held", "us-west-2")
    assert [d["vpc_endpoint_id"] for d in cli.json("decisions", "--decision", "rejected")] == [
        decided["rejected"]
    ]
    assert len(cli.json("decisions", "--since", "1h")) == 3
    assert len(cli.json("decisions", "--tenant", "acme", "--since", "1h")) == 2
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert cli.json("decisions", "--since", tomorrow) == []
    assert cli.json("decisions", "--tenant", "acme", "--since", tomorrow) == []
    assert len(cli.json("decisions", "--limit", "1")) == 1


def test_human_table_and_explanations(decided, cli):
    out = cli.ok("decisions", "--explain").stdout
    assert decided["accepted"] in out
    assert "UnknownPrincipal" in out
    assert "standard v1" in out
    assert "account 999988887777 is not a principal of any tenant" in out
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert "no decisions match" in cli.ok("decisions", "--tenant", "acme", "--since", tomorrow).stdout


def test_an_unknown_tenant_filter_is_refused_not_an_empty_answer(decided, cli):
    expected = (
        "error: no tenant 'nosuch': no record and no decision recorded for it; see `gatekeeper tenants list`"
    )
    assert cli.fails("decisions", "--tenant", "nosuch") == expected
    assert cli.fails("decisions", "--tenant", "nosuch", "--output", "json") == expected
    assert cli.fails("report", "usage", "--tenant", "nosuch") == expected
    assert "--status 'gone' is not one of active, suspended" in cli.fails(
        "tenants", "list", "--status", "gone"
    )


def test_a_removed_tenants_history_stays_listable(decided, seeded, cli):
    cli.ok("tenants", "remove", "globex", "--yes")  # no decisions: nothing of it is left
    assert "no tenant 'globex'" in cli.fails("decisions", "--tenant", "globex")
    seeded.tenants.remove("acme", seeded.tenants.get("acme").version)
    assert sorted(d["decision"] for d in cli.json("decisions", "--tenant", "acme")) == ["accepted", "held"]


def test_bad_filters_are_one_line(seeded, cli):
    assert "--since 'yesterday' is neither a duration" in cli.fails("decisions", "--since", "yesterday")
    assert "--decision 'maybe' is not one of accepted" in cli.fails("decisions", "--decision", "maybe")


def test_parse_since():
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2026-04-01") == datetime(2026, 4, 1, tzinfo=UTC)
    assert parse_since("2026-04-01T10:00:00+02:00") == datetime(2026, 4, 1, 8, tzinfo=UTC)
    with pytest.raises(CliError):
        parse_since("soon")


def test_human_time_formats():
    from gatekeeper_ops.cli.output import age, cell, timestamp

    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert [age(now - timedelta(seconds=s), now) for s in (5, 125, 7300, 200000)] == ["5s", "2m", "2h", "2d"]
    assert age(None) == "-"
    assert timestamp("2026-05-01T14:00:00+02:00") == "2026-05-01 12:00:00Z"
    assert timestamp("not a time") == "not a time"
    assert (cell(None), cell({}), cell(["a", "b"]), cell({"k": "v"})) == ("-", "-", "a\nb", "k=v")
