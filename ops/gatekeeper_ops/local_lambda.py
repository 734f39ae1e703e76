"""A local stand-in for the Lambda service: delivers a provisioned stack's triggers to the real
handlers, in-process, with Lambda's delivery semantics.

- SQS event sources: batches of up to BatchSize; `batchItemFailures` are made visible again and
  retried; the queue's own redrive policy moves a message to its DLQ after maxReceiveCount.
- EventBridge rules (async invoke): an event that raises is retried twice, then sent to the
  function's on-failure destination — as `EventInvokeConfig` in the template says.
Nothing here decides anything; it only moves events the way AWS would.
"""

from __future__ import annotations

import importlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from gatekeeper_ops.stack import EmulatedStack, FunctionBinding

ASYNC_ATTEMPTS = 3  # the first invoke + MaximumRetryAttempts 2


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_s: int = 30
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self.started)) * 1000))


@dataclass
class Invocation:
    function: str
    trigger: str
    ok: bool
    result: Any = None
    error: str | None = None
    seconds: float = 0.0


def reset_handler_caches() -> None:
    """Forget cached settings and clients so handlers bind to the current environment."""
    from gatekeeper import runtime, settings

    settings.settings.cache_clear()
    runtime.decision_service.cache_clear()
    runtime.announcer.cache_clear()


class LocalLambda:
    def __init__(
        self,
        stack: EmulatedStack,
        session: boto3.Session,
        extra_environment: dict[str, str] | None = None,
        on_invocation: Callable[[Invocation], None] | None = None,
    ) -> None:
        self.stack = stack
        self.sqs = session.client("sqs")
        self.invocations: list[Invocation] = []
        self._on_invocation = on_invocation
        os.environ.update(stack.environment())
        os.environ.update(extra_environment or {})
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = stack.region
        reset_handler_caches()
        self._failure_destination = self._destinations()

    def _destinations(self) -> dict[str, str]:
        """function logical id → on-failure queue url (EventInvokeConfig)."""
        from gatekeeper_ops.stack import load_template

        template = load_template()
        found: dict[str, str] = {}
        for logical_id in self.stack.functions:
            config = template["Resources"][logical_id]["Properties"].get("EventInvokeConfig", {})
            target = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if isinstance(target, dict) and "Fn::GetAtt" in target:
                found[logical_id] = self.stack.ref(target["Fn::GetAtt"][0])
        return found

    # -- invoking ------------------------------------------------------------------------------
    def invoke(self, binding: FunctionBinding, event: dict[str, Any], trigger: str) -> Invocation:
        handler = getattr(importlib.import_module(binding.module), binding.handler)
        context = LambdaContext(binding.logical_id, timeout_s=binding.timeout)
        started = time.perf_counter()
        try:
            result = handler(event, context)
            invocation = Invocation(binding.logical_id, trigger, True, result)
        except Exception as exc:
            invocation = Invocation(binding.logical_id, trigger, False, error=f"{type(exc).__name__}: {exc}")
        invocation.seconds = time.perf_counter() - started
        self.invocations.append(invocation)
        if self._on_invocation:
            self._on_invocation(invocation)
        return invocation

    # -- delivering ----------------------------------------------------------------------------
    def pump(self) -> int:
        """Deliver what is waiting once; the number of messages delivered."""
        delivered = 0
        for binding in self.stack.functions.values():
            if binding.sqs_queue_url:
                delivered += self._deliver_sqs(binding, binding.sqs_queue_url)
            for queue_url in binding.rules:
                delivered += self._deliver_async(binding, queue_url)
        return delivered

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
        messages = self._receive(queue_url, binding.sqs_batch_size)
        if not messages:
            return 0
        arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": self.stack.region,
            }
            for m in messages
        ]
        invocation = self.invoke(binding, {"Records": records}, "sqs")
        failed: set[str] = set()
        if not invocation.ok:
            failed = {m["MessageId"] for m in messages}
        elif isinstance(invocation.result, dict):
            failed = {f["itemIdentifier"] for f in invocation.result.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def _deliver_async(self, binding: FunctionBinding, queue_url: str) -> int:
        messages = self._receive(queue_url, 10)
        for message in messages:
            event = json.loads(message["Body"])
            # moto's SQS target drops the event's `account`; EventBridge always sends it.
            event.setdefault("account", self.stack.account_id)
            invocation = self.invoke(binding, event, str(event.get("detail-type", "event")))
            attempts = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            if invocation.ok or attempts >= ASYNC_ATTEMPTS:
                if not invocation.ok and binding.logical_id in self._failure_destination:
                    self.sqs.send_message(
                        QueueUrl=self._failure_destination[binding.logical_id],
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
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            else:
                self.sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        return len(messages)
