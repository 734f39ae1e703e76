"""The Logger and Metrics every handler imports, configured by POWERTOOLS_* variables.

The X-Ray SDK is not imported: constructing Powertools' Tracer imports `aws_xray_sdk.core`,
~0.3 s of cold start measured here. Functions run with Lambda active tracing instead.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
