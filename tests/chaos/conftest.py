"""The chaos suite shares the integration suites' emulated producer account."""

from tests.integration.conftest import _shared_botocore_loader, producer_factory

__all__ = ["_shared_botocore_loader", "producer_factory"]
