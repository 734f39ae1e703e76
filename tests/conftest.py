"""Shared fixtures: fake credentials (nothing may reach real AWS) and the Lambda environment."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.xdist_groups import pytest_collection_modifyitems  # noqa: F401 - a hook: registered by name

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


@pytest.fixture(scope="module", autouse=True)
def _shared_botocore_loader() -> Iterator[None]:
    """Speed only: every boto3 Session re-reads the service models from disk (EC2's is megabytes of
    JSON); a test module shares one loader. The data is static."""
    import botocore.loaders
    import botocore.session

    shared = functools.cache(botocore.loaders.create_loader)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", shared)
        yield


@pytest.fixture(scope="session", autouse=True)
def _cli_command_built_once() -> Iterator[None]:
    """Speed only: typer's CliRunner builds the click command tree from the app on every invoke,
    evaluating every command's annotations (~0.1 s a run of `gatekeeper …`); the app is the same
    object all session, and click makes a new context for each invocation."""
    import typer.testing

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", functools.cache(typer.testing._get_command))
        yield


@pytest.fixture(scope="session", autouse=True)
def _symmetric_kms_keys_share_one_rsa_pair() -> Iterator[None]:
    """moto gives every KMS key an RSA-2048 pair for Sign/Verify, a symmetric key too (which KMS never
    lets sign): 0.1-1 s of key generation for each provisioned stack's key. Symmetric keys share one
    pair; every other key spec gets its own. No answer to a call the project makes changes."""
    from moto.kms import models

    original = models.generate_private_key
    shared = functools.cache(original)

    def generate(key_spec: str) -> Any:
        return shared(key_spec) if key_spec == "SYMMETRIC_DEFAULT" else original(key_spec)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "generate_private_key", generate)
        yield
