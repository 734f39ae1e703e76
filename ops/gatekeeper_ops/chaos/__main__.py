"""`make chaos` / `python -m gatekeeper_ops.chaos`: the fault-injection run, one per `--rate`.

Prints the figures of each run; exits 1 when an invariant fails. The handlers' logs (and their
metrics) go to a file, for the diagnosis of a failure.
"""

from __future__ import annotations

from gatekeeper_ops.chaos.logs import handler_logs, powertools_environment

# Powertools reads these when the handlers' modules are first imported, before any stack exists.
powertools_environment()

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from gatekeeper_ops.chaos.run import ChaosSettings, run  # noqa: E402
from gatekeeper_ops.chaos.summary import table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos ARGS=…", description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="endpoint requests (default 300)")
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        help="share of AWS call attempts that fail transiently; repeat for several runs (default 0.2 0.35)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--crash-rate", type=float, default=None, help="default: rate / 20")
    parser.add_argument("--unsuccessful-rate", type=float, default=None, help="default: rate / 2")
    parser.add_argument("--settle-sweeps", type=int, default=4, help="schedule periods after faults stop")
    parser.add_argument("--log-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--lag",
        type=float,
        default=None,
        metavar="SECONDS",
        help="EC2's read lag: a new or changed connection reads stale for this long (default: consistent)",
    )
    args = parser.parse_args(argv)
    failed = False
    for rate in args.rate or [0.20, 0.35]:
        settings = ChaosSettings(
            requests=args.requests,
            rate=rate,
            seed=args.seed,
            crash_rate=args.crash_rate,
            unsuccessful_rate=args.unsuccessful_rate,
            settle_sweeps=args.settle_sweeps,
            ec2_lag_seconds=args.lag,
        )
        log = args.log_dir / f"gatekeeper-chaos-seed{args.seed}-rate{rate:g}.log"
        with handler_logs(log) as stream:
            report = run(settings)
            for invariant in report.failures():
                print(f"\n=== {invariant.name}", file=stream)
                for offender in invariant.offenders[:5]:
                    print(f"--- {offender}", file=stream)
                    for line in report.timeline(offender.split(" ")[0]):
                        print(line, file=stream)
        print(table(report))
        print(f"{'Handler logs':<16}  {log} (timelines of the failing endpoints at the end)\n")
        failed = failed or not report.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
