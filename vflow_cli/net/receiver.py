"""net.receiver: what `vflow recv` does: one stream from a subject, in order, then its end.

    SUBJECT ──> loop: Subscription: live, or a pull consumer (durable, --durable NAME)
                  │ chunks put back together (Assembler), headers read (Unit)
                  v
                Inbox (bounded: live drops the oldest, durable fetches only when it has room)
                  │
    stage thread: Reorder ─> decode (JPEG back to pixels) ─> yield ─> acknowledge

recv follows the first stream (one `vflow send` run) it hears on the subject, and ends:
  - after that stream's end message and its last packet: cleanly, with the trailer;
  - after its cut message (the sender's input was cut, or it was stopped): without the
    trailer, with the reason, exit status 1;
  - when the stream went silent (no packet and no heartbeat for --idle seconds: the sender
    or every worker died): likewise.

Durable (--durable NAME): a JetStream consumer NAME keeps the position, and a bookmark
(net.bookmark) the next sequence number to hand out: a receiver that is stopped and
started again hands out each packet once, in order, from where it stopped.

One class, Receiver, whose inbox, reorder buffer, bookmark and acknowledgements keep one
invariant together (a packet is acknowledged only once the bookmark past it is stored, and
handed out only once, in order); net.subscription brings its messages.
"""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from vflow_cli.console import log
from vflow_cli.errors import StageError
from vflow_cli.framing import Packet, StreamError
from vflow_cli.net import connection, messages
from vflow_cli.net.bookmark import Bookmark
from vflow_cli.net.chunks import Chunks
from vflow_cli.net.loop import Inbox
from vflow_cli.net.messages import NotVflow, Unit, settle, unit_of
from vflow_cli.net.reorder import Entry, Reorder
from vflow_cli.net.session import Session
from vflow_cli.net.signing import Keys
from vflow_cli.net.subscription import Pull, Subscription
from vflow_cli.net.url import Address
from vflow_cli.runner import calm, stop_if_asked

CHUNK_BUDGET = 256 << 20  # bytes of unfinished chunked packets held at once
CHUNK_AGE = 60.0  # an unfinished chunked packet older than this is given up
FETCH_BATCH = 32
MAX_ACK_PENDING = 4096  # messages a durable receiver holds unacknowledged at most
FETCH_WAIT = 0.5  # seconds one pull request waits for messages
LIVE_BUDGET = 64 << 20  # bytes a live receiver holds for its stage at most
REORDER_BUDGET = 128 << 20  # bytes of packets held for reordering at most
CLIENT_BUDGET = 128 << 20  # bytes the client holds for a live subscription at most
BUDGET = CHUNK_BUDGET + LIVE_BUDGET + REORDER_BUDGET + CLIENT_BUDGET  # the man page says it
KEEP_HEARD = 64  # streams whose heartbeats we remember
BUSY_FOR = 2.5  # seconds a worker's "busy with N" heartbeat keeps recv waiting for N
FETCH_BYTES = 16 << 20  # bytes asked for in one fetch, at most (estimated)


