"""The figures of a burst, as a plain-text table (invariants as the chaos run prints them)."""

from __future__ import annotations

from collections import Counter

from gatekeeper_ops.burst.run import HOW, BurstReport
from gatekeeper_ops.chaos.summary import SHORT, error_lines, invariant_lines


def _join(counts: dict[str, int] | Counter[str]) -> str:
    return ", ".join(f"{SHORT.get(name, name)} {count}" for name, count in counts.items()) or "none"


def table(report: BurstReport) -> str:
    s = report.settings
    announced = report.announced.values()
    decided = len(announced)
    how = Counter(report.how.values())
    calls = report.ec2_calls()
    answered = sum(a for a, _ in calls.values())
    throttled = sum(t for _, t in calls.values())
    rows = [
        (
            "Run",
            f"seed {s.seed}, {s.requests} requests within {s.window:g} s, {s.services} service(s), "
            f"EC2 buckets {'drained' if s.drained else 'full'} at the start",
        ),
        (
            "Decided",
            f"{decided} of {len(report.created)} ({_join(Counter(a.outcome for a in announced))})",
        ),
        (
            "First → last",
            f"{report.last_decision:.1f} s (virtual) from the first request to the last decision announced",
        ),
        (
            "Per request",
            f"p50 {report.percentile(50):.1f} s, p99 {report.percentile(99):.1f} s, "
            f"max {report.percentile(100):.1f} s",
        ),
        ("Decided by", ", ".join(f"{name} {how[name]}" for name in HOW if how[name]) or "none"),
        ("DLQ entries", _join({k.removesuffix("Url"): n for k, n in report.dead_letters().items()})),
        (
            "EC2 calls",
            f"{answered} answered, {throttled} throttled ({answered / max(decided, 1):.2f} and "
            f"{throttled / max(decided, 1):.2f} per decision)",
        ),
        *[(f"  {action}", f"{a} answered, {t} throttled") for action, (a, t) in calls.items()],
        (
            "Calls/decision",
            ", ".join(f"{service} {value:.2f}" for service, value in report.calls_per_decision().items()),
        ),
        (
            "Invocations",
            f"{len(report.invocations)} ({_join(Counter(i.function for i in report.invocations))})",
        ),
        ("  failed", _join(report.failed_invocations())),
        ("  timed out", _join(report.timed_out_invocations())),
        ("Sweeps", str(report.sweeps)),
        ("Time", f"{report.virtual_seconds:.1f} s virtual to settle, {report.wall_seconds:.0f} s wall"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    return "\n".join(lines + invariant_lines(report.invariants) + error_lines(report.invocations))
