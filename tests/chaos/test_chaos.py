"""Issue 9's fault-injection run, at a size that fits the suite (`make chaos` runs 300 requests at
20 % and 35 %): transient faults on every AWS call the handlers make, Unsuccessful answers, killed
invocations, consumers deleting endpoints, duplicate notifications and a tenant suspended mid-run,
on a virtual clock; then faults stop and retries and sweeps settle. Deterministic by seed."""

from __future__ import annotations

import pytest

from gatekeeper_ops.chaos.invariants import KEYS
from gatekeeper_ops.chaos.run import ChaosSettings, run
from gatekeeper_ops.chaos.summary import table

REQUESTS = 60


@pytest.fixture(scope="module")
def report():
    return run(ChaosSettings(requests=REQUESTS, rate=0.20, seed=9))


def test_the_run_met_the_workload_and_injected_faults(report):
    assert len([r for r in report.workload.requests if r.endpoint]) == REQUESTS
    injector = report.injector
    assert injector.attempts_under_faults > 0
    transient = sum(injector.count(k) for k in ("throttle", "server_error", "connection", "lost"))
    assert transient / injector.attempts_under_faults >= 0.15
    assert all(
        injector.count(kind) > 0 for kind in ("throttle", "server_error", "connection", "lost", "crash")
    )
    assert report.sweeps >= report.settings.settle_sweeps


@pytest.mark.parametrize("key", KEYS)
def test_invariant_holds_after_settling(report, key):
    [invariant] = [i for i in report.invariants if i.key == key]
    if not invariant.ok:
        offender = invariant.offenders[0].split(" ")[0]
        timeline = "\n".join(report.timeline(offender)[-30:])
        pytest.fail(f"{invariant.message()}\n\n{table(report)}\n\ntimeline of {offender}:\n{timeline}")
