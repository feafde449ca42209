"""net.session: a connection in its loop thread, for one stage: open, heartbeats, close.

Session(address, "send")      connects (starting the local server if the URL has no host)
session.call(coro)            runs a coroutine in the loop and waits for it
session.beat(subject, ...)    a heartbeat on _VFLOW.beat.SUBJECT every second
session.close()               flushes what is pending, closes, stops the loop thread
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from typing import Any

from vflow_cli.errors import StageError
from vflow_cli.net import connection, messages
from vflow_cli.net.loop import Bridge
from vflow_cli.net.signing import Keys
from vflow_cli.net.url import Address


class Session:
    def __init__(self, address: Address, role: str) -> None:
        self.address = address
        servers, token = connection.servers_and_token(address)
        self.bridge = Bridge()
        self.state = connection.State()
        try:
            self.client = self.call(
                connection.connect(address, servers, token, role, self.state),
                timeout=connection.CONNECT_TIMEOUT * (len(servers) + 1),
            )
        except TimeoutError:
            self.bridge.stop()
            raise StageError(f"cannot reach {address.shown()}: no answer") from None
        except BaseException:
            self.bridge.stop()
            raise
        self.js = connection.jetstream(self.client, timeout=10)  # fails over
        self.sender = f"{socket.gethostname()}:{os.getpid()}"
        self._tasks: list[asyncio.Task[Any]] = []
        self.closed = False
        self.keys: Keys | None = None  # signs what this session publishes (send --key)

    def signed(self, subject: str, headers: dict[str, str], body: Any = b"") -> dict[str, str]:
        """headers, signed when we have a key."""
        if self.keys is not None:
            self.keys.sign(subject, headers, body)
        return headers

    def call(self, coro: Any, timeout: float | None = None) -> Any:
        return self.bridge.call(coro, timeout)

    @property
    def max_payload(self) -> int:
        return int(self.client.max_payload)

    def start(self, coro: Any) -> asyncio.Task[Any]:
        """Run a coroutine in the loop as a task that close() cancels (from either thread)."""

        async def create() -> asyncio.Task[Any]:
            task = asyncio.ensure_future(coro)
            self._tasks.append(task)
            return task

        if self.bridge.in_loop():
            task = asyncio.ensure_future(coro)
            self._tasks.append(task)
            return task
        return self.call(create())

    def beat(self, subject: str, streams: Callable[[], list[tuple[str, int]]]) -> None:
        """Every second, for each (stream id, packets so far) that streams() names: a
        heartbeat on _VFLOW.beat.SUBJECT, which tells receivers that the stream is alive."""
        target = messages.beat_subject(subject)

        async def beats() -> None:
            while True:
                for stream, sent in streams():
                    headers = {
                        messages.STREAM: stream,
                        messages.PACKETS: str(sent),
                        messages.SENDER: self.sender,
                    }
                    self.signed(target, headers)
                    with contextlib.suppress(Exception):  # reconnecting: the next one will do
                        await self.client.publish(target, b"", headers=headers)
                await asyncio.sleep(messages.BEAT_EVERY)

        self.start(beats())

    def close(self) -> None:
        """Send what is pending and close; safe to call twice and after a failure."""
        if self.closed:
            return
        self.closed = True
        self.state.closing = True

        async def finish() -> None:
            for task in self._tasks:
                task.cancel()
            # a server that is away gets no flush, and a close that would wait for a
            # reconnection (a TLS handshake nobody answers) is cut short: a stage asked to
            # stop while its server is lost stops at once
            connected = self.client.is_connected
            if connected:
                with contextlib.suppress(Exception):
                    await self.client.flush(timeout=5)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.close(), 5 if connected else 1)

        with contextlib.suppress(BaseException):
            self.call(finish(), timeout=15)
        self.bridge.stop()
