"""net.job: one worker's work on a stream (see net.worker for the whole picture).

One class, Job, holds the invariant that its input side (a Subscription), the stage's side
(the runner's source and sink) and its output side (publishing, acknowledging, dead
letters) all keep: an input is acknowledged only after everything made from it is
published and stored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

from vflow_cli.console import log, one_line
from vflow_cli.errors import StageError
from vflow_cli.framing import Packet, StreamError
from vflow_cli.net import connection, messages
from vflow_cli.net.chunks import Assembler
from vflow_cli.net.dead import DeadLetters
from vflow_cli.net.loop import Inbox
from vflow_cli.net.messages import settle
from vflow_cli.net.publisher import Outgoing, Publisher
from vflow_cli.net.session import Session
from vflow_cli.net.streams import Probe, Streams
from vflow_cli.net.subscription import Pull, Subscription
from vflow_cli.runner import interrupted


@dataclasses.dataclass
class Task:
    """One input in the stage thread's hands."""

    unit: Any  # receiver.Unit
    packet: Packet | None
    outputs: int = 0
    held: Any = None  # the last output, published once we know whether more follow


class Job:
    def __init__(
        self,
        src: Any,
        dst: Any,
        info: Any,
        options: dict[str, Any],
        *,
        group: str,
        mode: str,
        max_deliver: int,
        ack_wait: float,
        keep: bool,
        quality: int | None,
        idle: float,
        limits: Any,
        keys: Any = None,
    ) -> None:
        self.src, self.dst, self.info = src, dst, info
        self.group, self.max_deliver, self.ack_wait = group, max_deliver, ack_wait
        self.keep, self.quality, self.idle = keep, quality, idle
        self.pixels = info.looks_at_pixels(options)
        self.session = Session(src, "worker")
        self.session.keys = keys  # checks the input, signs the output
        self.out_session = self.session
        self.current: Task | None = None
        self.streams = Streams(idle, keep)
        self.busy: tuple[str, int] | None = None
        self.failures = 0
        self.dead = 0
        self.done = 0
        self.chunked = 0
        self.missed = 0  # live: data messages lost (before we listened, or our inbox full)
        self.assembler = Assembler(64 << 20)
        try:
            if dst is not None and (dst.servers, dst.credentials) != (src.servers, src.credentials):
                self.out_session = Session(dst, "worker")
                self.out_session.keys = keys
            js = self.session.js
            stream = self.session.call(connection.find_stream(js, src.subject))
            probe = None
            if mode == "auto" and stream is None:  # nothing yet: decide when the stream comes
                probe = Probe(self.session, src.subject, group)
                stream = probe.wait()
            self.durable = _is_durable(mode, stream)
            self.inbox: Inbox[Any] = _inbox(self.durable)
            if self.durable:
                self.stream = stream or self.session.call(
                    connection.ensure_stream(js, src.subject, limits)
                )
                if dst is not None:
                    self.out_session.call(
                        connection.ensure_stream(self.out_session.js, dst.subject, limits)
                    )
            self.dead_letters = DeadLetters(self.session, src.subject, limits)
            self.out = (
                Publisher(
                    self.out_session,
                    dst.subject,
                    durable=self.durable,
                    stream="-",
                    size=8,
                    leaky=False,
                )
                if dst is not None
                else None
            )
            self.input = Subscription(
                self.session,
                src.subject,
                self.inbox,
                self._on_msg,
                on_beat=self.streams.on_beat,
                queue=None if self.durable else group,
                pull=self._pull() if self.durable else None,
                keys=keys,
                # live: the client queues what the loop has not yet taken (bounded in bytes),
                # so that what is dropped is dropped from our inbox, and counted
                pending_msgs=4096,
            )
            if probe is not None:  # after the input listens: nothing falls between the two
                kept = probe.close()
                if not self.durable:  # what the probe took is the live input's too
                    self.missed += probe.data
                    self.session.call(self.input.feed(kept))
            if dst is not None:
                self.out_session.start(
                    self.streams.relay(self._beat, lambda: self.busy, self.session.sender)
                )
        except BaseException:
            self.close()
            raise
        self.sink = _Sink(self) if self.out is not None else None

    def _pull(self) -> Pull:
        from nats.js import api

        config = api.ConsumerConfig(
            durable_name=self.group,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=-1,  # we count deliveries ourselves (dead letters)
            max_ack_pending=1024,
            filter_subject=self.src.subject,
        )
        return Pull(self.group, self.stream, config, keep_alive=max(self.ack_wait / 3, 0.2))

    # -- loop thread -------------------------------------------------------------------------

    async def _beat(self, headers: dict[str, str]) -> None:
        assert self.dst is not None
        target = messages.beat_subject(self.dst.subject)
        headers = self.out_session.signed(target, headers)
        await self.out_session.client.publish(target, b"", headers=headers)

    async def _on_msg(self, msg: Any) -> bool:
        headers = msg.headers or {}
        try:
            if messages.CHUNK in headers:
                self.chunked += 1
                raise StreamError("chunked")
            unit = messages.unit_of(msg, self.assembler, time.monotonic())
        except (messages.NotVflow, StreamError):
            await settle(msg, "term")
            return False
        if unit is None:
            return False
        if not self.streams.allows(unit):
            await settle(msg, "term")
            return False
        lost = self.inbox.put(unit, len(unit.body or b""))  # live and full: the oldest goes
        self.missed += _keep_the_ends(self.inbox, lost)
        return True

    # -- stage thread ------------------------------------------------------------------------

    def packets(self) -> Iterator[Packet]:
        """The stage's input: one packet at a time; asking for the next one finishes the
        previous one (its outputs published, then it is acknowledged)."""

        last_check = time.monotonic()
        while True:
            self._finish()
            if interrupted():
                log.info("stopping: Ctrl-C (the stream goes on with the other workers)")
                return
            if self.chunked == 1:
                self.chunked += 1
                log.warning(
                    "packets larger than the server's max_payload arrive in chunks, which "
                    "competing workers cannot share; they were refused (send JPEG, or raise "
                    "max_payload on the server)"
                )
            unit = self.inbox.get(None)
            if unit is None:
                if time.monotonic() - last_check > 0.5:
                    last_check = time.monotonic()
                    reason = self.streams.verdict(self.src.subject, self._pending)
                    if reason is not None:
                        if reason:
                            raise StageError(reason)
                        return
                continue
            route = _route(unit, self.max_deliver)
            if route == "control":
                self._forward_control(unit)
                continue
            if route == "pass on":
                self._pass_on(unit)
                continue
            task = Task(unit, None)
            if route == "bury":
                self.current = task
                tries = _deliveries(unit)
                self._bury(f"delivered {tries} times and never answered: workers died on it")
                continue
            try:
                task.packet = messages.packet_of(unit.body, unit.wire, pixels=self.pixels)
            except (StreamError, StageError) as exc:
                self.current = task
                self._bury(f"not a valid packet: {exc}")
                continue
            self.current = task
            self.busy = (unit.stream, unit.seq)
            yield task.packet

    def _pending(self) -> bool:
        if len(self.inbox):
            return True
        if not self.durable:  # an end heartbeat may overtake the last messages: wait for them
            return self.input.backlog() > 0
        try:
            info = self.input.pending()
        except Exception:
            return True
        return bool(info.num_pending or info.num_ack_pending)

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """The stage function, restarted after a packet that made it raise."""
        job = self

        def attempts(packets: Iterator[Packet], **options: Any) -> Iterator[Any]:
            while True:
                try:
                    result = function(packets, **options)
                    if result is not None:
                        yield from result
                    return
                except Exception as exc:
                    if job.current is None or job.current.packet is None:
                        raise  # not a packet's fault (it failed before its first one)
                    job.failed(exc)

        if self.info.kind == "consumer":

            def consume(packets: Iterator[Packet], **options: Any) -> None:
                for _ in attempts(packets, **options):
                    pass

            return consume
        return attempts

    def failed(self, exc: Exception) -> None:
        """The stage raised on the current packet: retry it elsewhere, or bury it."""
        task = self.current
        assert task is not None
        reason = _failure(self.info.name, exc)
        self.failures += 1
        tries = _deliveries(task.unit)
        task.held = None
        if _retried(self.durable, tries, self.max_deliver):
            log.warning(
                "packet %s failed (try %d of %d): %s; it goes back to the workers",
                task.unit.seq,
                tries,
                self.max_deliver,
                reason,
            )
            self._settle(task, ack="nak")
            return
        log.warning(
            "packet %s failed (try %d of %d): %s", task.unit.seq, tries, self.max_deliver, reason
        )
        self._bury(reason)

    def _bury(self, reason: str) -> None:
        """Dead letters: the packet to IN.dead, a tombstone to OUT, then acknowledge."""
        task = self.current
        assert task is not None
        unit = task.unit
        self.dead += 1
        self.dead_letters.store(unit, reason, _deliveries(unit))
        if self.out is not None:
            self.out.put(
                Outgoing(
                    None,
                    {
                        messages.KIND: messages.DEAD,
                        messages.REASON: reason[:300],
                        messages.DEAD_SUBJECT: self.dead_letters.subject,
                    },
                    seq=unit.seq,
                    stream=unit.stream,
                )
            )
        task.held = None
        task.outputs = -1  # nothing more to publish for it
        self._settle(task, ack="ack")

    def output(self, packet: Packet) -> int:
        """The stage made a packet from the current input; returns its size on the wire."""
        task = self.current
        if task is None:
            raise StreamError("a worker's stage produced a packet before its first input")
        if task.held is not None:
            self.out.put(task.held)  # type: ignore[union-attr]
        task.held = self._outgoing(packet, task, task.outputs)
        task.outputs += 1
        return len(task.held.body)

    def _outgoing(self, packet: Packet, task: Task, part: int) -> Any:
        data, wire = messages.body(packet, self.quality)
        headers = {messages.WIRE: "jpeg"} if wire else {}
        return Outgoing(data, headers, seq=task.unit.seq, part=part, stream=task.unit.stream)

    def _finish(self) -> None:
        """The stage wants its next input: publish what it made of this one, then ack."""
        task = self.current
        if task is None:
            return
        if self.out is not None and task.outputs >= 0:
            if task.held is not None:
                task.held.headers[messages.PARTS] = str(task.outputs)
                self.out.put(task.held)
            else:
                self.out.put(
                    Outgoing(
                        None,
                        {messages.PARTS: "0"},
                        seq=task.unit.seq,
                        stream=task.unit.stream,
                    )
                )
        self.done += 1
        self._settle(task, ack="ack")

    def _settle(self, task: Task, *, ack: str) -> None:
        """Acknowledge (or nak) the input once everything published before is stored."""
        self.current = None
        self.busy = None
        answer = functools.partial(self.input.answer, list(task.unit.msgs), ack, 0.5)

        if self.out is not None:
            self.out.put(Outgoing(None, {}, after=answer, stream="-", seq=None))
        else:
            self.session.call(answer(), timeout=30)

    def _forward_control(self, unit: Any) -> None:
        """The sender's end (or cut) came to us: pass it on, and tell the other workers."""
        reason = unit.reason if unit.kind == messages.CUT else None
        self.streams.end(unit.stream, reason)
        headers = _control_headers(unit)
        if self.out is not None:
            self.out.put(Outgoing(None, headers, stream=unit.stream))
        beat = {messages.STREAM: unit.stream, **headers}

        async def tell() -> None:
            target = messages.beat_subject(self.src.subject)
            await self.session.client.publish(
                target, b"", headers=self.session.signed(target, beat)
            )

        with contextlib.suppress(Exception):
            self.session.call(tell(), timeout=10)
        self._settle(Task(unit, None), ack="ack")

    def _pass_on(self, unit: Any) -> None:
        if self.out is not None:
            self.out.put(Outgoing(None, dict(unit.headers), seq=unit.seq, stream=unit.stream))
        self._settle(Task(unit, None), ack="ack")

    def close(self) -> None:
        out = getattr(self, "out", None)
        try:
            if out is not None:
                out.close(timeout=60)
        except Exception as exc:
            log.warning("%s", exc)
        finally:
            if hasattr(self, "input"):
                self.input.give_back()
            if self.out_session is not self.session:
                self.out_session.close()
            self.session.close()
        refused = self.streams.refused + getattr(getattr(self, "input", None), "unsigned", 0)
        missed = self.missed
        if missed:
            log.warning(
                "missed %d packets of the live input (they came while the stage was busy, or "
                "before it listened); send --durable stores them for the workers",
                missed,
            )
        log.info(
            "worked on %d packets (%d failed tries, %d to the dead letters%s)",
            self.done,
            self.failures,
            self.dead,
            f", {refused} refused: forged, or far beyond their stream" if refused else "",
        )


