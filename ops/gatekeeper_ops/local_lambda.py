"""A local stand-in for the Lambda service: delivers a provisioned stack's triggers (SQS, EventBridge
rules, schedules, DynamoDB streams) to the real handlers, in-process, with Lambda's delivery,
retry, concurrency and identity semantics (each listed on `LocalLambda`). Nothing here decides
anything; it only moves events the way AWS would. Fidelity: docs/emulator.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import boto3
from botocore.config import Config
from botocore.credentials import Credentials

from gatekeeper_ops.emulator import deliver_notifications
from gatekeeper_ops.stack import EmulatedStack, FunctionBinding, StreamSource


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_s: int = 30
    # time.time(), not monotonic: a virtual clock (the chaos and burst runs) moves it.
    started: float = field(default_factory=time.time)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.time() - self.started)) * 1000))


class FunctionTimedOut(BaseException):
    """Stops a handler the way Lambda's timeout does. A BaseException, so no `except Exception` in
    the handler (a rollback, a batch processor) gets to run on the way out."""


@dataclass(frozen=True)
class RetryTiming:
    """When the local Lambda service retries what failed (seconds of the clock, whatever it is)."""

    # Delay before async retry n (1-based) of a failed EventBridge event; missing entries: 0.
    async_retry_delays: tuple[int, ...] = ()
    # True: a failed SQS message stays invisible for the rest of its visibility timeout (Lambda's
    # behaviour); False: it is made visible again at once.
    sqs_wait_visibility_timeout: bool = False

    @classmethod
    def aws(cls) -> RetryTiming:
        """As on AWS: async retries after about 1 and then 2 minutes; SQS after the visibility timeout."""
        return cls(async_retry_delays=(60, 120), sqs_wait_visibility_timeout=True)

    def async_delay(self, attempt: int) -> int:
        """Seconds before the retry that follows failed attempt `attempt` (1-based)."""
        return self.async_retry_delays[attempt - 1] if attempt <= len(self.async_retry_delays) else 0


class Concurrency:
    """How invocations run: this one runs each at once, in the caller's thread, to its end.

    A harness that models Lambda's concurrency subclasses it (`gatekeeper_ops.burst.conductor`):
    `dispatch` then starts the work alongside the others, `wait` passes time for that work alone and
    `function_timeout` ends an invocation that overruns its timeout."""

    parallel = False  # True: deliver everything visible each pump, up to the concurrency limits

    def dispatch(self, work: Callable[[], object]) -> None:
        work()

    def wait(self, seconds: float) -> None:
        """A batching window: not waited here, so a test need not wait."""

    @contextlib.contextmanager
    def function_timeout(self, seconds: float) -> Iterator[None]:
        yield


ACCOUNT_CONCURRENCY = 1000  # Lambda's default concurrent executions per account and Region
SQS_POLLERS_AT_START, SQS_POLLERS_PER_SECOND = 5, 5  # Lambda's SQS scaling: 5, then +300 a minute


@dataclass
class Invocation:
    function: str
    trigger: str
    ok: bool
    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    event: Any = None  # what the function was given
    attempt: int = 1  # async: the delivery attempt; SQS: the highest receive count in the batch
    at: float = 0.0  # epoch seconds (of whatever clock runs) when it started
    ended: float = 0.0  # ... and when it ended
    # Messages the handler received from a queue itself (the decider's top-up of a full delivery).
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_records(self) -> int:
        """SQS/stream records that come back: all of a failed invocation's, or its batchItemFailures."""
        records = len(self.event.get("Records", [])) if isinstance(self.event, dict) else 0
        if not self.ok:
            return max(1, records)
        if isinstance(self.result, dict):
            return len(self.result.get("batchItemFailures") or [])
        return 0


# The execution role whose keys sign the running handler's calls (None: not in a handler).
_ROLE_KEYS: contextvars.ContextVar[Credentials | None] = contextvars.ContextVar("role_keys", default=None)


def _sign_as_execution_role(request_signer: Any = None, **_: Any) -> None:
    keys = _ROLE_KEYS.get()
    if keys is not None and request_signer is not None:
        request_signer._credentials = keys


# The running handler's own SQS receives, for its Invocation (None: not in a handler).
_RECEIVED: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "received", default=None
)


def _note_received(parsed: dict[str, Any] | None = None, **_: Any) -> None:
    received = _RECEIVED.get()
    if received is not None and parsed:
        received += parsed.get("Messages", [])


