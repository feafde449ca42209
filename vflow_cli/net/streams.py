"""net.streams: what a worker knows of the streams it serves: alive, ended, how far.

    IN's heartbeats ──> on_beat: alive (known streams only), ended (end/cut heartbeats)
    IN's messages   ──> allows: plausible numbers (Horizon), else refused (counted)
    every 0.5 s     ──> relay: OUT's heartbeats, for the streams we had a message of
    stage thread    ──> verdict: go on, all ended (""), or an error (silent, cut)

Everything here comes from the network: a stream id only heard of in a heartbeat is kept
until it falls silent, at most KEEP streams are tracked, and nothing is relayed for a
stream we never had a message of (one forged heartbeat must not make every worker talk).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from vflow_cli.console import log
from vflow_cli.net import messages

KEEP = 256  # streams a worker keeps track of at once


class Streams:
    def __init__(self, idle: float, keep: bool) -> None:
        self.idle = idle
        self.keep = keep
        self.served: dict[str, float] = {}  # stream id -> last time we heard of it
        self.ended: dict[str, str | None] = {}  # stream id -> None (end) or the cut reason
        self.horizon = messages.Horizon(KEEP)
        self.refused = 0  # messages claiming numbers far beyond their stream (forgeries)

    # -- loop thread -------------------------------------------------------------------------

    async def on_beat(self, msg: Any) -> None:
        headers = msg.headers or {}
        stream = headers.get(messages.STREAM)
        if not stream:
            return
        if stream not in self.served and len(self.served) >= KEEP:
            return  # a flood of stream ids (forged): the ones we know are enough
        self.served[stream] = time.monotonic()
        kind = headers.get(messages.KIND)
        if kind in (messages.END, messages.CUT) and stream not in self.ended:
            packets = headers.get(messages.PACKETS, "0")
            shown = self.horizon.shown.get(stream, 0)
            if not packets.isdigit() or int(packets) > shown + messages.FAR:
                self._refused(f"an end after {messages.printable(packets, 30)} packets", shown)
                return
            reason = messages.printable(headers.get(messages.REASON, ""))
            self.ended[stream] = None if kind == messages.END else reason

    def allows(self, unit: Any) -> bool:
        """A unit from IN: plausible (then its stream is alive), or refused."""
        if not self.horizon.allows(unit):
            self._refused(
                f"an end after {unit.packets} packets"
                if unit.kind in (messages.END, messages.CUT)
                else f"packet {unit.seq}",
                self.horizon.shown.get(unit.stream, 0),
            )
            return False
        self.served[unit.stream] = time.monotonic()
        return True

    def _refused(self, claim: str, shown: int) -> None:
        self.refused += 1
        if self.refused == 1:
            log.warning(
                "refused %s: far beyond the %d packets the stream has shown (a forged "
                "message, or a broken sender; counted)",
                claim,
                shown,
            )

    async def relay(
        self, publish: Callable[[dict[str, str]], Any], busy: Callable[[], Any], sender: str
    ) -> None:
        """Relay the sender's heartbeats to OUT's listeners, and say what we are busy with."""
        while True:
            now = time.monotonic()
            # only streams we had a message of: one forged heartbeat is not relayed
            alive = {
                s
                for s, t in list(self.served.items())
                if now - t < max(self.idle, 3.0) and s in self.horizon.shown
            }
            working = busy()
            if working is not None:
                alive.add(working[0])
            for stream in alive:
                headers = {messages.STREAM: stream, messages.SENDER: sender}
                if working is not None and working[0] == stream:
                    headers[messages.BUSY] = str(working[1])
                with contextlib.suppress(Exception):
                    await publish(headers)
            await asyncio.sleep(messages.BEAT_EVERY / 2)

    # -- stage thread ------------------------------------------------------------------------

    def end(self, stream: str, reason: str | None) -> None:
        """The stream's end (reason None) or cut came to us."""
        self.ended.setdefault(stream, reason)
        self.served[stream] = time.monotonic()

    def verdict(self, subject: str, pending: Callable[[], bool]) -> str | None:
        """None: keep waiting; "": the streams we served ended, all done; else an error."""
        now = time.monotonic()
        self._prune(now)
        if self.keep or not self.served:
            return None
        if any(s not in self.ended for s in self.served):
            open_ = [s for s in list(self.served) if s not in self.ended]
            silent = [s for s in open_ if now - self.served.get(s, now) > self.idle]
            if not silent or self.idle <= 0 or len(silent) < len(open_) or pending():
                return None
            return (
                f"the sender of {subject} went silent for {self.idle:g} s without ending its stream"
            )
        if pending():
            return None
        cut = [r for r in self.ended.values() if r]
        return f"the stream was cut upstream: {cut[0]}" if cut else ""

    def _prune(self, now: float) -> None:
        """Forget streams only heard of (a heartbeat, never a message) once silent, and
        streams that ended long ago: the tables hold what is alive, not every id ever seen."""
        forget = max(self.idle, 3.0)
        for stream, last in list(self.served.items()):
            heard_only = now - last > forget and stream not in self.horizon.shown
            long_ended = stream in self.ended and now - last > max(forget, 60.0) and self.keep
            if heard_only or long_ended:
                self.served.pop(stream, None)
                self.ended.pop(stream, None)
                self.horizon.forget(stream)


class Probe:
    """`worker --mode auto` started before its input exists: listen to the subject and its
    heartbeats, and decide when the first of them comes (a durable sender makes its stream
    before it says anything, so the stream is there then, or never). What comes meanwhile
    is kept (the last KEPT messages, ends and cuts always) for a live input to take over;
    the data messages beyond that are counted as missed."""

    KEPT = 64

    def __init__(self, session: Any, subject: str, group: str) -> None:
        self.session, self.subject = session, subject
        self.data = 0  # data messages taken
        self.kept: collections.deque[Any] = collections.deque(maxlen=self.KEPT)
        self.controls: list[Any] = []  # ends, cuts and their heartbeats (a few)
        self._heard = threading.Event()

        async def on(msg: Any) -> None:
            headers = msg.headers or {}
            if headers.get(messages.KIND) in (messages.END, messages.CUT):
                if len(self.controls) < self.KEPT:
                    self.controls.append(msg)
            elif msg.subject == subject and messages.STREAM in headers:
                self.data += 1
                self.kept.append(msg)
            elif msg.subject != subject:
                self.kept.append(msg)  # a heartbeat
            self._heard.set()

        async def listen() -> list[Any]:
            client = session.client
            return [
                await client.subscribe(messages.beat_subject(subject), cb=on),
                await client.subscribe(subject, queue=group, cb=on),
            ]

        self._subs = session.call(listen())

    def wait(self) -> str | None:
        """The input's JetStream stream once the input shows up (None: it is live)."""
        from vflow_cli.net import connection

        log.info("waiting for a stream on %s (stored: durable; else live)", self.subject)
        while not self._heard.wait(0.25):
            pass
        stream = self.session.call(connection.find_stream(self.session.js, self.subject))
        log.info(
            "the input on %s is %s",
            self.subject,
            "stored: working on it as a durable work queue" if stream else "live (not stored)",
        )
        return stream

    def close(self) -> list[Any]:
        """Stop listening; the messages kept, in the order they came (ends last)."""

        async def stop() -> None:
            for sub in self._subs:  # drain: what the server sent before is taken, not lost
                with contextlib.suppress(Exception):
                    await sub.drain()

        self.session.call(stop(), timeout=30)
        kept = [*self.kept, *self.controls]
        self.data -= sum(m.subject == self.subject for m in self.kept)  # now: the missed
        return kept
