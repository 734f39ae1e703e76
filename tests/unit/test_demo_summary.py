"""The demo's summary tells retries Lambda makes by design from failures."""

from gatekeeper_ops.sandbox.render import _failures


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
