"""Speed only: a producer account is provisioned once per worker and kind, then copied.

Provisioning the stack on moto (about 100 API calls: endpoint services, tables, queues, rules,
roles; then the built-in templates) costs about 0.5-1 s, and nearly every integration test asks for
a fresh account. moto keeps every service's state in its backends (account → region → backend
object), and the PrivateLink emulator keeps its own on moto's EC2 backend (emulator/store.py), so
a deep copy of the backends taken right after provisioning is the whole account. A later test of
the same kind gets its own deep copy of that copy, a new session, a new LocalLambda (a new
execution environment, as Lambda would give) and the stack's description: the same state, not
the same objects.

A copy is only put into a world nothing has touched yet (moto resets its backends when a mock
starts); a second account in one test, or an account after other calls, is provisioned as before.
"""

from __future__ import annotations

import _thread
import copy
import copyreg
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.core.base_backend import BackendDict

from gatekeeper_ops.emulator.provisioning import ProducerService
from gatekeeper_ops.local_lambda import LocalLambda
from gatekeeper_ops.sandbox.account import ProducerAccount
from gatekeeper_ops.stack import EmulatedStack

# moto's models hold locks and conditions (SQS queues); a copy is a new, free one with no waiters.
_FRESH: dict[type, Callable[[Any], tuple[Any, tuple[()]]]] = {
    type(threading.RLock()): lambda _lock: (threading.RLock, ()),
    _thread.LockType: lambda _lock: (threading.Lock, ()),
    threading.Condition: lambda _condition: (threading.Condition, ()),
}

Backends = list[tuple[BackendDict[Any], dict[str, dict[str, Any]]]]


@dataclass(frozen=True)
class Snapshot:
    backends: Backends
    stack: EmulatedStack
    services: tuple[ProducerService, ...]


def pristine() -> bool:
    """Nothing in moto yet: no service has an account's backend since the mock started."""
    return not any(len(backends) for backends in BackendDict._instances)


def _capture() -> Backends:
    return [
        (backends, {account: dict(regions) for account, regions in backends.items()})
        for backends in BackendDict._instances
    ]


@contextmanager
def _fresh_locks() -> Iterator[None]:
    """Locks copy as new ones only while a snapshot is copied; elsewhere in the test process copying
    or pickling a lock still fails, as it does in production."""
    saved = {kind: copyreg.dispatch_table.get(kind) for kind in _FRESH}
    copyreg.dispatch_table.update(_FRESH)
    try:
        yield
    finally:
        for kind, reducer in saved.items():
            if reducer is None:
                del copyreg.dispatch_table[kind]
            else:
                copyreg.dispatch_table[kind] = reducer


def _copy(backends: Backends) -> Backends:
    # The BackendDicts are moto's registry, not state: shared, never copied.
    memo: dict[int, Any] = {id(registry): registry for registry, _ in backends}
    with _fresh_locks():
        states = copy.deepcopy([state for _, state in backends], memo)
    return [(registry, state) for (registry, _), state in zip(backends, states, strict=True)]


def _install(backends: Backends) -> None:
    for registry, accounts in _copy(backends):
        for account_id, regions in accounts.items():
            specific = registry[account_id]  # registers the BackendDict with moto, as a first call would
            for region, backend in regions.items():
                dict.__setitem__(specific, region, backend)


class AccountSnapshots:
    """Provisioned accounts by kind, for one worker process."""

    def __init__(self) -> None:
        self._taken: dict[Hashable, Snapshot] = {}

    def account(
        self, kind: Hashable, provision: Callable[[boto3.Session], ProducerAccount]
    ) -> ProducerAccount:
        """An account of this `kind` (everything `provision` depends on) in the current mock."""
        session = boto3.Session(region_name="us-east-1")
        if not pristine():
            return provision(session)
        taken = self._taken.get(kind)
        if taken is None:
            account = provision(session)
            self._taken[kind] = Snapshot(_copy(_capture()), copy.deepcopy(account.stack), account.services)
            return account
        _install(taken.backends)
        stack = copy.deepcopy(taken.stack)
        lambdas = LocalLambda(stack, session)
        return ProducerAccount(session, taken.services[0], stack, lambdas, services=taken.services)
