"""Loopback ports a test holds for itself, instead of "free" ports that may be taken.

Binding port 0, closing the socket and using the number later is a race: in between,
any bind(0) or outgoing connection on the machine may get that port.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["reserved_port"]


@contextmanager
def reserved_port() -> Iterator[int]:
    """A loopback port that nothing listens on and nothing else gets until the block ends.

    The socket is bound with SO_REUSEADDR and never listens: connecting to the port is
    refused (a server that is down), the kernel gives the port to no other bind(0) or
    outgoing connection, and a test's own server (aiohttp's test servers bind with
    SO_REUSEADDR too) can still listen on it, stop, and listen on it again.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port