class _Sink:
    """The runner's sink for a worker's stage: packets go to Job.output()."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.packets = 0
        self.bytes = 0
        self.busy = False

    def write(self, packet: Packet) -> None:
        self.busy = True
        self.bytes += self.job.output(packet)
        self.packets += 1
        self.busy = False

    def push(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self, *, end: bool = True) -> None:
        """A worker leaving does not end the stream: the end comes from the sender."""
        self.job._finish()


def _is_durable(mode: str, stream: str | None) -> bool:
    """--mode durable, live, or auto: durable when the input is stored (stream: not None)."""
    return mode == "durable" or (mode == "auto" and stream is not None)


def _inbox(durable: bool) -> Inbox[Any]:
    """Durable: one input at a time (the server keeps the rest for the other workers); live:
    the newest 64 messages, 64 MiB at most (the oldest are dropped, and counted)."""
    return Inbox(1, leaky=False) if durable else Inbox(64, leaky=True, budget=64 << 20)


def _keep_the_ends(inbox: Inbox[Any], lost: list[Any]) -> int:
    """A full live inbox dropped these: ends and cuts go back in; returns data packets lost."""
    missed = 0
    while lost:
        gone = lost.pop()
        if gone.kind in (messages.END, messages.CUT):
            lost += inbox.put(gone)
        elif gone.kind == "data":
            missed += 1
    return missed


def _route(unit: Any, max_deliver: int) -> str:
    """What the stage thread does with a unit: "control" (an end or cut), "pass on" (a
    tombstone, an input with no output), "bury" (workers died on it), or "work"."""
    if unit.kind in (messages.END, messages.CUT):
        return "control"
    if unit.kind != "data":
        return "pass on"
    if _deliveries(unit) > max_deliver:
        return "bury"
    return "work"


def _failure(stage: str, exc: Exception) -> str:
    """A stage's exception on one line: its message, or its type's name."""
    return f"{stage}: {type(exc).__name__ if not str(exc) else ''}{one_line(str(exc))}"


def _retried(durable: bool, tries: int, max_deliver: int) -> bool:
    """A failed packet goes back to the workers (durable, tries left), else to the dead letters."""
    return durable and tries < max_deliver


def _control_headers(unit: Any) -> dict[str, str]:
    """The headers an end or cut goes on with."""
    headers = {messages.KIND: unit.kind, messages.PACKETS: str(unit.packets)}
    if unit.reason:
        headers[messages.REASON] = unit.reason
    return headers


def _deliveries(unit: Any) -> int:
    for msg in unit.msgs:
        with contextlib.suppress(Exception):
            return int(msg.metadata.num_delivered)
    return 1
