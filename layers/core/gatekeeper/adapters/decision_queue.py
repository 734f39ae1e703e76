"""The decision queue as the decider reads it itself, beside its SQS event source mapping.

With no batching window the mapping hands at most ten requests an invocation; a delivery that full
means a burst waits behind it, so the decider receives more of the queue into the same batch (one
Describe, one Accept and one Reject per service for all of them) and deletes those it is done with,
as the mapping does with its own records. A received message is hidden from every other reader (the
mapping's pollers too) for the queue's visibility timeout; one the decider is not done with comes
back after it and counts towards the queue's redrive to the DLQ, exactly as a `batchItemFailures`
entry of the mapping's does. Why and the numbers: docs/how-it-decides.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from gatekeeper.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# The most an SQS event source mapping hands an invocation with no batching window: a delivery of
# this many means more are queued; one of fewer is decided at once, with no SQS call.
FULL_DELIVERY = 10
MESSAGES_PER_CALL = 10  # ReceiveMessage and DeleteMessageBatch take at most ten


class DecisionQueue:
    def __init__(self, client: SQSClient, queue_url: str | None, batch_size: int) -> None:
        self._client = client
        self._queue_url = queue_url  # None: the function does not read its queue (close_connection)
        self._batch_size = batch_size

    def top_up(self, delivered: int) -> list[dict[str, Any]]:
        """More requests for a full delivery of `delivered`, as records shaped like the mapping's
        (`messageId`, `receiptHandle`, `body`): received ten a call without waiting, until the batch
        holds the batch size or the queue answers empty. A short poll may answer short while more
        wait (SQS samples its servers), so a short answer is not the end; the calls are bounded by
        one spare above what the batch size needs. A receive that fails ends the top-up: the batch
        is decided with what it holds."""
        wanted = self._batch_size - delivered
        if self._queue_url is None or delivered < FULL_DELIVERY or wanted <= 0:
            return []
        taken: list[dict[str, Any]] = []
        for _ in range(-(-wanted // MESSAGES_PER_CALL) + 1):
            try:
                response = self._client.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=min(MESSAGES_PER_CALL, wanted - len(taken)),
                    WaitTimeSeconds=0,
                )
            except (BotoCoreError, ClientError) as exc:
                logger.warning(
                    "Decision queue not read; deciding the delivery alone", extra={"error": str(exc)}
                )
                break
            messages = response.get("Messages", [])
            taken += [
                {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
                for m in messages
            ]
            if not messages or len(taken) >= wanted:
                break
        logger.info(
            "Batch topped up from the decision queue", extra={"delivered": delivered, "taken": len(taken)}
        )
        return taken

    def delete(self, records: Sequence[dict[str, Any]]) -> None:
        """Delete the records `top_up` took that are done, ten a DeleteMessageBatch. An entry SQS
        refuses, or a call that fails, is logged and left: its message comes back after its
        visibility timeout as a duplicate, which the decision path ends at once."""
        if self._queue_url is None:
            return
        for start in range(0, len(records), MESSAGES_PER_CALL):
            chunk = records[start : start + MESSAGES_PER_CALL]
            try:
                response = self._client.delete_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)
                    ],
                )
            except (BotoCoreError, ClientError) as exc:
                refused = [f"{r['messageId']}: {exc}" for r in chunk]
            else:
                refused = [
                    f"{chunk[int(f['Id'])]['messageId']}: {f.get('Code')}: {f.get('Message')}"
                    for f in response.get("Failed", [])
                ]
            if refused:
                logger.warning(
                    "Decided requests not deleted from the decision queue; they come back as duplicates",
                    extra={"refused": refused},
                )