def reset_handler_caches() -> None:
    """Forget cached settings, clients and their session so handlers bind to the current environment
    (as a new execution environment would)."""
    from gatekeeper.wiring import services as runtime
    from gatekeeper.wiring import settings

    settings.settings.cache_clear()
    runtime.session.cache_clear()
    runtime.decision_service.cache_clear()
    runtime.decision_queue.cache_clear()
    runtime.announcer.cache_clear()
    runtime.reconciler.cache_clear()
    runtime.tenant_sync.cache_clear()
    runtime.tenant_changes.cache_clear()
    # The new session's clients sign as the running handler's execution role (a client copies its
    # session's hooks when it is built, so the hook goes on before any is).
    runtime.session().events.register(
        "before-sign", _sign_as_execution_role, unique_id="local-lambda-execution-role"
    )
    runtime.session().events.register(
        "after-call.sqs.ReceiveMessage", _note_received, unique_id="local-lambda-received"
    )


def handler_session() -> boto3.Session:
    """The session every client the handlers build from now on comes from (the cached ones are
    forgotten): hook botocore events on it to count or time the handlers' calls, e.g.
    `handler_session().events.register("before-call", count)`. It lasts until handler caches are
    next reset (a new LocalLambda, a timed-out invocation), as an execution environment's would."""
    from gatekeeper.wiring import services as runtime

    reset_handler_caches()
    return runtime.session()


@dataclass
class StreamCursor:
    """Where an event source mapping is in its stream, and how its current batch is faring."""

    after: str | None = None  # sequence number of the last record done with
    attempts: int = 0  # failed attempts of the batch starting after `after`
    limit: int | None = None  # batch size while bisecting


