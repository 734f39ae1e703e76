"""Switching the emulator on and off: patching moto's ``EC2Response`` class in this process.

One class serves both ways of running moto — ``mock_aws()`` in-process and ``ThreadedMotoServer``
(every request builds a fresh ``EC2Response``) — so patching it once covers both. ``install()``
adds the new actions and wraps three existing ones; ``uninstall()`` puts the class back exactly as
it was. Both are idempotent and thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from moto.ec2.responses import EC2Response

from gatekeeper_ops.emulator.responses import NEW_ACTIONS, WRAPPED_ACTIONS
from gatekeeper_ops.emulator.settings import EmulatorSettings, current_settings, replace_settings

_lock = threading.Lock()
# What EC2Response itself (not its bases) defined before install, per patched name; absent = nothing.
_saved: dict[str, object] = {}
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
        if _installed:
            return
        for name in (*NEW_ACTIONS, *WRAPPED_ACTIONS):
            if name in EC2Response.__dict__:
                _saved[name] = EC2Response.__dict__[name]
        for name, handler in NEW_ACTIONS.items():
            setattr(EC2Response, name, handler)
        for name, wrap in WRAPPED_ACTIONS.items():
            # getattr finds moto's implementation wherever it sits in EC2Response's bases.
            setattr(EC2Response, name, wrap(getattr(EC2Response, name)))
        _installed = True


def uninstall() -> None:
    """Restore moto's own ``EC2Response`` (no-op if not installed). Emulator state is left to moto's reset."""
    global _installed  # noqa: PLW0603 - see install()
    with _lock:
        if not _installed:
            return
        for name in (*NEW_ACTIONS, *WRAPPED_ACTIONS):
            if name in _saved:
                setattr(EC2Response, name, _saved.pop(name))
            else:
                delattr(EC2Response, name)
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
