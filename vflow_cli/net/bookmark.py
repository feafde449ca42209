"""net.bookmark: where a durable receiver is in its stream, kept across restarts.

The KV bucket vflow-recv holds, under STREAM.NAME (the JetStream stream and the durable
consumer's name), {"stream": id, "next": n, "ended": bool}: the vflow stream followed and
the next number to hand out. Messages are acknowledged only after the bookmark that covers
them is stored, so a receiver stopped and started again hands out each packet once, in
order (killed with SIGKILL, it may hand out again the packets of its last EVERY seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from vflow_cli.net import connection

EVERY = 0.2  # seconds between bookmark writes


class Bookmark:
    def __init__(self, session: Any, stream: str, name: str) -> None:
        self.session = session
        self._kv = session.call(connection.bookmarks(session.js))
        self._key = f"{stream}.{name}"
        self.mark: dict[str, Any] | None = None  # as stored: where the last run stopped
        with contextlib.suppress(Exception):
            entry = session.call(self._kv.get(self._key))
            self.mark = json.loads(entry.value)
        self._acks: list[Any] = []
        self._due = 0.0

    def move(self, stream: str | None, next_seq: int) -> None:
        """Everything before next_seq of stream is handed out (stored at the next save)."""
        self.mark = {"stream": stream, "next": next_seq, "ended": False}

    def ack_later(self, msgs: list[Any]) -> None:
        """Acknowledge msgs once the bookmark past them is stored."""
        self._acks.extend(msgs)

    @property
    def waiting(self) -> int:
        """Messages waiting for the next save to be acknowledged."""
        return len(self._acks)

    def due(self) -> bool:
        return time.monotonic() >= self._due

    def save(self, *, final: bool = False, ended: bool = False) -> None:
        """Store how far we delivered, then acknowledge what that covers (final: wait)."""
        self._due = time.monotonic() + EVERY
        acks, self._acks = self._acks, []
        mark = dict(self.mark) if self.mark else None
        if mark is not None and ended:
            mark["ended"] = True
        if not acks and not final:
            return

        async def save() -> None:
            if mark is not None:
                await self._kv.put(self._key, json.dumps(mark).encode())
            for msg in acks:
                with contextlib.suppress(Exception):
                    await msg.ack()

        if final:
            self.session.call(save(), timeout=10)
        else:
            self.session.bridge.soon(lambda: asyncio.ensure_future(save()))
