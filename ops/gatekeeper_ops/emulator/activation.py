"""Switching the emulator on and off: patching moto's ``EC2Response`` class in this process.

One class serves both ways of running moto — ``mock_aws()`` in-process and ``ThreadedMotoServer``
(every request builds a fresh ``EC2Response``) — so patching it once covers both. ``install()``
adds the new actions and wraps some existing ones (and SNS ``Publish`` on ``SNSResponse``, EventBridge
``PutEvents`` on ``EventsHandler``: the bus's resource policy is enforced);
``uninstall()`` puts the classes back exactly as they were. Both are idempotent and thread-safe.

While installed, moto answers one request at a time, in-process and served alike: its conditional
writes are plain Python, so two callers' threads (the decider writes a batch at once) could
interleave inside one TransactWriteItems, which AWS applies atomically.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from moto.awslambda.responses import LambdaResponse
from moto.core.responses import BaseResponse
from moto.ec2.responses import EC2Response
from moto.events.responses import EventsHandler
from moto.sns.responses import SNSResponse

from gatekeeper_ops.emulator.responses import (
    EVENTS_WRAPPED_ACTIONS,
    NEW_ACTIONS,
    SNS_WRAPPED_ACTIONS,
    WRAPPED_ACTIONS,
)
from gatekeeper_ops.emulator.settings import EmulatorSettings, current_settings, replace_settings
from gatekeeper_ops.emulator.throttling import THROTTLED_ACTIONS, reset

_lock = threading.Lock()
# Held while moto answers a request. Reentrant: an answer may make a request of its own.
_answering = threading.RLock()


def _one_at_a_time(dispatch: Any) -> Any:
    def answer_alone(response: BaseResponse, *args: Any, **kwargs: Any) -> Any:
        if isinstance(response, LambdaResponse):
            # An Invoke the sandbox answers waits for a handler, whose own requests come from
            # another thread: they would wait for it in turn. Lambda keeps no state they share.
            return dispatch(response, *args, **kwargs)
        with _answering:
            return dispatch(response, *args, **kwargs)

    return answer_alone


# Where every service's answer starts, for `mock_aws()` in this process and ThreadedMotoServer alike.
_DISPATCH: dict[str, Any] = {"_dispatch": _one_at_a_time}


@contextmanager
def one_request_at_a_time() -> Iterator[None]:
    """moto answering one request at a time for the block, without the emulator (which does it for
    as long as it is installed): for plain ``mock_aws()`` tests whose code calls from threads."""
    with mock.patch.object(BaseResponse, "_dispatch", _one_at_a_time(BaseResponse._dispatch)):
        yield


# What each class itself (not its bases) defined before install, per patched name; absent = nothing.
_saved: dict[tuple[type, str], object] = {}
_PATCHES: tuple[tuple[type, dict[str, Any], bool], ...] = (
    (EC2Response, NEW_ACTIONS, False),
    (EC2Response, WRAPPED_ACTIONS, True),
    (SNSResponse, SNS_WRAPPED_ACTIONS, True),
    (EC2Response, THROTTLED_ACTIONS, True),  # every EC2 action, behind its token bucket
    (EventsHandler, EVENTS_WRAPPED_ACTIONS, True),
    (BaseResponse, _DISPATCH, True),
)
_installed = False


def install(settings: EmulatorSettings | None = None) -> None:
    """Extend moto with the PrivateLink connection lifecycle (no-op if already installed).

    ``settings`` (default ``EmulatorSettings()``) replace the current ones even when already
    installed. Call it before or after starting ``mock_aws()`` or a ``ThreadedMotoServer`` in this
    process; requests served after it returns see the emulator.
    """
    global _installed  # noqa: PLW0603 - one process-wide switch, guarded by _lock
    with _lock:
        replace_settings(settings or EmulatorSettings())
        reset()  # EC2's token buckets start afresh with the settings
        if _installed:
            return
        for cls, handlers, wraps in _PATCHES:
            for name, handler in handlers.items():
                if name in cls.__dict__:
                    _saved[(cls, name)] = cls.__dict__[name]
                # getattr finds moto's implementation wherever it sits in the class's bases.
                setattr(cls, name, handler(getattr(cls, name)) if wraps else handler)
        _installed = True


def uninstall() -> None:
    """Restore moto's own ``EC2Response`` (no-op if not installed). Emulator state is left to moto's reset."""
    global _installed  # noqa: PLW0603 - see install()
    with _lock:
        if not _installed:
            return
        for cls, handlers, _ in reversed(_PATCHES):
            for name in handlers:
                if (cls, name) in _saved:
                    setattr(cls, name, _saved.pop((cls, name)))
                else:
                    delattr(cls, name)
        _installed = False


def is_installed() -> bool:
    return _installed


@contextmanager
def privatelink_emulator(settings: EmulatorSettings | None = None) -> Iterator[EmulatorSettings]:
    """The emulator for the duration of a ``with`` block; yields the settings in force.

    Use it together with ``mock_aws()`` (in either order). On exit it uninstalls only if it was the
    one that installed, and restores the settings that were in force before.
    """
    active = settings or EmulatorSettings()
    with _lock:
        was_installed = _installed
    previous = current_settings()
    install(active)
    try:
        yield active
    finally:
        if not was_installed:
            uninstall()
        replace_settings(previous)
