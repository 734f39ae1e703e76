"""A transaction DynamoDB cancels only because another one met it on an item (TransactionConflict:
nothing was written) is tried again after a short pause; a failed condition is answered at once."""

import pytest
from botocore.exceptions import ClientError

from gatekeeper.dal import codec


def cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


class Client:
    def __init__(self, *answers: ClientError | None) -> None:
        self.answers = list(answers)
        self.calls = 0

    def transact_write_items(self, TransactItems):
        self.calls += 1
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer
        return {}


@pytest.fixture
def pauses(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(codec.time, "sleep", slept.append)
    return slept


def test_a_conflict_is_tried_again_until_it_commits(pauses):
    client = Client(cancelled("None", "TransactionConflict"), cancelled("TransactionConflict", "None"), None)
    assert codec.transact(client, []) is None
    assert client.calls == 3
    assert len(pauses) == 2
    assert all(0 < p < 0.2 for p in pauses)


def test_conflicts_that_outlast_the_pauses_are_answered_as_the_cancellation(pauses):
    client = Client(*[cancelled("None", "TransactionConflict")] * (len(codec.CONFLICT_PAUSES) + 1))
    error = codec.transact(client, [])
    assert codec.cancellation_codes(error) == ["None", "TransactionConflict"]
    assert client.calls == len(codec.CONFLICT_PAUSES) + 1


def test_a_failed_condition_is_answered_at_once_even_beside_a_conflict(pauses):
    client = Client(cancelled("ConditionalCheckFailed", "TransactionConflict"))
    error = codec.transact(client, [])
    assert codec.cancellation_codes(error) == ["ConditionalCheckFailed", "TransactionConflict"]
    assert client.calls == 1
    assert pauses == []


def test_an_error_that_is_no_cancellation_raises(pauses):
    throttled = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "TransactWriteItems"
    )
    with pytest.raises(ClientError):
        codec.transact(Client(throttled), [])
