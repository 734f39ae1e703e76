"""moto's threaded server with the emulator installed, on a free loopback port.

The server runs in this process, so the emulator's patch of moto's EC2 handlers applies to it;
clients reach it with ``endpoint_url``. Nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

from gatekeeper_ops.emulator.activation import install, is_installed, uninstall
from gatekeeper_ops.emulator.settings import EmulatorSettings


@contextmanager
def emulated_moto_server(
    settings: EmulatorSettings | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[str]:
    """Start ``ThreadedMotoServer`` with the emulator; yield its endpoint URL; stop it on exit.

    ``port=0`` lets the OS pick a free port. The emulator is uninstalled on exit only if this
    call installed it.
    """
    was_installed = is_installed()
    install(settings)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    try:
        yield f"http://{bound_host}:{bound_port}"
    finally:
        server.stop()
        if not was_installed:
            uninstall()


def reset_moto_server(endpoint_url: str) -> None:
    """Drop every account's state on a running server (moto's ``/moto-api/reset``), emulator's included."""
    if not endpoint_url.startswith(("http://127.", "http://localhost")):
        # Never send a reset anywhere but a local moto server.
        raise ValueError(f"refusing to reset non-local endpoint {endpoint_url}")
    # S310: the scheme and host were checked above (http, loopback only).
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()
