"""net.publisher: packets out to a subject, in order, with bounded memory.

    stage thread: Outgoing ──Handoff (bounded)──> loop: pump ──> NATS (core or JetStream)

Live (core NATS): nothing waits for a receiver. When the network or server is slower than
the stage, the hand-off is full and the oldest packet waiting in it is dropped (counted,
reported). Durable (JetStream): each message is stored and acknowledged; at most WINDOW
acknowledgements are awaited at once, and the hand-off blocks the stage when full, so the
stage runs at the stream's pace. A stream at its size limit (discard new) refuses messages:
the pump says so once and retries until there is room.

A packet larger than what the server takes in one message (its max_payload, 1 MB by
default) goes as several chunk messages, put back together by the receiver.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vflow_cli.console import log
from vflow_cli.errors import StageError
from vflow_cli.net import messages
from vflow_cli.net.loop import Handoff
from vflow_cli.net.session import Session

WINDOW = 32  # JetStream acknowledgements awaited at once
LIVE_HIGH = 4 << 20  # live: unsent bytes in the client above this make the pump wait
FULL_RETRY = 0.25  # seconds between tries while a stored stream is full


@dataclass
class Outgoing:
    """One packet (or control message) to publish. seq None: the next of this stream."""

    body: bytes | None
    headers: dict[str, str] = field(default_factory=dict)
    seq: int | None = None
    part: int = 0
    stream: str | None = None  # None: the publisher's own stream id
    after: Callable[[], Awaitable[None]] | None = None  # once all before it are stored


class Publisher:
    def __init__(
        self,
        session: Session,
        subject: str,
        *,
        durable: bool,
        stream: str,
        size: int,
        leaky: bool,
    ) -> None:
        self.session = session
        self.subject = subject
        self.durable = durable
        self.stream = stream
        self.sent = 0  # packets numbered by this publisher (seq None items)
        self.packets = 0  # data messages' packets published
        self.messages = 0
        self.bytes = 0
        self.lost = 0  # live packets the client could not buffer while reconnecting
        self.full_since: float | None = None
        self.full_waits = 0
        self.limit = max(1024, session.max_payload - messages.HEADER_ROOM)
        self.queue: Handoff[Outgoing] = Handoff(session.bridge, size, leaky=leaky)
        self._task = session.start(self._pump())
        self._started = time.monotonic()

    # -- stage thread ------------------------------------------------------------------------

    def put(self, item: Outgoing) -> None:
        self.queue.put(item)

    @property
    def dropped(self) -> int:
        return self.queue.dropped + self.lost

    def close(self, timeout: float | None = None) -> None:
        """Publish everything handed over, wait for the acknowledgements; raise what failed."""
        self.queue.close()

        async def wait() -> None:
            await asyncio.shield(self._task)

        self.session.call(wait(), timeout)

    def rate(self) -> str:
        seconds = max(time.monotonic() - self._started, 1e-9)
        from vflow_cli.console import human_bytes

        rate = human_bytes(self.bytes / seconds)
        return f"{human_bytes(self.bytes)} in {self.messages} messages ({rate}/s)"

    # -- loop thread -------------------------------------------------------------------------

    async def _pump(self) -> None:
        pending: list[tuple[asyncio.Future[Any], bytes | memoryview, dict[str, str]]] = []
        try:
            while (item := await self.queue.get()) is not None:
                for chunk, headers in self._messages(item):
                    if not self.durable:
                        if not await self._send_live(chunk, headers):
                            break  # reconnecting: this packet is lost, counted
                    else:
                        pending.append((await self._store_async(chunk, headers), chunk, headers))
                        if len(pending) >= WINDOW:
                            await self._settle(pending)
                    self.messages += 1
                    self.bytes += len(chunk)
                if item.body is not None:
                    self.packets += 1
                if item.after is not None:
                    await self._settle(pending)
                    await item.after()
            await self._settle(pending)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.queue.fail(_as_stage_error(exc, self.subject))
            raise self.queue.failed from None  # type: ignore[misc]

    def _messages(self, item: Outgoing):
        if item.body is None and item.after is not None and not item.headers:
            return  # a barrier: nothing to publish
        stream = item.stream or self.stream
        if item.seq is None and item.body is not None:
            item.seq = self.sent
            self.sent += 1
        headers = {messages.STREAM: stream, **item.headers}
        if item.seq is not None:
            headers[messages.SEQ] = str(item.seq)
            headers[messages.PART] = str(item.part)
        if item.body is None:
            kind = headers.get(messages.KIND, "none")
            if item.seq is not None:
                headers[messages.MSG_ID] = f"{stream}.{item.seq}.{item.part}.{kind}"
            else:
                headers[messages.MSG_ID] = f"{stream}.{kind}"
            yield b"", self.session.signed(self.subject, headers)
            return
        chunks = messages.split(item.body, self.limit)
        for index, chunk in enumerate(chunks):
            each = dict(headers)
            if len(chunks) > 1:
                each[messages.CHUNK] = f"{index}/{len(chunks)}"
                each[messages.SIZE] = str(len(item.body))
            each[messages.MSG_ID] = messages.msg_id(
                stream, item.seq or 0, item.part, index if len(chunks) > 1 else None
            )
            yield chunk, self.session.signed(self.subject, each, chunk)

    async def _send_live(self, chunk: Any, headers: dict[str, str]) -> bool:
        from nats import errors

        client = self.session.client
        try:
            await client.publish(self.subject, bytes(chunk), headers=headers)
        except errors.OutboundBufferLimitError:
            self.lost += 1
            return False
        # the socket is slower than the stage: wait here, and the hand-off drops the oldest
        while client.pending_data_size > LIVE_HIGH and client.is_connected:
            await asyncio.sleep(0.002)
        return True

    async def _store_async(self, chunk: Any, headers: dict[str, str]) -> asyncio.Future[Any]:
        # js.publish in tasks, not js.publish_async: nats-py 2.16 never resolves an async
        # publish that the server refuses (its reply handler raises instead), so a full
        # stream would hang the sender. Tasks start in order, so messages are stored in order.
        return asyncio.ensure_future(
            self.session.js.publish(self.subject, bytes(chunk), headers=headers)
        )

    async def _settle(self, pending: list[tuple[asyncio.Future[Any], Any, dict[str, str]]]) -> None:
        """Wait for the acknowledgements; a message refused because the stream is full is
        stored again, after a pause, until it fits (back-pressure)."""
        from nats.js import errors

        while pending:
            future, chunk, headers = pending.pop(0)
            try:
                await future
                continue
            except errors.APIError as exc:
                if not _full(exc):
                    raise
            # the stream is full: keep the order, everything after this waits too
            rest = pending[:]
            pending.clear()
            await self._store_when_room(chunk, headers)
            for _, later_chunk, later_headers in rest:
                await self._store_when_room(later_chunk, later_headers)

    async def _store_when_room(self, chunk: Any, headers: dict[str, str]) -> None:
        from nats.js import errors

        while True:
            try:
                await self.session.js.publish(self.subject, bytes(chunk), headers=headers)
                if self.full_since is not None:
                    log.warning(
                        "the stream for %s has room again after %.1f s",
                        self.subject,
                        time.monotonic() - self.full_since,
                    )
                    self.full_since = None
                return
            except errors.APIError as exc:
                if not _full(exc):
                    raise
            if self.full_since is None:
                self.full_since = time.monotonic()
                self.full_waits += 1
                log.warning(
                    "the stream for %s is full (its --max-bytes or --max-msgs); waiting for "
                    "room: old messages leave after --max-age",
                    self.subject,
                )
            await asyncio.sleep(FULL_RETRY)


def _full(exc: Any) -> bool:
    text = f"{getattr(exc, 'description', '')} {exc}".lower()
    return ("maximum" in text and "exceeded" in text) or "resource limits" in text


def _as_stage_error(exc: BaseException, subject: str) -> BaseException:
    from nats import errors

    if isinstance(exc, StageError):
        return exc
    if isinstance(exc, errors.MaxPayloadError):
        return StageError(f"{subject}: a message exceeds the server's max_payload")
    if isinstance(exc, (errors.ConnectionClosedError, errors.OutboundBufferLimitError)):
        return StageError(f"{subject}: the connection to the NATS server is lost")
    if isinstance(exc, (errors.Error, asyncio.TimeoutError)):
        text = str(exc) or type(exc).__name__
        return StageError(f"{subject}: publishing failed: {text.removeprefix('nats: ')}")
    return exc
