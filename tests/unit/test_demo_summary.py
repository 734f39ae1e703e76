"""The demo's summary tells retries Lambda makes by design from failures, and counts the decider's
re-reads apart."""

from gatekeeper_ops.sandbox.embedded import DeciderPauses
from gatekeeper_ops.sandbox.render import _failures, _rereads


def test_retries_by_design_are_not_failures():
    errors = [
        "ConnectionNotVisible: EC2 does not list vpce-0123456789abcdef0 yet",
        "DecisionInProgress: vpce-0123456789abcdef0 is being decided",
    ]
    said = _failures(errors)
    assert "none failed" in said
    assert "2 retried" in said


def test_any_other_error_is_a_failure():
    said = _failures(["ConnectionNotVisible: later", "ClientError: AccessDenied"])
    assert "1 failed" in said
    assert "1 retried" in said
    assert _failures([]) == " · none failed"


def test_re_reads_are_counted_apart_and_the_load_run_says_their_pauses_were_not_slept():
    assert _rereads(0) == ""
    assert "7 re-read" in _rereads(7)
    assert "not slept" not in _rereads(7)
    assert "not slept" in _rereads(270, slept=False)


def test_the_deciders_pauses_are_counted_and_slept_only_when_asked():
    slept: list[float] = []
    pauses = DeciderPauses(slept.append)
    pauses(0.2)
    pauses.slept = False
    pauses(0.5)
    assert (pauses.seconds, slept) == ([0.2, 0.5], [0.2])
