"""The decider's own reads of its queue (adapters/decision_queue.py): a full delivery is topped up to
the batch size and no further, a short delivery makes no call, and nothing it fails to do is lost
(a refused delete or receive is logged; the message comes back after its visibility timeout)."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from gatekeeper.adapters.decision_queue import DecisionQueue
from gatekeeper.observability import logger

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/decisions"


@pytest.fixture
def logged():
    """What the core logs meanwhile (Powertools' handler, not the root logger's)."""
    written = io.StringIO()
    stream = logger.registered_handler.setStream(written)
    yield written
    logger.registered_handler.setStream(stream)


@pytest.fixture
def queue():
    """A real (moto) queue holding `count` messages; the client and its url."""
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="decisions", Attributes={"VisibilityTimeout": "210"})["QueueUrl"]

        def holding(count: int):
            for start in range(0, count, 10):
                sqs.send_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "MessageBody": json.dumps({"n": i})}
                        for i in range(start, min(count, start + 10))
                    ],
                )
            return sqs, url

        yield holding


def counts(sqs, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_a_full_delivery_is_topped_up_to_the_batch_size_and_no_further(queue):
    sqs, url = queue(150)
    taken = DecisionQueue(sqs, url, batch_size=100).top_up(10)
    assert len(taken) == 90
    assert len({r["messageId"] for r in taken}) == 90
    assert {json.loads(r["body"])["n"] for r in taken} <= set(range(150))
    assert all(r["receiptHandle"] for r in taken)
    assert counts(sqs, url) == (60, 90)


def test_the_top_up_ends_when_the_queue_answers_empty(queue):
    sqs, url = queue(25)
    calls = []
    sqs.meta.events.register("before-call.sqs.ReceiveMessage", lambda **kw: calls.append(kw))
    taken = DecisionQueue(sqs, url, batch_size=100).top_up(10)
    assert len(taken) == 25
    assert len(calls) == 4  # 10, 10, 5, then the empty answer
    assert counts(sqs, url) == (0, 25)


@pytest.mark.parametrize("delivered", [1, 9])
def test_a_delivery_short_of_full_makes_no_sqs_call(delivered):
    sqs = boto3.client("sqs", region_name="us-east-1")
    with Stubber(sqs) as stubber:  # no answer stubbed: any call would raise
        assert DecisionQueue(sqs, URL, batch_size=100).top_up(delivered) == []
        stubber.assert_no_pending_responses()


def test_without_a_queue_or_room_nothing_is_received():
    sqs = boto3.client("sqs", region_name="us-east-1")
    with Stubber(sqs):
        assert DecisionQueue(sqs, None, batch_size=100).top_up(10) == []
        assert DecisionQueue(sqs, URL, batch_size=10).top_up(10) == []
        DecisionQueue(sqs, None, batch_size=100).delete([{"messageId": "m", "receiptHandle": "r"}])


def _messages(first: int, count: int) -> dict:
    return {
        "Messages": [
            {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": "{}", "MD5OfBody": "x"}
            for i in range(first, first + count)
        ]
    }


def test_a_short_answer_is_not_the_end_and_the_calls_are_bounded():
    """A short poll samples SQS's servers: it may answer short while more wait. A short answer is
    asked again, up to ceil(wanted / 10) + 1 calls in all."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    with Stubber(sqs) as stubber:
        for call in range(4):  # wanted 20: at most 3 calls, each answering one message
            stubber.add_response("receive_message", _messages(call, 1))
        taken = DecisionQueue(sqs, URL, batch_size=30).top_up(10)
        assert [r["messageId"] for r in taken] == ["m0", "m1", "m2"]
        assert len(stubber._queue) == 1  # the fourth answer was never asked for


def test_a_receive_that_fails_decides_the_batch_with_what_it_holds(logged):
    sqs = boto3.client("sqs", region_name="us-east-1")
    with Stubber(sqs) as stubber:
        stubber.add_response("receive_message", _messages(0, 10))
        stubber.add_client_error("receive_message", "AWS.SimpleQueueService.NonExistentQueue", "gone")
        taken = DecisionQueue(sqs, URL, batch_size=100).top_up(10)
    assert len(taken) == 10
    assert "NonExistentQueue" in logged.getvalue()


def test_done_records_are_deleted_ten_a_call_and_a_refused_one_is_logged_not_raised(queue, logged):
    sqs, url = queue(25)
    taken = DecisionQueue(sqs, url, batch_size=100).top_up(10)
    forged = {"messageId": "forged", "receiptHandle": "not-a-receipt-handle", "body": "{}"}
    calls = []
    sqs.meta.events.register("before-call.sqs.DeleteMessageBatch", lambda **kw: calls.append(kw))
    DecisionQueue(sqs, url, batch_size=100).delete([*taken[:20], forged])
    assert len(calls) == 3
    assert counts(sqs, url) == (0, 5)  # the five not done stay in flight: they come back
    assert "forged" in logged.getvalue()


def test_a_delete_call_that_fails_is_logged_not_raised(logged):
    sqs = boto3.client("sqs", region_name="us-east-1")
    with Stubber(sqs) as stubber:
        stubber.add_client_error("delete_message_batch", "ServiceUnavailable", "try later")
        DecisionQueue(sqs, URL, batch_size=100).delete([{"messageId": "m0", "receiptHandle": "r0"}])
    assert "m0: An error occurred (ServiceUnavailable)" in logged.getvalue()