def matches_filter(pattern: Any, value: Any) -> bool:
    """Lambda event filtering, the subset templates here use: nested keys and lists of exact values."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            key in value and matches_filter(sub, value[key]) for key, sub in pattern.items()
        )
    if isinstance(pattern, list):
        if any(isinstance(option, dict) for option in pattern):
            raise NotImplementedError(f"filter operator {pattern!r} is not emulated")
        return value in pattern
    raise ValueError(f"filter pattern values are lists or objects, not {pattern!r}")


def sqs_records(messages: list[dict[str, Any]], queue_arn: str, region: str) -> list[dict[str, Any]]:
    """ReceiveMessage's messages as the records of the SQS event Lambda's event source mapping sends."""
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": m.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
        for m in messages
    ]


class LocalLambda:
    """The stack's triggers delivered to its handlers, as Lambda does:

    - SQS event sources: batches of up to BatchSize; `batchItemFailures` are made visible again and
      retried; the queue's own redrive policy moves a message to its DLQ after maxReceiveCount.
    - EventBridge rules (async invoke): an event that raises is retried twice, then sent to the
      function's on-failure destination — as `EventInvokeConfig` in the template says. Each rule
      delivers through an SQS queue of its own (moto's EventBridge has no Lambda target); EventBridge
      pushes to Lambda, so a queue that moto, running in this process, shows empty is not polled (an
      empty ReceiveMessage would be this stand-in's own cost, not one AWS has).
    - Timing (`RetryTiming`): by default a failed message or event is retried at once, so a test need
      not wait. `RetryTiming.aws()` retries as Lambda does on AWS, for runs on a virtual clock
      (`gatekeeper_ops.chaos`): a failed SQS message is left invisible until the queue's visibility
      timeout ends (Lambda does not change it), a failed async event is retried after 1 and then 2
      minutes (the delays are visibility timeouts of the delivery queue, so they follow the clock).
    - A `FunctionTimedOut` raised inside a handler (by a test's hook) ends the invocation as Lambda's
      timeout does: the invocation fails whatever the handler catches, and the execution environment is
      reset (cached settings and clients are built again at the next invocation).
    - Concurrency (`Concurrency`): by default one invocation at a time, in the caller's thread, each
      pump receiving one batch per queue (tests see exact sequences). A harness on a virtual clock
      (`gatekeeper_ops.burst`) passes one that runs invocations side by side: then every visible
      async event is invoked at once up to the function's concurrency (ReservedConcurrentExecutions,
      else the account's 1,000), and an SQS mapping runs up to `ScalingConfig.MaximumConcurrency`
      batches at once (else Lambda's scaling: 5 pollers, 5 more a second), each batch gathered up to
      `BatchSize` and, when short, for `MaximumBatchingWindowInSeconds`; the function timeout is then
      enforced on the harness's clock.
    - Schedules: `run_schedule(logical_id)` fires a function's Schedule event once (async invoke,
      retried at once as its `EventInvokeConfig` says, whatever the timing), as EventBridge would at
      the next tick.
    - Identity: a handler's AWS calls are signed as its function's role (keys from sts:AssumeRole of
      the role's ARN), as Lambda runs a function with its execution role, so resource policies that
      name the roles (the bus policy) judge them as AWS would.
    - DynamoDB streams: records after the mapping's checkpoint, filtered by its FilterCriteria, in
      batches of up to BatchSize. A `batchItemFailures` answer checkpoints before the first failed
      record and retries from it; a function error retries the batch (halved when
      BisectBatchOnFunctionError); after MaximumRetryAttempts the batch's metadata goes to the
      on-failure queue and the records are skipped — as Lambda's event source mapping does. Like its
      poller, a read goes on from where the last one ended (GetRecords' NextShardIterator) instead of
      asking for a new shard iterator each time.
    Nothing here decides anything; it only moves events the way AWS would.
    """

    def __init__(
        self,
        stack: EmulatedStack,
        session: boto3.Session,
        extra_environment: dict[str, str] | None = None,
        on_invocation: Callable[[Invocation], None] | None = None,
        timing: RetryTiming | None = None,
        *,
        concurrency: Concurrency | None = None,
    ) -> None:
        self.stack = stack
        self.timing = timing or RetryTiming()
        self.concurrency = concurrency or Concurrency()
        self.in_flight: Counter[str] = Counter()  # function → invocations running
        self._gathering: Counter[str] = Counter()  # function → SQS batches within their window
        self._sqs_started: dict[str, float] = {}  # function → when its SQS pollers started scaling
        self.sqs = session.client("sqs")
        # botocore sends stream calls to account-id endpoints (<account>.streams-ddb…), which moto
        # does not route; the regional endpoint serves the same API.
        self.streams = session.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
        self._cursors: dict[tuple[str, str], StreamCursor] = {}
        self._shards: dict[str, str] = {}
        # (stream, sequence number a read ended after) → the NextShardIterator that goes on from there.
        self._iterators: dict[tuple[str, str | None], str] = {}
        self._queue_arns: dict[str, str] = {}  # an event source mapping knows its queue's ARN
        self.invocations: list[Invocation] = []
        self._on_invocation = on_invocation
        os.environ.update(stack.environment())
        os.environ.update(extra_environment or {})
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = stack.region
        reset_handler_caches()
        # Each function's execution role, signed in once (before any invocation: not the handler's call).
        self._role_keys: dict[str, Credentials] = {}
        sts = session.client("sts")
        for logical_id in stack.functions:
            role = stack.physical.get(f"{logical_id}Role", {}).get("Arn")
            if role:
                keys = sts.assume_role(RoleArn=role, RoleSessionName=logical_id)["Credentials"]
                self._role_keys[logical_id] = Credentials(
                    keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"]
                )

    # -- invoking ------------------------------------------------------------------------------
    def invoke(
        self, binding: FunctionBinding, event: dict[str, Any], trigger: str, attempt: int = 1
    ) -> Invocation:
        handler = getattr(importlib.import_module(binding.module), binding.handler)
        context = LambdaContext(binding.logical_id, timeout_s=binding.timeout)
        at, started = time.time(), time.perf_counter()
        received: list[dict[str, Any]] = []
        noting = _RECEIVED.set(received)
        try:
            with self.concurrency.function_timeout(binding.timeout), self._execution_role(binding):
                result = handler(event, context)
            invocation = Invocation(binding.logical_id, trigger, True, result)
        except Exception as exc:
            invocation = Invocation(binding.logical_id, trigger, False, error=f"{type(exc).__name__}: {exc}")
        except FunctionTimedOut as exc:
            invocation = Invocation(binding.logical_id, trigger, False, error=f"Task timed out: {exc}")
            reset_handler_caches()  # Lambda replaces the execution environment after a timeout
        finally:
            _RECEIVED.reset(noting)
        invocation.received = received
        invocation.seconds = time.perf_counter() - started
        invocation.event = event
        invocation.attempt = attempt
        invocation.at = at
        invocation.ended = time.time()
        self.invocations.append(invocation)
        if self._on_invocation:
            self._on_invocation(invocation)
        return invocation

    @contextlib.contextmanager
    def _execution_role(self, binding: FunctionBinding) -> Any:
        """The handler's calls signed with its role's keys (the hook: `reset_handler_caches`)."""
        keys = self._role_keys.get(binding.logical_id)
        if keys is None:
            yield
            return
        token = _ROLE_KEYS.set(keys)
        try:
            yield
        finally:
            _ROLE_KEYS.reset(token)

    # -- delivering ----------------------------------------------------------------------------
    def pump(self) -> int:
        """Deliver what is waiting once; the number of messages delivered. Connection notifications the
        emulator holds back (eventual consistency) go out first, as SNS would have sent them meanwhile."""
        delivered = deliver_notifications()
        for binding in self.stack.functions.values():
            if binding.sqs_queue_url:
                delivered += self._deliver_sqs(binding, binding.sqs_queue_url)
            for queue_url in binding.rules:
                delivered += self._deliver_async(binding, queue_url)
            for source in binding.streams:
                delivered += self._deliver_stream(binding, source)
        return delivered

    def run_schedule(self, logical_id: str, event_id: str | None = None) -> Invocation:
        """Fire a function's schedule once: the event EventBridge sends at a tick, async invoke."""
        binding = self.stack.functions[logical_id]
        if not binding.schedules:
            raise ValueError(f"{logical_id} has no Schedule event in template.yaml")
        event_id = event_id or next(iter(binding.schedules))
        rule = f"{self.stack.name}-{logical_id}{event_id}"
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.stack.account_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": self.stack.region,
            "resources": [f"arn:aws:events:{self.stack.region}:{self.stack.account_id}:rule/{rule}"],
            "detail": {},
        }
        for _ in range(1 + binding.async_retry_attempts):
            invocation = self.invoke(binding, event, "schedule")
            if invocation.ok:
                break
        return invocation

    def drain(self, max_rounds: int = 1000) -> int:
        """Pump until nothing is left to deliver."""
        total = 0
        for _ in range(max_rounds):
            delivered = self.pump()
            total += delivered
            if delivered == 0:
                return total
        raise RuntimeError(f"events still flowing after {max_rounds} rounds")

    def _receive(self, queue_url: str, count: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, count),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        return [dict(m) for m in response.get("Messages", [])]

    def _deliver_sqs(self, binding: FunctionBinding, queue_url: str) -> int:
        delivered = 0
        # A batch still within its batching window gets the messages that arrive meanwhile.
        while self._capacity(binding, sqs=True) > 0 and not self._gathering[binding.logical_id]:
            messages = self._receive(queue_url, binding.sqs_batch_size)
            if not messages:
                break
            delivered += len(messages)
            self._dispatch(binding, partial(self._run_sqs_batch, binding, queue_url, messages))
            if not self.concurrency.parallel:
                break
        return delivered

    def _run_sqs_batch(
        self, binding: FunctionBinding, queue_url: str, messages: list[dict[str, Any]]
    ) -> None:
        """One poller's batch: topped up to BatchSize (waiting out the batching window when short),
        invoked, then what succeeded deleted and what failed left to its visibility timeout."""
        messages += self._receive_more(queue_url, binding.sqs_batch_size - len(messages))
        if len(messages) < binding.sqs_batch_size and binding.sqs_batching_window > 0:
            self._gathering[binding.logical_id] += 1
            try:
                self.concurrency.wait(binding.sqs_batching_window)
            finally:
                self._gathering[binding.logical_id] -= 1
            messages += self._receive_more(queue_url, binding.sqs_batch_size - len(messages))
        records = sqs_records(messages, self._queue_arn(queue_url), self.stack.region)
        received = max(int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")) for m in messages)
        invocation = self.invoke(binding, {"Records": records}, "sqs", received)
        failed: set[str] = set()
        if not invocation.ok:
            failed = {m["MessageId"] for m in messages}
        elif isinstance(invocation.result, dict):
            failed = {f["itemIdentifier"] for f in invocation.result.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] in failed and not self.timing.sqs_wait_visibility_timeout:
                self.sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        # The event source mapping deletes what succeeded in one DeleteMessageBatch, as Lambda does.
        self._delete(queue_url, [m["ReceiptHandle"] for m in messages if m["MessageId"] not in failed])

    def _receive_more(self, queue_url: str, count: int) -> list[dict[str, Any]]:
        """Up to `count` more visible messages (ReceiveMessage returns at most ten a call)."""
        found: list[dict[str, Any]] = []
        while len(found) < count:
            messages = self._receive(queue_url, count - len(found))
            if not messages:
                break
            found += messages
        return found

    def _dispatch(self, binding: FunctionBinding, work: Callable[[], object]) -> None:
        self.in_flight[binding.logical_id] += 1

        def counted() -> None:
            try:
                work()
            finally:
                self.in_flight[binding.logical_id] -= 1

        self.concurrency.dispatch(counted)

    def _capacity(self, binding: FunctionBinding, *, sqs: bool = False) -> float:
        """How many more invocations of the function may start now."""
        limit: float = (
            ACCOUNT_CONCURRENCY if binding.reserved_concurrency is None else binding.reserved_concurrency
        )
        if sqs:
            started = self._sqs_started.setdefault(binding.logical_id, time.time())
            limit = min(limit, SQS_POLLERS_AT_START + SQS_POLLERS_PER_SECOND * int(time.time() - started))
            if binding.sqs_maximum_concurrency is not None:
                limit = min(limit, binding.sqs_maximum_concurrency)
        return limit - self.in_flight[binding.logical_id]

    def _queue_arn(self, queue_url: str) -> str:
        if queue_url not in self._queue_arns:
            attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
            self._queue_arns[queue_url] = attributes["Attributes"]["QueueArn"]
        return self._queue_arns[queue_url]

    def _delete(self, queue_url: str, receipt_handles: list[str]) -> None:
        """Delete messages, up to ten a call; a receipt handle SQS refuses raises, as DeleteMessage would."""
        for first in range(0, len(receipt_handles), 10):
            chunk = receipt_handles[first : first + 10]
            response = self.sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(chunk)],
            )
            if response.get("Failed"):
                raise RuntimeError(f"DeleteMessageBatch on {queue_url} failed: {response['Failed']}")

    def _deliver_async(self, binding: FunctionBinding, queue_url: str) -> int:
        if self._certainly_empty(queue_url):
            return 0
        delivered = 0
        while (room := self._capacity(binding)) > 0:
            messages = self._receive(queue_url, int(min(10, room)))
            for message in messages:
                self._dispatch(binding, partial(self._run_async, binding, queue_url, message))
            delivered += len(messages)
            if not messages or not self.concurrency.parallel:
                break
        return delivered

    def _run_async(self, binding: FunctionBinding, queue_url: str, message: dict[str, Any]) -> None:
        event = json.loads(message["Body"])
        # moto's SQS target drops the event's `account`; EventBridge always sends it.
        event.setdefault("account", self.stack.account_id)
        attempts = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        invocation = self.invoke(binding, event, str(event.get("detail-type", "event")), attempts)
        if not invocation.ok and attempts < 1 + binding.async_retry_attempts:
            self.sqs.change_message_visibility(
                QueueUrl=queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=self.timing.async_delay(attempts),
            )
            return
        if not invocation.ok and binding.on_failure_queue_url:
            self.sqs.send_message(
                QueueUrl=binding.on_failure_queue_url,
                MessageBody=json.dumps(
                    {
                        "requestContext": {
                            "functionArn": binding.logical_id,
                            "condition": "RetriesExhausted",
                            "approximateInvokeCount": attempts,
                        },
                        "requestPayload": event,
                        "responsePayload": {"errorMessage": invocation.error},
                    }
                ),
            )
        self._delete(queue_url, [message["ReceiptHandle"]])

    def _certainly_empty(self, queue_url: str) -> bool:
        """Whether an async-invoke queue holds no message at all (none visible, in flight or
        delayed), as moto's backend in this process shows it; False when it cannot tell (moto runs
        elsewhere), and the queue is polled."""
        from moto.sqs.models import sqs_backends

        account, name = queue_url.rstrip("/").rsplit("/", 2)[-2:]
        try:
            queue = sqs_backends[account][self.stack.region].queues.get(name)
        except Exception:  # not an account moto knows here
            return False
        return queue is not None and not queue._messages

    # -- DynamoDB streams ----------------------------------------------------------------------
    def _deliver_stream(self, binding: FunctionBinding, source: StreamSource) -> int:
        key = (binding.logical_id, source.event_id)
        if key not in self._cursors:
            self._cursors[key] = self._start(source)
        cursor = self._cursors[key]
        batch, cursor.after = self._next_batch(source, cursor)
        if not batch:
            return 0
        invocation = self.invoke(binding, {"Records": batch}, "dynamodb")
        failed: set[str] = set()
        if invocation.ok and source.report_batch_item_failures and isinstance(invocation.result, dict):
            failed = {str(f["itemIdentifier"]) for f in invocation.result.get("batchItemFailures", [])}
        if invocation.ok and not failed:
            cursor.after, cursor.attempts, cursor.limit = _sequence(batch[-1]), 0, None
            return len(batch)
        first = 0
        if invocation.ok:  # partial failure: checkpoint before the first failed record, retry from it
            first = min(i for i, record in enumerate(batch) if _sequence(record) in failed)
            if first:
                cursor.after, cursor.attempts = _sequence(batch[first - 1]), 0
        elif source.bisect_on_error and len(batch) > 1:
            cursor.limit = len(batch) // 2
            return len(batch)
        cursor.attempts += 1
        if 0 <= source.maximum_retry_attempts < cursor.attempts:
            self._discard(binding, source, batch[first:], cursor.attempts)
            cursor.after, cursor.attempts, cursor.limit = _sequence(batch[-1]), 0, None
        return len(batch)

    def _start(self, source: StreamSource) -> StreamCursor:
        if source.starting_position == "TRIM_HORIZON":
            return StreamCursor()
        latest = self._read(source, None, 10_000)
        return StreamCursor(after=_sequence(latest[-1]) if latest else None)

    def _next_batch(
        self, source: StreamSource, cursor: StreamCursor
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to a batch of records matching the filters; records filtered out are checkpointed past."""
        size = cursor.limit or source.batch_size
        after, batch = cursor.after, []
        for record in self._read(source, after, 1000):
            if not source.filters or any(matches_filter(p, record) for p in source.filters):
                batch.append(record)
                if len(batch) == size:
                    break
            elif not batch:
                after = _sequence(record)
        return batch, after

    def _read(self, source: StreamSource, after: str | None, limit: int) -> list[dict[str, Any]]:
        if source.stream_arn not in self._shards:
            shards = self.streams.describe_stream(StreamArn=source.stream_arn)["StreamDescription"]["Shards"]
            self._shards[source.stream_arn] = shards[0]["ShardId"]
        iterator = self._iterators.pop((source.stream_arn, after), None)
        if iterator is None:
            kwargs: dict[str, Any] = {
                "StreamArn": source.stream_arn,
                "ShardId": self._shards[source.stream_arn],
            }
            if after is None:
                kwargs["ShardIteratorType"] = "TRIM_HORIZON"
            else:
                kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
            iterator = self.streams.get_shard_iterator(**kwargs)["ShardIterator"]
        response = self.streams.get_records(ShardIterator=iterator, Limit=limit)
        records = response["Records"]
        if response.get("NextShardIterator"):
            end = _sequence(records[-1]) if records else after
            self._iterators[(source.stream_arn, end)] = response["NextShardIterator"]
        return [self._as_lambda_record(record, source.stream_arn) for record in records]

    def _as_lambda_record(self, record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
        """A GetRecords record → the shape Lambda delivers (epoch seconds, the source ARN, region)."""
        stream = dict(record["dynamodb"])
        created = stream.get("ApproximateCreationDateTime")
        if created is not None and hasattr(created, "timestamp"):
            stream["ApproximateCreationDateTime"] = int(created.timestamp())
        return {**record, "dynamodb": stream, "awsRegion": self.stack.region, "eventSourceARN": stream_arn}

    def _discard(
        self, binding: FunctionBinding, source: StreamSource, records: list[dict[str, Any]], attempts: int
    ) -> None:
        """Retries exhausted: the batch's metadata (not the records) goes to the on-failure queue."""
        if not source.on_failure_queue_url:
            return
        body = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": binding.logical_id,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "DDBStreamBatchInfo": {
                "shardId": self._shards[source.stream_arn],
                "startSequenceNumber": _sequence(records[0]),
                "endSequenceNumber": _sequence(records[-1]),
                "batchSize": len(records),
                "streamArn": source.stream_arn,
            },
        }
        self.sqs.send_message(QueueUrl=source.on_failure_queue_url, MessageBody=json.dumps(body))


def _sequence(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])
