"""Shared fixtures: fake credentials (nothing may reach real AWS) and the Lambda environment."""

from __future__ import annotations

import os

import pytest

# Set before any boto3 client exists; tests never see real credentials or endpoints.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SECURITY_TOKEN="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_SERVICE_NAME="vpce-gatekeeper",
    POWERTOOLS_METRICS_NAMESPACE="VpceGatekeeper",
    POWERTOOLS_LOG_LEVEL="WARNING",
)
for _variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_variable, None)


@pytest.fixture(autouse=True)
def _reset_metrics():
    """Powertools metrics are module state: never let one test's metrics leak into the next."""
    yield
    from gatekeeper.observability import metrics

    metrics.clear_metrics()
