"""The chaos suite shares the integration suites' emulated producer account."""

from tests.integration.conftest import producer_factory

__all__ = ["producer_factory"]