class Receiver:
    def __init__(
        self,
        address: Address,
        *,
        durable: str | None,
        reorder: float | None,
        window: int,
        idle: float,
        pixels: bool,
        start: str = "all",
        ack_wait: float = 30.0,
        keys: Keys | None = None,
    ) -> None:
        self.address = address
        self.subject = address.subject
        self.durable = durable
        self.idle = idle
        self.pixels = pixels
        wait = reorder if reorder is not None else (60.0 if durable else 1.0)
        # durable: a gap is a message on its way back (redelivered within ack_wait < wait),
        # so only the server's max_ack_pending bounds what is held, not --window
        self.reorder = Reorder(wait, MAX_ACK_PENDING if durable else window, budget=REORDER_BUDGET)
        # live: room for bursts (hundreds of small packets, or 64 MB), the oldest dropped
        # beyond; durable: fetched only when there is room
        self.inbox: Inbox[Unit] = (
            Inbox(32, leaky=False) if durable else Inbox(512, leaky=True, budget=LIVE_BUDGET)
        )
        self.chunks = Chunks(CHUNK_BUDGET)
        self.heard: dict[str, float] = {}  # stream id -> when we last heard of it
        self.following: str | None = None
        self.cut_reason: str | None = None
        self.foreign = 0  # messages without vflow headers
        self.bad = 0  # messages that broke the format
        self.others = 0  # messages of another stream on the same subject
        self.lost_live = 0  # live messages the client dropped (slow consumer)
        self.packets = 0
        self.bytes = 0
        self.bookmark: Bookmark | None = None  # durable: our place in the stream
        self.busy: dict[tuple[str, int], float] = {}  # (stream, seq) a worker works on: until
        self._lost: collections.deque[Unit] = collections.deque()  # dropped by the inbox
        # numbers the reorder buffer gave out that are not dealt with yet: stopped half-way
        # through them, their messages go back to the server (else they wait out ack_wait)
        self._ready: collections.deque[tuple[str, int, Entry | None, int]] = collections.deque()
        self._skipped: list[tuple[int, int]] = []  # runs (first, count) not yet reported
        self.horizon = messages.Horizon(keep=4)
        self._started = time.monotonic()
        self.session = Session(address, "recv")
        try:
            self.input = Subscription(
                self.session,
                self.subject,
                self.inbox,
                self._on_msg,
                on_beat=self._on_beat,
                pull=self._pull(start) if durable else None,
                pending_msgs=4096,
                pending_bytes=CLIENT_BUDGET,
                keys=keys,
            )
        except BaseException:
            self.session.close()
            raise

    def _pull(self, start: str) -> Pull:
        """The durable consumer, and where the bookmark of its position lives."""
        from nats.js import api

        assert self.durable is not None
        js = self.session.js
        # the subject is stored from now on (created if missing: a receiver may come first)
        stream = self.session.call(connection.ensure_stream(js, self.subject, connection.Limits()))
        self.bookmark = Bookmark(self.session, stream, self.durable)
        config = api.ConsumerConfig(
            durable_name=self.durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=max(2.0, self.reorder.wait / 2),  # unanswered: back before we give up
            max_ack_pending=MAX_ACK_PENDING,
            deliver_policy=api.DeliverPolicy.NEW if start == "new" else api.DeliverPolicy.ALL,
            filter_subject=self.subject,
        )
        return Pull(self.durable, stream, config, FETCH_BATCH, FETCH_BYTES, FETCH_WAIT)

    # -- loop thread -------------------------------------------------------------------------

    async def _on_beat(self, msg: Any) -> None:
        headers = msg.headers or {}
        stream = headers.get(messages.STREAM)
        if not stream or (self.following is not None and stream != self.following):
            return  # only the stream we follow matters: nothing else is kept
        now = time.monotonic()
        self.heard[stream] = now
        if len(self.heard) > KEEP_HEARD:  # not following yet: remember the latest few
            del self.heard[min(list(self.heard.items()), key=lambda kv: kv[1])[0]]
        busy = headers.get(messages.BUSY)
        if busy is not None and busy.isdigit() and len(self.busy) < MAX_ACK_PENDING:
            self.busy[(stream, int(busy))] = now + BUSY_FOR

    async def _on_msg(self, msg: Any) -> None:
        now = time.monotonic()
        try:
            unit = unit_of(msg, self.chunks.assembler, now)
        except NotVflow:
            self.foreign += 1
            await settle(msg)
            return
        except StreamError as exc:
            self.bad += 1
            if self.bad == 1:
                log.warning("dropped a message that breaks the vflow format: %s", exc)
            await settle(msg)
            return
        self.chunks.assembler.expire(now, CHUNK_AGE)
        await self.chunks.note(msg, unit)
        if unit is None:
            return
        if self.following is None or unit.stream == self.following:
            self.heard[unit.stream] = now
        for dropped in self.inbox.put(unit, len(unit.body or b"")):
            self.lost_live += 1
            self._lost.append(dropped)

    # -- stage thread ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Packet]:
        with calm():  # Ctrl-C never cuts the bookkeeping: it stops us at the top of the loop
            yield from self._run()

    def _run(self) -> Iterator[Packet]:
        reorder = self.reorder
        try:
            while True:
                stop_if_asked()
                now = time.monotonic()
                self._note_lost(now)
                self._note_busy(now)
                self._ready.extend(reorder.pop(now))
                while self._ready:
                    what, seq, entry, count = self._ready.popleft()
                    if what == "deliver":
                        self._warn_skipped()
                        assert entry is not None
                        yield from self._deliver(seq, entry)
                    else:
                        self._drop(what, seq, entry, count)
                self._warn_skipped()
                if reorder.done():
                    if self.cut_reason is not None:
                        raise StageError(self.cut_reason)
                    if self.bookmark is not None:
                        self.bookmark.save(final=True, ended=True)
                    return
                self._check_alive(now)
                deadline = reorder.deadline()
                timeout = None if deadline is None else max(0.0, deadline - now)
                unit = self.inbox.get(timeout)
                if unit is not None:
                    self._take(unit, time.monotonic())
                if self.bookmark is not None and self.bookmark.due():
                    self.bookmark.save()
        finally:
            self._finish()

    def _deliver(self, seq: int, entry: Entry) -> Iterator[Packet]:
        units = [entry.parts[i] for i in sorted(entry.parts)]
        for unit in units:
            try:
                packet = messages.packet_of(unit.body, unit.wire, pixels=self.pixels)
            except StreamError as exc:
                self.bad += 1
                log.warning("packet %d: %s; skipped", seq, exc)
                continue
            self.packets += 1
            self.bytes += len(unit.body or b"")
            try:
                yield packet
            except GeneratorExit:
                # the runner stops us only after the packet was written: it was delivered
                self._delivered(seq, units, entry)
                raise
        self._delivered(seq, units, entry)

    def _delivered(self, seq: int, units: list[Unit], entry: Entry) -> None:
        if self.durable is None:
            return
        for unit in [*units, *entry.extra]:
            self._ack_later(unit.msgs)
            unit.msgs = []
        if self.bookmark is not None:
            self.bookmark.move(self.following, seq + 1)

    def _drop(self, what: str, seq: int, entry: Entry | None, count: int = 1) -> None:
        if what == "dead":
            tomb = entry.extra[0] if entry is not None and entry.extra else None
            log.warning(
                "packet %d failed in the workers%s and went to the dead letters%s",
                seq,
                f" ({tomb.reason})" if tomb is not None and tomb.reason else "",
                f" of {messages.printable(tomb.headers[messages.DEAD_SUBJECT], 200)} "
                "(vflow recv --dead shows them)"
                if tomb is not None and tomb.headers.get(messages.DEAD_SUBJECT)
                else "",
            )
        else:
            self._skipped.append((seq, count))
            stream = self.following
            # the unfinished chunked packets of these numbers will not be needed any more
            self.session.bridge.soon(
                lambda: self.session.start(
                    self.chunks.forget(lambda k: k[0] == stream and seq <= k[1] < seq + count)
                )
            )
        if entry is not None and self.durable is not None:
            for unit in [*entry.parts.values(), *entry.extra]:
                self._ack_later(unit.msgs)
        if self.bookmark is not None:
            self.bookmark.move(self.following, seq + count)

    def _note_lost(self, now: float) -> None:
        """Live packets dropped from a full inbox will never come: skip them at once."""
        while self._lost:
            unit = self._lost.popleft()
            if unit.stream == self.following and unit.seq is not None:
                self.reorder.lose(unit.seq, now)

    def _note_busy(self, now: float) -> None:
        """A worker says it is working on a packet: don't skip it while it does."""
        if not self.busy:
            return
        busy = {}
        for key, until in list(self.busy.items()):
            if until < now:
                self.busy.pop(key, None)
            elif key[0] == self.following:
                busy[key[1]] = until
        self.reorder.busy = busy

    def _warn_skipped(self) -> None:
        """One line for a run of skipped packets, not one each."""
        if not self._skipped:
            return
        first = self._skipped[0][0]
        last = self._skipped[-1][0] + self._skipped[-1][1] - 1
        which = f"packet {first}" if first == last else f"packets {first}-{last}"
        log.warning(
            "skipped %s (%d): lost on the way, or later than --reorder %g s",
            which,
            sum(count for _, count in self._skipped),
            self.reorder.wait,
        )
        self._skipped.clear()

    def _take(self, unit: Unit, now: float) -> None:
        if self.following is None and not self._adopt(unit):
            return
        if unit.stream != self.following:
            self.others += 1
            if self.others == 1:
                log.warning(
                    "another sender (stream %s) also publishes on %s; following %s only",
                    messages.printable(unit.stream, 40),
                    self.subject,
                    messages.printable(self.following or "", 40),
                )
            if self.durable is not None:
                self._nak(unit.msgs, delay=self.reorder.wait)
            return
        if not self.horizon.allows(unit):
            self._refuse(unit)
            return
        self.heard[unit.stream] = now
        reorder = self.reorder
        if unit.kind in (messages.END, messages.CUT):
            if unit.kind == messages.CUT:
                self.cut_reason = "the stream was cut: " + (
                    unit.reason or "the sender stopped early"
                )
            reorder.finish(unit.packets or 0, now)
            self._ack_later(unit.msgs)
            return
        assert unit.seq is not None
        if unit.kind == messages.DEAD:
            if reorder.kill(unit.seq, now):
                reorder.held[unit.seq].extra.insert(0, unit)  # acknowledged when passed
            else:
                self._ack_later(unit.msgs)
            return
        if not reorder.add(
            unit.seq, unit.part, unit.parts, unit if unit.kind == "data" else None, now
        ):
            if self.durable is not None:
                self._ack_later(unit.msgs)
        elif unit.kind == "none" and self.durable is not None:
            entry = reorder.held.get(unit.seq)
            if entry is not None:
                entry.extra.append(unit)

    def _refuse(self, unit: Unit) -> None:
        """A number or an end far beyond what the stream has shown: a forgery."""
        if self.horizon.refused == 1:
            claim = (
                f"an end after {unit.packets} packets"
                if unit.kind in (messages.END, messages.CUT)
                else f"packet {unit.seq}"
            )
            log.warning(
                "refused %s: far beyond the %d packets the stream has shown (a forged "
                "message, or a broken sender; counted)",
                claim,
                self.horizon.shown.get(unit.stream, 0),
            )
        self._ack_later(unit.msgs)

    def _adopt(self, unit: Unit) -> bool:
        """Start following unit's stream? (the first one heard, or the bookmarked one)"""
        mark = self.bookmark.mark if self.bookmark is not None else None
        if mark and mark.get("stream") == unit.stream:
            if mark.get("ended"):
                self._ack_later(unit.msgs)  # a leftover of a stream already finished
                return False
            self.following = unit.stream
            self.reorder.next = int(mark.get("next", 0))
            return True
        half_way = mark and not mark.get("ended") and unit.stream != mark.get("stream")
        if half_way and time.monotonic() - self._started < self.reorder.wait:
            # the bookmarked stream was left half-way: finish it first if it is still here
            self._nak(unit.msgs, delay=1.0)
            return False
        self.following = unit.stream
        return True

    def _check_alive(self, now: float) -> None:
        if self.following is None or self.idle <= 0:
            return
        last = self.heard.get(self.following, self._started)
        if now - last > self.idle and self._backlog():
            self.heard[self.following] = now
        elif now - last > self.idle:
            raise StageError(
                f"the stream on {self.subject} went silent: no packet and no heartbeat for "
                f"{now - last:.0f} s (its sender, or every worker, stopped without ending "
                "it); --idle sets how long to wait"
            )

    def _backlog(self) -> bool:
        """Durable: does the server still hold messages for us? (then we are not idle)"""
        if self.durable is None:
            return False
        try:
            info = self.input.pending()
        except Exception:
            return False
        ours = sum(len(u.msgs) for e in self.reorder.held.values() for u in e.parts.values())
        ours += self.chunks.held()
        # undelivered, or delivered to someone who did not answer (they come back)
        waiting = self.bookmark.waiting if self.bookmark is not None else 0
        return bool(info.num_pending) or info.num_ack_pending > ours + waiting

    def _ack_later(self, msgs: list[Any]) -> None:
        """Acknowledge with the next bookmark (durable; live messages need none)."""
        if self.bookmark is not None:
            self.bookmark.ack_later(msgs)

    def _nak(self, msgs: list[Any], delay: float) -> None:
        self.input.send_answer(msgs, "nak", delay)

    def _finish(self) -> None:
        try:
            if self.durable is not None:
                with contextlib.suppress(BaseException):
                    self.session.call(self.input.stop_fetching(), timeout=5)
                entries = [*self.reorder.held.values(), *(e for *_, e, _ in self._ready if e)]
                held = [m for e in entries for u in [*e.parts.values(), *e.extra] for m in u.msgs]
                while (unit := self.inbox.get(0)) is not None:
                    held.extend(unit.msgs)
                with contextlib.suppress(BaseException):
                    if self.bookmark is not None:
                        self.bookmark.save(final=True)
                with contextlib.suppress(BaseException):  # the next receiver gets them at once
                    self.session.call(self.input.answer(held, "nak"), timeout=10)
                with contextlib.suppress(BaseException):  # and unfinished chunks: old ones end
                    self.session.call(
                        self.chunks.give_back(CHUNK_AGE, time.monotonic()), timeout=10
                    )
        finally:
            self.session.close()
            self.report()

    def report(self) -> None:
        counts = self.reorder.counts
        seconds = max(time.monotonic() - self._started, 1e-9)
        from vflow_cli.console import human_bytes

        extra = []
        for name, value in (
            ("skipped", counts.skipped),
            ("dead-lettered", counts.dead),
            ("duplicates dropped", counts.duplicates),
            ("lost (receiver too slow, live)", self.lost_live),
            ("broken messages", self.bad),
            ("refused (far beyond the stream)", self.horizon.refused),
            ("refused (not signed by our key)", self.input.unsigned),
            ("non-vflow messages ignored", self.foreign),
            ("of another sender ignored", self.others),
        ):
            if value:
                extra.append(f"{value} {name}")
        if counts.skipped or self.lost_live:
            log.warning("%s", "; ".join(extra))
        log.info(
            "received %d packets from %s, %s (%s/s)%s",
            self.packets,
            self.address.shown(),
            human_bytes(self.bytes),
            human_bytes(self.bytes / seconds),
            "; " + "; ".join(extra) if extra else "",
        )
