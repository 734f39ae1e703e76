"""The figures of a chaos run, as a plain-text table."""

from __future__ import annotations

from collections import Counter

from gatekeeper_ops.chaos.invariants import Invariant, Observations
from gatekeeper_ops.chaos.run import ChaosReport, ChaosSettings, commonest_errors
from gatekeeper_ops.chaos.workload import KIND_WEIGHTS
from gatekeeper_ops.local_lambda import Invocation

FAULT_LABELS = {
    "throttle": "throttled",
    "server_error": "5xx",
    "connection": "connection error",
    "lost": "applied, response lost",
    "crash": "invocation killed",
    "unsuccessful": "Accept/Reject Unsuccessful",
}
SHORT = {
    "IngestNotificationsFunction": "ingest",
    "EvaluateConnectionFunction": "evaluate",
    "CloseConnectionFunction": "close",
    "ReconcileConnectionsFunction": "reconcile",
    "SyncTenantsFunction": "sync-tenants",
}


def _join(counts: dict[str, int] | Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items()) or "none"


_Row = tuple[str, str]  # label, value


def table(report: ChaosReport) -> str:
    rows = [
        *_workload_rows(report),
        *_fault_rows(report),
        *_invocation_rows(report),
        *_outcome_rows(report),
        _time_row(report),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    lines += invariant_lines(report.invariants)
    lines += error_lines(report.invocations)
    return "\n".join(lines)


def _workload_rows(report: ChaosReport) -> list[_Row]:
    s = report.settings
    kinds = Counter(r.kind for r in report.workload.requests)
    return [
        (
            "Run",
            f"seed {s.seed}, {s.requests} requests, {s.rate:.0%} transient faults per AWS call attempt"
            + _lag(s),
        ),
        ("Requests", _join({k: kinds[k] for k in KIND_WEIGHTS})),
        (
            "Consumers",
            f"deleted later {report.deleted_later}, deleted during the decision "
            f"{report.deleted_during_decision}; duplicate notifications sent {report.duplicates_sent}",
        ),
    ]


def _fault_rows(report: ChaosReport) -> list[_Row]:
    injector = report.injector
    faults_by_kind = {FAULT_LABELS[k]: injector.count(k) for k in FAULT_LABELS}
    transient = sum(injector.count(k) for k in ("throttle", "server_error", "connection", "lost"))
    by_service: Counter[str] = Counter()
    by_operation: Counter[str] = Counter()
    for (_, service, operation), n in injector.faults.items():
        by_service[service] += n
        by_operation[f"{service}:{operation}"] += n
    return [
        (
            "AWS calls",
            f"{sum(injector.attempts.values())} attempts by the handlers ({injector.attempts_under_faults} "
            f"while faults were on); botocore retries {sum(injector.sdk_retries.values())}; "
            f"TransactWriteItems answered from the token cache {injector.idempotent_replays}",
        ),
        (
            "Faults injected",
            f"{sum(faults_by_kind.values())}: {_join(faults_by_kind)} "
            f"(transient: {transient / max(1, injector.attempts_under_faults):.1%} of attempts)",
        ),
        ("  by service", _join(dict(by_service.most_common()))),
        ("  by operation", _join(dict(by_operation.most_common(6))) + ", …"),
    ]


def _invocation_rows(report: ChaosReport) -> list[_Row]:
    invocations: Counter[str] = Counter(SHORT.get(i.function, i.function) for i in report.invocations)
    failed: Counter[str] = Counter(SHORT.get(i.function, i.function) for i in report.invocations if not i.ok)
    seen = report.observations
    dead_letters = {k.removesuffix("DeadLetterQueueUrl"): len(v) for k, v in seen.dead_letters.items()}
    return [
        ("Invocations", ", ".join(f"{f} {n} ({failed[f]} failed)" for f, n in invocations.items())),
        _retries_row(report),
        (
            "DLQ messages",
            "per 1,000 decisions: "
            + ", ".join(f"{name} {seen.per_thousand(n):.1f} ({n})" for name, n in dead_letters.items()),
        ),
    ]


def _retries_row(report: ChaosReport) -> _Row:
    retried = [i for i in report.invocations if i.attempt > 1]
    async_retries = sum(1 for i in retried if i.trigger.startswith("Endpoint Connection"))
    redeliveries = sum(1 for i in retried if i.trigger == "sqs")
    return (
        "Retries",
        f"async retries {async_retries}, SQS redeliveries {redeliveries}, "
        f"sweeps {report.sweeps} ({report.sweeps_failed} failed)",
    )


def _outcome_rows(report: ChaosReport) -> list[_Row]:
    seen = report.observations
    ours = {r.endpoint for r in report.workload.requests if r.endpoint}
    ec2 = Counter(seen.ec2_state(e) for e in ours)
    states = Counter(seen.status(e) or "no state" for e in ours)
    return [
        ("Final EC2 states", _join(dict(ec2.most_common()))),
        ("Final decisions", _join(dict(states.most_common()))),
        ("  records by reason", _join(dict(seen.reasons.most_common()))),
        ("Announcements", _copies(seen)),
    ]


def _copies(seen: Observations) -> str:
    """Raw copies per channel per 1,000 decisions: at-least-once delivery's price, measured."""
    shown = []
    for name, label in (("sns", "SNS"), ("bus", "bus")):
        copies, extra = len(seen.copies[name]), seen.extra_copies(name)
        shown.append(
            f"{label} {seen.per_thousand(copies):.1f} ({copies}, {seen.per_thousand(extra):.1f} extra)"
        )
    return f"copies per 1,000 decisions ({len(seen.records)} recorded): " + ", ".join(shown)


def _time_row(report: ChaosReport) -> _Row:
    return (
        "Time",
        f"virtual {report.virtual_seconds:.0f} s (faults for {report.fault_window:.0f} s, back-off "
        f"{report.slept_seconds:.0f} s), wall {report.wall_seconds:.1f} s; claims stale after "
        f"{report.stale_after:.0f} s",
    )


def invariant_lines(invariants: list[Invariant]) -> list[str]:
    return ["Invariants"] + [
        f"  {'PASS' if i.ok else 'FAIL'}  {i.message(8) if not i.ok else i.name}" for i in invariants
    ]


def error_lines(invocations: list[Invocation]) -> list[str]:
    errors = commonest_errors(invocations, 8)
    if not errors:
        return []
    return ["Commonest invocation errors"] + [f"  {count:>5}  {error}" for error, count in errors]


def _lag(settings: ChaosSettings) -> str:
    lag = settings.ec2_lag_seconds
    return "" if lag is None else f", EC2 reads lag {lag:g} s"
