import pytest
from pydantic import ValidationError

from gatekeeper.wiring.settings import load_settings

ENVIRONMENT = {
    "TENANTS_TABLE": "tenants",
    "TEMPLATES_TABLE": "templates",
    "DECISIONS_TABLE": "decisions",
    "EVENT_BUS_NAME": "bus",
    "DECISION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:decisions",
    "ENDPOINT_SERVICE_IDS": "vpce-svc-0123456789abcdef0, vpce-svc-0fedcba9876543210",
    "AWS_REGION": "us-east-1",
}


def test_settings_from_environment():
    settings = load_settings(ENVIRONMENT)
    assert settings.endpoint_service_ids == ("vpce-svc-0123456789abcdef0", "vpce-svc-0fedcba9876543210")
    assert settings.default_action == "reject"
    assert settings.manages("vpce-svc-0fedcba9876543210")
    assert not settings.manages("vpce-svc-0000000000000000f")


def test_any_number_of_managed_services():
    ids = [f"vpce-svc-{n:017x}" for n in range(40)]
    settings = load_settings({**ENVIRONMENT, "ENDPOINT_SERVICE_IDS": ",".join(ids)})
    assert settings.endpoint_service_ids == tuple(ids)
    assert all(settings.manages(i) for i in ids)


def test_missing_variable_is_named():
    environment = {k: v for k, v in ENVIRONMENT.items() if k != "DECISIONS_TABLE"}
    with pytest.raises(ValidationError, match="DECISIONS_TABLE"):
        load_settings(environment)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ENDPOINT_SERVICE_IDS", "svc-1"),
        ("DEFAULT_ACTION", "accept"),
        ("UNKNOWN_PRINCIPAL_ACTION", "allow"),
        ("DECISION_QUEUE_URL", "decisions"),
        ("DECISION_BATCH_SIZE", "0"),
        ("DECISION_BATCH_SIZE", "1001"),
    ],
)
def test_invalid_values_fail_at_cold_start(name, value):
    with pytest.raises(ValidationError):
        load_settings({**ENVIRONMENT, name: value})


def test_the_decider_reads_its_queue_only_when_given_one():
    assert load_settings(ENVIRONMENT).decision_queue_url is None
    assert load_settings({**ENVIRONMENT, "DECISION_QUEUE_URL": ""}).decision_queue_url is None
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/decisions"
    settings = load_settings({**ENVIRONMENT, "DECISION_QUEUE_URL": url, "DECISION_BATCH_SIZE": "100"})
    assert (settings.decision_queue_url, settings.decision_batch_size) == (url, 100)
