"""A fake NATS server for attack tests: it listens on loopback, greets each connection with
the INFO line it is given (plain text, as a man in the middle would), and records every
byte it receives."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any


class FakeServer:
    def __init__(self, info: dict[str, Any] | None = None, port: int = 0) -> None:
        self.info = info
        self.received = bytearray()
        self.connections = 0
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port just freed
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            try:
                if self.info is not None:
                    conn.sendall(b"INFO " + json.dumps(self.info).encode() + b"\r\n")
                while chunk := conn.recv(65536):
                    with self._lock:
                        self.received += chunk
            except OSError:
                pass

    def seen(self) -> bytes:
        with self._lock:
            return bytes(self.received)

    def close(self) -> None:
        self._sock.close()


def nats_info(**extra: Any) -> dict[str, Any]:
    """An INFO as nats-server 2.10 sends it, without TLS unless `extra` says otherwise."""
    return {
        "server_id": "NFAKE",
        "server_name": "fake",
        "version": "2.10.0",
        "proto": 1,
        "host": "127.0.0.1",
        "port": 4222,
        "headers": True,
        "auth_required": True,
        "max_payload": 1048576,
        "jetstream": True,
        **extra,
    }
