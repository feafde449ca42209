"""web.connections: who gets one of a server's client slots, and for how long a request
head may take to arrive (slowloris).

    accept ──> Slots.admit: over max_clients connections, a 503 at once, nothing read;
               a connection starts *pending* (no request of it has passed the token yet).
               Pending ones may hold at most half the slots: one more evicts the oldest
               pending one (a slow head is what it waits for), so that a few connections
               that drip bytes never lock out a real client
           ──> HeadReader: the whole request head (request line and headers) within one
               deadline, `timeout` seconds, however the bytes are dripped: a socket timeout
               per read alone is reset by every byte
           ──> Slots.trust: a request passed the token; the connection is no longer pending
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import threading
import time
from typing import Any

MAX_HEAD = 32 << 10  # the request line and every header together


class Slots:
    """The client connections of one server: at most `limit`, at most half of them pending."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending_limit = max(1, limit // 2)
        self._lock = threading.Lock()
        self._clients: set[socket.socket] = set()
        self._pending: dict[socket.socket, float] = {}  # socket -> when it connected
        self.refused = 0  # connections over `limit`
        self.evicted = 0  # pending connections closed to make room

    def __len__(self) -> int:
        return len(self._clients)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def admit(self, sock: socket.socket) -> bool:
        """Take a new connection (False: the server is full; the caller refuses it)."""
        victim = None
        with self._lock:
            if len(self._clients) >= self.limit:
                self.refused += 1
                return False
            if len(self._pending) >= self.pending_limit:
                victim = min(self._pending, key=self._pending.__getitem__)
                del self._pending[victim]
                # its slot is free at once, not when its thread next runs and leaves
                self._clients.discard(victim)
                self.evicted += 1
            self._clients.add(sock)
            self._pending[sock] = time.monotonic()
        if victim is not None:  # its thread wakes from recv() with nothing and ends
            with contextlib.suppress(OSError):
                victim.shutdown(socket.SHUT_RDWR)
        return True

    def trust(self, sock: socket.socket) -> None:
        """A request of this connection passed the token: it holds a slot of its own."""
        with self._lock:
            self._pending.pop(sock, None)

    def leave(self, sock: socket.socket) -> None:
        with self._lock:
            self._clients.discard(sock)
            self._pending.pop(sock, None)

    def all(self) -> list[socket.socket]:
        with self._lock:
            return list(self._clients)


def refuse_busy(sock: socket.socket) -> None:
    """A 503 to a connection over the limit, sent without ever waiting on it."""
    body = b"503 too many clients; try again later\n"
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        sock.setblocking(False)  # never wait on a client in the accepting thread
        sock.send(head.encode() + body)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class _ClockedSocket(io.RawIOBase):
    """A socket's input whose every read waits at most until the head's deadline."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wait = self.timeout
        if self.deadline is not None:
            wait = min(wait, self.deadline - time.monotonic())
            if wait <= 0:
                raise TimeoutError("the request head took too long")
        self.sock.settimeout(wait)
        return self.sock.recv_into(buffer)


class HeadReader:
    """A connection's input for http.server: a request head of at most MAX_HEAD bytes,
    whole within `timeout` seconds of start(); then reads as the socket's timeout says."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self._raw = _ClockedSocket(sock, timeout)
        self._stream = io.BufferedReader(self._raw)
        self.left = MAX_HEAD

    def start(self) -> None:
        """A new request head begins: a new budget of bytes and time."""
        self.left = MAX_HEAD
        self._raw.deadline = time.monotonic() + self._raw.timeout

    def done(self) -> None:
        """The head has arrived: the socket's own timeout again (for what is sent)."""
        self._raw.deadline = None
        self._raw.sock.settimeout(self._raw.timeout)

    def readline(self, limit: int = -1) -> bytes:
        want = self.left + 1 if limit < 0 else min(limit, self.left + 1)
        line = self._stream.readline(want)
        self.left -= len(line)
        if self.left < 0:
            raise http.client.LineTooLong(f"request head over {MAX_HEAD} bytes")
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
