"""`make burst` / `python -m gatekeeper_ops.burst`: a burst of endpoint requests under EC2's token
buckets and Lambda's concurrency, in virtual time. Prints its figures; exits 1 when an invariant
fails or a request was never decided. The handlers' logs go to a file."""

from __future__ import annotations

import os

# Powertools reads these when the handlers' modules are first imported, before any stack exists.
for _name, _value in (
    ("POWERTOOLS_SERVICE_NAME", "vpce-gatekeeper"),
    ("POWERTOOLS_METRICS_NAMESPACE", "VpceGatekeeper"),
    ("POWERTOOLS_LOG_LEVEL", "INFO"),
):
    os.environ.setdefault(_name, _value)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from gatekeeper_ops.burst.run import BurstSettings, run  # noqa: E402
from gatekeeper_ops.burst.summary import table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make burst ARGS=…", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="endpoint requests (default 1000)")
    parser.add_argument("--services", type=int, default=1, help="managed endpoint services (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drained", action="store_true", help="EC2's token buckets start empty")
    parser.add_argument("--window", type=float, default=1.0, help="seconds the requests are created in")
    parser.add_argument("--log-dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    settings = BurstSettings(
        requests=args.requests,
        services=args.services,
        seed=args.seed,
        drained=args.drained,
        window=args.window,
    )
    log = args.log_dir / f"gatekeeper-burst-{args.requests}{'-drained' if args.drained else ''}.log"
    handlers = [
        h
        for h in logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"]).handlers
        if isinstance(h, logging.StreamHandler)
    ]
    streams = [h.stream for h in handlers]
    with log.open("w") as stream, contextlib.redirect_stdout(stream):
        for handler in handlers:
            handler.setStream(stream)
        try:
            report = run(settings)
        finally:
            for handler, original in zip(handlers, streams, strict=True):
                handler.setStream(original)
    print(table(report))
    print(f"Handler logs      {log}\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
