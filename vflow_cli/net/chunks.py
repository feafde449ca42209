"""net.chunks: packets larger than a message, put back together within a memory budget.

    chunk j/n of (stream, seq, part) ──> Assembler: checked, copied into the packet's buffer
                                          └─> the whole packet, once its n chunks are in
    durable: Chunks holds each chunk's message (without its bytes) until the packet is
    whole (acknowledged with it) or given up (terminated: never delivered again).

Nothing is allocated on a header's word alone: a packet larger than the budget is refused
before its buffer exists, and a chunk that does not fit the size its header claims is
refused before its packet's buffer is made.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vflow_cli.framing import StreamError, max_packet_size
from vflow_cli.framing.wire import too_large
from vflow_cli.net import messages
from vflow_cli.net.messages import settle

MAX_PARTIAL = 256  # unfinished chunked packets held at once, at most
Key = tuple[str, int, int]  # (stream, seq, part)


@dataclass
class _Partial:
    buffer: bytearray
    have: set[int]
    count: int
    chunk: int  # the size of every chunk but the last
    born: float


class Assembler:
    """Puts chunked packets back together, whatever order the chunks come in.

    Every size comes from the network, so it is checked before anything is allocated: the
    whole packet against VFLOW_MAX_PACKET and the budget, the chunk against the size its
    header claims; all unfinished packets together stay within `budget` bytes and
    MAX_PARTIAL packets (the oldest is given up first: its key goes to `given_up`, so that
    its messages can be answered; `abandoned` counts)."""

    def __init__(self, budget: int) -> None:
        self.max_packet = max_packet_size()
        self.budget = budget
        self._partial: dict[Key, _Partial] = {}
        self.held = 0
        self.abandoned = 0
        self.given_up: list[Key] = []

    def add(
        self, key: Key, chunk: str, size_text: str | None, data: bytes, now: float
    ) -> bytearray | None:
        """The whole packet once its last chunk arrives, else None."""
        index, count = messages.parse_chunk(chunk)
        try:
            size = int(size_text or "")
        except ValueError:
            raise StreamError(f"a chunked message without a valid {messages.SIZE} header") from None
        if size > self.max_packet:
            raise too_large(f"a packet of {size} bytes", self.max_packet, "VFLOW_MAX_PACKET")
        if size > self.budget:
            raise StreamError(
                f"a chunked packet of {size} bytes is more than the {self.budget >> 20} MiB "
                "held for unfinished packets"
            )
        step = math.ceil(size / count) if count else 0
        if size <= 0 or count > size or count != math.ceil(size / step):
            raise StreamError(f"chunk header {chunk!r} does not fit a {size}-byte packet")
        start = index * step
        expect = min(step, size - start)
        if len(data) != expect:
            raise StreamError(
                f"chunk {chunk} of packet {key[1]} has {len(data)} bytes, not {expect}"
            )
        partial = self._partial.get(key)
        if partial is None:
            while self._partial and (
                self.held + size > self.budget or len(self._partial) >= MAX_PARTIAL
            ):
                self._give_up(next(iter(self._partial)))
            partial = _Partial(bytearray(size), set(), count, step, now)  # checked: fits
            self._partial[key] = partial
            self.held += size
        elif partial.count != count or len(partial.buffer) != size:
            raise StreamError(f"the chunks of packet {key[1]} disagree about its size")
        partial.buffer[start : start + expect] = data
        partial.have.add(index)
        if len(partial.have) < partial.count:
            return None
        del self._partial[key]
        self.held -= size
        return partial.buffer

    def _give_up(self, key: Key) -> None:
        partial = self._partial.pop(key)
        self.held -= len(partial.buffer)
        self.abandoned += 1
        self.given_up.append(key)

    def forget(self, which: Callable[[Key], bool]) -> None:
        """Give up the unfinished packets whose key `which` names (their number was skipped)."""
        for key in [k for k in self._partial if which(k)]:
            self._give_up(key)

    def expire(self, now: float, age: float) -> None:
        for key in [k for k, p in self._partial.items() if now - p.born > age]:
            self._give_up(key)


class Chunks:
    """A durable receiver's chunk messages (loop thread only)."""

    def __init__(self, budget: int) -> None:
        self.assembler = Assembler(budget)
        self._msgs: dict[Key, list[Any]] = {}

    async def note(self, msg: Any, unit: Any) -> None:
        """msg was a chunk (unit: its whole packet, or None while incomplete)."""
        headers = msg.headers or {}
        if messages.CHUNK in headers and msg.reply:  # acknowledged with its packet
            msg.data = b""  # the assembler has its copy: what we keep is the answer's address
            key = (
                headers[messages.STREAM],
                int(headers[messages.SEQ]),
                int(headers.get(messages.PART, 0)),
            )
            if unit is None:
                self._msgs.setdefault(key, []).append(msg)
            else:
                unit.msgs = [*self._msgs.pop(key, []), *unit.msgs]
        await self.settle_given_up()

    async def settle_given_up(self) -> None:
        """The chunks of packets the assembler gave up on: terminated (never redelivered)
        and forgotten, so that neither memory nor the server's max_ack_pending fills."""
        while self.assembler.given_up:
            for msg in self._msgs.pop(self.assembler.given_up.pop(), []):
                await settle(msg, "term")

    async def forget(self, which: Callable[[Key], bool]) -> None:
        """Give up the unfinished packets `which` names (their number was skipped)."""
        self.assembler.forget(which)
        await self.settle_given_up()

    def held(self) -> int:
        """Messages held unanswered."""
        return sum(len(msgs) for msgs in list(self._msgs.values()))

    async def give_back(self, age: float, now: float) -> None:
        """Closing: chunks older than `age` end; the others go back for the next receiver."""
        self.assembler.expire(now, age)
        await self.settle_given_up()
        for msgs in self._msgs.values():
            for msg in msgs:
                await settle(msg, "nak")
        self._msgs.clear()
