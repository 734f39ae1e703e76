"""`make burst` / `python -m gatekeeper_ops.burst`: a burst of endpoint requests under EC2's token
buckets and Lambda's concurrency, in virtual time. Prints its figures; exits 1 when an invariant
fails or a request was never decided. The handlers' logs go to a file."""

from __future__ import annotations

from gatekeeper_ops.chaos.logs import handler_logs, powertools_environment

# Powertools reads these when the handlers' modules are first imported, before any stack exists.
powertools_environment()

import argparse  # noqa: E402
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
    with handler_logs(log):
        report = run(settings)
    print(table(report))
    print(f"Handler logs      {log}\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
