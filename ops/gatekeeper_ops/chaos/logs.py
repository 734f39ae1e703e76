"""What the virtual-clock harnesses' entry points (`make chaos`, `make burst`) share: the
Powertools settings the handlers' modules read at import, and the handlers' logs sent to a file.

Import this module, and call `powertools_environment()`, before anything that imports a handler
or `gatekeeper.observability`."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def powertools_environment() -> None:
    for name, value in (
        ("POWERTOOLS_SERVICE_NAME", "vpce-gatekeeper"),
        ("POWERTOOLS_METRICS_NAMESPACE", "VpceGatekeeper"),
        ("POWERTOOLS_LOG_LEVEL", "INFO"),
    ):
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def handler_logs(path: Path) -> Iterator[IO[str]]:
    """The handlers' log lines and printed metrics go to `path` for the block; yields the file."""
    handlers = [
        h
        for h in logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"]).handlers
        if isinstance(h, logging.StreamHandler)
    ]
    streams = [h.stream for h in handlers]
    with path.open("w") as stream, contextlib.redirect_stdout(stream):
        for handler in handlers:
            handler.setStream(stream)
        try:
            yield stream
        finally:
            for handler, original in zip(handlers, streams, strict=True):
                handler.setStream(original)
