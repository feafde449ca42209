"""net.job in process: the decisions a worker takes on each message and each packet.

The pure ones (mode, inbox, routing, retries, the headers of an end) are called directly.
The job's bookkeeping (outputs held then published with their count, acknowledgement after
them, dead letters, ends passed on, the counts it reports) runs on a Job whose network side
is recorded in place of a connection: `Net` records what the job published and answered, as
tests/net/test_streams.py does with its heartbeats. What a real server makes of it is proved
by the worker tests, which run `vflow worker` against nats-server.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tests.helpers import wait_for
from vflow_cli.errors import StageError
from vflow_cli.framing import StreamError
from vflow_cli.net import messages
from vflow_cli.net.chunks import Assembler
from vflow_cli.net.job import (
    Job,
    Task,
    _control_headers,
    _deliveries,
    _failure,
    _inbox,
    _is_durable,
    _keep_the_ends,
    _retried,
    _route,
    _Sink,
)
from vflow_cli.net.loop import Inbox
from vflow_cli.net.messages import DEAD, END, KIND, PACKETS, PARTS, REASON, Unit, encode
from vflow_cli.net.streams import Streams

MiB = 1 << 20


def delivered(times: int) -> Any:
    """A JetStream message, as far as its delivery count goes."""
    return SimpleNamespace(metadata=SimpleNamespace(num_delivered=times))


def data(seq: int, *, times: int | None = None, stream: str = "s1", body: bytes = b"x") -> Unit:
    msgs = [delivered(times)] if times is not None else [SimpleNamespace(name=f"m{seq}")]
    return Unit(stream, "data", seq, body=body, msgs=msgs)


def control(kind: str = END, packets: int = 5, reason: str = "", stream: str = "s1") -> Unit:
    return Unit(stream, kind, packets=packets, reason=reason, msgs=[SimpleNamespace(n="end")])


# --- the pure decisions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "stream", "durable"),
    [
        ("durable", None, True),  # created if missing
        ("durable", "IN", True),
        ("live", "IN", False),  # even when the input is stored
        ("live", None, False),
        ("auto", "IN", True),  # stored: durable
        ("auto", None, False),  # not stored (the probe saw live messages): live
        ("auto", "", True),  # a name, however short
    ],
)
def test_the_mode(mode, stream, durable):
    assert _is_durable(mode, stream) is durable


def test_a_durable_inbox_holds_one_input_and_never_drops():
    inbox: Inbox[Any] = _inbox(True)
    assert inbox.room() == 1
    assert inbox.put("a", 100 * MiB) == []
    assert inbox.room() == 0  # the loop asks for room before it takes more
    assert inbox.put("b", 100 * MiB) == []  # never drops: the server keeps the rest
    assert len(inbox) == 2


def test_a_live_inbox_keeps_the_newest_64_messages():
    inbox: Inbox[Any] = _inbox(False)
    for i in range(64):
        assert inbox.put(i, 1) == []
    assert inbox.put(64, 1) == [0]
    assert len(inbox) == 64


def test_a_live_inbox_holds_64_mib_at_most():
    inbox: Inbox[Any] = _inbox(False)
    assert inbox.put("a", 32 * MiB) == []
    assert inbox.put("b", 32 * MiB) == []  # 64 MiB: the budget, exactly
    assert inbox.put("c", 1) == ["a"]  # one byte more: the oldest goes
    assert inbox.put("d", 64 * MiB) == ["b", "c"]


def test_what_a_full_live_inbox_drops_is_counted_but_an_end_goes_back_in():
    inbox: Inbox[Any] = Inbox(2, leaky=True)
    inbox.put(data(0))
    inbox.put(control(END))
    assert _keep_the_ends(inbox, inbox.put(data(1))) == 1  # packet 0 is lost
    # the end is the oldest now: put back, it pushes out packet 1
    assert _keep_the_ends(inbox, inbox.put(data(2))) == 1
    assert [i.kind for i, _ in inbox._items] == ["data", "end"]
    assert [i.seq for i, _ in inbox._items] == [2, None]
    inbox = Inbox(2, leaky=True)
    inbox.put(control("cut"))
    inbox.put(Unit("s1", "none", 3))  # an input with no output: not a packet lost
    assert _keep_the_ends(inbox, inbox.put(Unit("s1", DEAD, 4))) == 0
    assert [i.kind for i, _ in inbox._items] == [DEAD, "cut"]
    assert _keep_the_ends(inbox, []) == 0


def test_two_ends_dropped_at_once_both_go_back():
    inbox: Inbox[Any] = Inbox(3, leaky=True)
    lost = [data(0), control(END, stream="a"), control("cut", stream="b"), data(1)]
    assert _keep_the_ends(inbox, lost) == 2
    assert sorted(i.stream for i, _ in inbox._items) == ["a", "b"]


def test_the_route_of_each_unit():
    assert _route(control(END), 3) == "control"
    assert _route(control("cut"), 3) == "control"
    assert _route(Unit("s1", DEAD, 1), 3) == "pass on"
    assert _route(Unit("s1", "none", 1), 3) == "pass on"
    assert _route(data(0), 1) == "work"  # a live message: delivered once
    assert _route(data(0, times=3), 3) == "work"
    assert _route(data(0, times=4), 3) == "bury"
    assert _route(data(0, times=1), 0) == "bury"


def test_deliveries_are_the_servers_count():
    assert _deliveries(data(0, times=7)) == 7
    assert _deliveries(data(0)) == 1  # a core message has no metadata: once
    assert _deliveries(Unit("s", "data", 0)) == 1
    # the first message that has a count gives it
    unit = Unit("s", "data", 0, msgs=[SimpleNamespace(), delivered(4), delivered(9)])
    assert _deliveries(unit) == 4
    unit = Unit("s", "data", 0, msgs=[delivered("x"), delivered("2")])
    assert _deliveries(unit) == 2


def test_a_failure_is_one_line_naming_the_stage():
    assert _failure("detect", ValueError("bad frame")) == "detect: bad frame"
    assert _failure("detect", ValueError()) == "detect: ValueError"
    assert _failure("detect", KeyError("k")) == "detect: 'k'"
    assert _failure("detect", RuntimeError("one\ntwo")) == "detect: one; two"


@pytest.mark.parametrize(
    ("durable", "tries", "max_deliver", "retried"),
    [
        (True, 1, 3, True),
        (True, 2, 3, True),
        (True, 3, 3, False),  # the last try: buried
        (True, 4, 3, False),
        (False, 1, 3, False),  # live: nobody would deliver it again
    ],
)
def test_a_failed_packet_is_retried_while_tries_are_left(durable, tries, max_deliver, retried):
    assert _retried(durable, tries, max_deliver) is retried


def test_the_headers_an_end_goes_on_with():
    assert _control_headers(control(END, 5)) == {KIND: END, PACKETS: "5"}
    assert _control_headers(control("cut", 0, "disk full")) == {
        KIND: "cut",
        PACKETS: "0",
        REASON: "disk full",
    }


# --- the job's bookkeeping, its network side recorded ------------------------------------


class Net:
    """The network side of a job, recorded: the session, its input and its output."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []
        self.answers: list[tuple[list[Any], str, float]] = []
        self.timeouts: list[float | None] = []
        self.sent: list[Any] = []  # what went to the publisher, in order
        self.stored: list[tuple[Unit, str, int]] = []  # dead letters
        self.client = self
        self.sender = "host:1"
        self.subject = "IN.dead"
        self.closed: list[str] = []
        self.unsigned = 0
        self.waiting = 0  # the live input's backlog
        self.info: Any = SimpleNamespace(num_pending=0, num_ack_pending=0)
        self.fail_publish = False

    # session
    def call(self, coro: Any, timeout: float | None = None) -> Any:
        self.timeouts.append(timeout)
        return asyncio.run(coro)

    def signed(self, subject: str, headers: dict[str, str]) -> dict[str, str]:
        return {**headers, "Signed-For": subject}

    async def publish(self, subject: str, body: bytes, headers: dict[str, str]) -> None:
        if self.fail_publish:
            raise ConnectionError("no route")
        self.published.append((subject, body, headers))

    # input
    async def answer(self, msgs: list[Any], how: str, delay: float) -> None:
        self.answers.append((msgs, how, delay))

    def backlog(self) -> int:
        return self.waiting

    def pending(self) -> Any:
        if isinstance(self.info, Exception):
            raise self.info
        return self.info

    def give_back(self) -> None:
        self.closed.append("input")

    # output
    def put(self, outgoing: Any) -> None:
        self.sent.append(outgoing)

    # dead letters
    def store(self, unit: Unit, reason: str, tries: int) -> None:
        self.stored.append((unit, reason, tries))


class Session(Net):
    def __init__(self, name: str, closed: list[str]) -> None:
        super().__init__()
        self.name = name
        self.closed = closed

    def close(self) -> None:
        self.closed.append(self.name)


def job_of(
    *, durable: bool = False, out: bool = True, max_deliver: int = 3, quality: int | None = None
) -> tuple[Job, Net]:
    """A Job's state as __init__ leaves it, on a recorded network (Job.__init__ connects)."""
    net = Net()
    job = Job.__new__(Job)
    job.src, job.dst = SimpleNamespace(subject="IN"), SimpleNamespace(subject="OUT")
    job.info = SimpleNamespace(name="stage", kind="processor" if out else "consumer")
    job.group, job.max_deliver, job.ack_wait = "g", max_deliver, 30.0
    job.keep, job.quality, job.idle, job.pixels = False, quality, 3.0, False
    job.session = job.out_session = net  # type: ignore[assignment]
    job.current, job.busy = None, None
    job.streams = Streams(3.0, False)
    job.failures = job.dead = job.done = job.chunked = job.missed = 0
    job.assembler = Assembler(64 * MiB)
    job.durable = durable
    job.inbox = _inbox(durable)
    job.dead_letters = net  # type: ignore[assignment]
    job.out = net if out else None  # type: ignore[assignment]
    job.input = net  # type: ignore[assignment]
    job.sink = _Sink(job) if out else None
    return job, net


def settled(net: Net, outgoing: Any) -> tuple[list[Any], str, float]:
    """What the acknowledgement that waits behind outgoing answers, once it runs."""
    assert outgoing.body is None and outgoing.headers == {}
    assert (outgoing.stream, outgoing.seq) == ("-", None)
    before = len(net.answers)
    asyncio.run(outgoing.after())
    assert len(net.answers) == before + 1
    return net.answers[-1]


@pytest.fixture
def logged():
    """The vflow log's messages (a bad format argument fails the test)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("vflow")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield lambda: [(r.levelname, r.getMessage()) for r in records]
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_an_output_before_any_input_is_an_error():
    job, _ = job_of()
    with pytest.raises(StreamError) as caught:
        job.output({"kind": "data"})
    assert str(caught.value) == "a worker's stage produced a packet before its first input"


def test_outputs_go_with_their_count_and_the_input_is_acknowledged_after_them():
    job, net = job_of()
    unit = data(7)
    job.current = Task(unit, {"kind": "data"})
    first, second = {"kind": "data", "n": 1}, {"kind": "data", "n": 22}
    assert job.output(first) == len(encode(first))
    assert net.sent == []  # held: is it the last one?
    assert job.output(second) == len(encode(second))
    (out0,) = net.sent
    assert (out0.body, out0.headers, out0.seq, out0.part, out0.stream) == (
        encode(first),
        {},
        7,
        0,
        "s1",
    )
    job._finish()
    assert len(net.sent) == 3
    last = net.sent[1]
    assert (last.body, last.headers, last.seq, last.part, last.stream) == (
        encode(second),
        {PARTS: "2"},  # the last part says how many there were
        7,
        1,
        "s1",
    )
    assert settled(net, net.sent[2]) == (unit.msgs, "ack", 0.5)
    assert (job.done, job.current, job.busy) == (1, None, None)
    job._finish()  # nothing in hand: nothing more
    assert len(net.sent) == 3 and job.done == 1


def test_an_input_with_no_output_says_so():
    job, net = job_of()
    job.current = Task(data(3, stream="s2"), {"kind": "data"})
    job.busy = ("s2", 3)
    job._finish()
    empty = net.sent[0]
    assert (empty.body, empty.headers, empty.seq, empty.part, empty.stream) == (
        None,
        {PARTS: "0"},
        3,
        0,
        "s2",
    )
    assert settled(net, net.sent[1])[1] == "ack"
    assert (job.done, job.busy) == (1, None)


def test_a_consumer_acknowledges_at_once():
    job, net = job_of(out=False)
    unit = data(1)
    job.current = Task(unit, {"kind": "data"})
    job._finish()
    assert net.sent == [] and net.answers == [(unit.msgs, "ack", 0.5)]
    assert net.timeouts == [30]


def test_a_frame_goes_as_jpeg_when_asked():
    image = np.zeros((8, 8, 3), np.uint8)
    job, net = job_of(quality=80)
    job.current = Task(data(0), {"kind": "frame"})
    job.output({"kind": "frame", "image": image})
    job._finish()
    assert net.sent[0].headers == {messages.WIRE: "jpeg", PARTS: "1"}
    job, net = job_of()
    job.current = Task(data(0), {"kind": "frame"})
    job.output({"kind": "frame", "image": image})
    job._finish()
    assert net.sent[0].headers == {PARTS: "1"}


def test_the_sink_counts_what_the_stage_made():
    job, net = job_of()
    job.current = Task(data(0), {"kind": "data"})
    sink = job.sink
    assert sink is not None
    packet = {"kind": "data", "v": 1}
    sink.write(packet)
    sink.write(packet)
    assert (sink.packets, sink.bytes, sink.busy) == (2, 2 * len(encode(packet)), False)
    sink.push()
    sink.flush()
    assert len(net.sent) == 1
    sink.close()  # the worker leaves: its input is finished, the stream is not ended
    assert [o.headers for o in net.sent[:2]] == [{}, {PARTS: "2"}]
    assert job.done == 1 and not [o for o in net.sent if o.headers.get(KIND)]


def test_a_failure_with_tries_left_goes_back_to_the_workers(logged):
    job, net = job_of(durable=True)
    unit = data(7, times=1)
    job.current = Task(unit, {"kind": "data"})
    job.output({"kind": "data"})
    job.failed(ValueError("boom"))
    assert (job.failures, job.dead) == (1, 0)
    assert net.sent[0].headers == {} and settled(net, net.sent[0]) == (unit.msgs, "nak", 0.5)
    assert net.stored == []
    assert logged() == [
        ("WARNING", "packet 7 failed (try 1 of 3): stage: boom; it goes back to the workers")
    ]


def test_a_failure_on_the_last_try_is_buried(logged):
    job, net = job_of(durable=True)
    unit = data(7, times=3, stream="s9")
    task = Task(unit, {"kind": "data"})
    job.current = task
    job.output({"kind": "data"})  # held: dropped, the packet failed
    job.failed(ValueError("boom"))
    assert (job.failures, job.dead, job.done) == (1, 1, 0)
    assert net.stored == [(unit, "stage: boom", 3)]
    tomb, ack = net.sent
    assert (tomb.body, tomb.seq, tomb.stream) == (None, 7, "s9")
    assert tomb.headers == {KIND: DEAD, REASON: "stage: boom", messages.DEAD_SUBJECT: "IN.dead"}
    assert settled(net, ack) == (unit.msgs, "ack", 0.5)
    assert (task.held, task.outputs) == (None, -1)
    assert job.current is None
    assert logged() == [("WARNING", "packet 7 failed (try 3 of 3): stage: boom")]


def test_a_live_failure_is_buried_at_once_and_the_reason_is_cut_short():
    job, net = job_of(durable=False)
    unit = data(1)
    job.current = Task(unit, {"kind": "data"})
    job.failed(ValueError("x" * 400))
    assert net.stored == [(unit, "stage: " + "x" * 400, 1)]  # the dead letter keeps it all
    assert net.sent[0].headers[REASON] == ("stage: " + "x" * 400)[:300]
    assert job.dead == 1


def test_a_consumer_buries_without_a_tombstone():
    job, net = job_of(out=False)
    unit = data(1)
    job.current = Task(unit, {"kind": "data"})
    job.failed(ValueError("boom"))
    assert net.sent == [] and net.stored == [(unit, "stage: boom", 1)]
    assert net.answers == [(unit.msgs, "ack", 0.5)]


def test_an_end_goes_on_and_the_other_workers_hear_of_it():
    job, net = job_of()
    job.busy = ("s1", 4)
    unit = control(END, 5)
    job._forward_control(unit)
    assert job.streams.ended == {"s1": None}
    end, ack = net.sent
    assert (end.body, end.headers, end.stream) == (None, {KIND: END, PACKETS: "5"}, "s1")
    assert end.seq is None
    beat_headers = {messages.STREAM: "s1", KIND: END, PACKETS: "5", "Signed-For": "_VFLOW.beat.IN"}
    assert net.published == [("_VFLOW.beat.IN", b"", beat_headers)]
    assert net.timeouts == [10]
    assert settled(net, ack) == (unit.msgs, "ack", 0.5)
    assert job.busy is None


def test_a_cut_goes_on_with_its_reason_even_when_nobody_can_be_told():
    job, net = job_of(out=False)
    net.fail_publish = True
    unit = control("cut", 2, "disk full")
    job._forward_control(unit)
    assert job.streams.ended == {"s1": "disk full"}
    assert net.published == [] and net.sent == []
    assert net.answers == [(unit.msgs, "ack", 0.5)]
    job, _ = job_of()
    job._forward_control(control(END, 2, "a reason on an end is not a cut"))
    assert job.streams.ended == {"s1": None}


def test_a_tombstone_on_the_input_is_passed_on():
    job, net = job_of()
    headers = {KIND: DEAD, REASON: "r", messages.STREAM: "s1"}
    unit = Unit("s1", DEAD, 4, msgs=[SimpleNamespace()], headers=headers)
    job._pass_on(unit)
    passed, ack = net.sent
    assert (passed.body, passed.headers, passed.seq, passed.stream) == (None, headers, 4, "s1")
    assert settled(net, ack) == (unit.msgs, "ack", 0.5)
    job, net = job_of(out=False)
    job._pass_on(unit)
    assert net.sent == [] and net.answers == [(unit.msgs, "ack", 0.5)]


# --- messages from the network -----------------------------------------------------------


class Msg:
    """A NATS message as the job's callback sees it, answering into a list."""

    def __init__(self, headers: dict[str, str] | None, data: bytes = b"", reply: str = "r"):
        self.headers, self.data, self.reply = headers, data, reply
        self.answers: list[str] = []

    async def ack(self) -> None:
        self.answers.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.answers.append("nak")

    async def term(self) -> None:
        self.answers.append("term")


def on_msg(job: Job, msg: Msg) -> bool:
    return asyncio.run(job._on_msg(msg))


def packet_msg(seq: int, stream: str = "s1", **headers: str) -> Msg:
    body = encode({"kind": "data", "seq": seq})
    return Msg({messages.STREAM: stream, messages.SEQ: str(seq), **headers}, body)


def test_a_message_becomes_a_unit_in_the_inbox():
    job, _ = job_of()
    msg = packet_msg(3)
    assert on_msg(job, msg) is True
    assert msg.answers == []  # answered once the stage is done with it
    (unit, size), *_ = job.inbox._items
    assert (unit.kind, unit.seq, unit.stream, unit.msgs) == ("data", 3, "s1", [msg])
    assert (unit.body, size) == (msg.data, len(msg.data))  # its size counts in the budget


@pytest.mark.parametrize(
    "headers",
    [
        None,  # someone else's message
        {"Other": "1"},
        {messages.STREAM: "s1", messages.SEQ: "x"},  # broken
        {messages.STREAM: "s1", messages.SEQ: "-1"},
    ],
)
def test_a_message_that_is_no_part_of_a_stream_is_terminated(headers):
    job, _ = job_of()
    msg = Msg(headers, b"x")  # made here: a test run twice in one process starts afresh
    assert on_msg(job, msg) is False
    assert msg.answers == ["term"] and len(job.inbox) == 0


def test_chunks_are_refused_and_counted_for_one_warning(logged):
    job, _ = job_of()
    msg = packet_msg(0, **{messages.CHUNK: "0/2", messages.SIZE: "10"})
    assert on_msg(job, msg) is False
    assert msg.answers == ["term"] and job.chunked == 1
    assert on_msg(job, packet_msg(1, **{messages.CHUNK: "1/2"})) is False
    assert job.chunked == 2 and len(job.inbox) == 0


def test_a_forged_number_is_refused():
    job, _ = job_of()
    assert on_msg(job, packet_msg(10))
    forged = packet_msg(11 + messages.FAR)  # 11 shown: this is FAR beyond
    assert on_msg(job, forged) is False
    assert forged.answers == ["term"] and job.streams.refused == 1
    assert on_msg(job, packet_msg(11))


def test_a_live_worker_counts_the_packets_its_full_inbox_lost():
    job, _ = job_of()
    for seq in range(64):
        assert on_msg(job, packet_msg(seq))
    end = Msg({messages.STREAM: "s1", KIND: END, PACKETS: "70"})
    assert on_msg(job, end)
    assert job.missed == 1  # packet 0 made room for the end
    for seq in range(64, 70):
        assert on_msg(job, packet_msg(seq))
    assert job.missed == 7  # packets 1 to 6: the end stays
    kinds = [u.kind for u, _ in job.inbox._items]
    assert len(kinds) == 64 and kinds.count(END) == 1


# --- the stage's input -------------------------------------------------------------------


def unit_of_packet(seq: int, packet: dict[str, Any], times: int | None = None) -> Unit:
    return data(seq, times=times, body=encode(packet))


def test_the_stage_gets_each_packet_and_the_stream_ends_with_its_end(logged):
    job, net = job_of()
    units = [
        unit_of_packet(0, {"kind": "data", "n": 0}),
        Unit("s1", "none", 1, msgs=[SimpleNamespace()]),  # an input with no output upstream
        unit_of_packet(2, {"kind": "data", "n": 2}, times=4),  # workers died on it 4 times
        data(3, body=b"\xc1 no msgpack"),
        unit_of_packet(4, {"kind": "data", "n": 4}),
        control(END, 5),
    ]
    for unit in units:
        job.inbox.put(unit)
    packets = job.packets()
    assert next(packets) == {"kind": "data", "n": 0}
    assert job.busy == ("s1", 0) and job.current is not None
    assert job.current.unit is units[0]
    assert next(packets) == {"kind": "data", "n": 4}
    assert job.busy == ("s1", 4)
    assert list(packets) == []  # the end, and the verdict: all ended
    kinds = [o.headers.get(KIND) or o.headers.get(PARTS) for o in net.sent if o.stream != "-"]
    assert kinds == ["0", None, DEAD, DEAD, "0", END]  # in the order of their inputs
    reasons = [o.headers[REASON] for o in net.sent if o.headers.get(KIND) == DEAD]
    assert reasons[0] == "delivered 4 times and never answered: workers died on it"
    assert reasons[1].startswith("not a valid packet: ")
    assert [tries for _, _, tries in net.stored] == [4, 1]
    assert (job.done, job.dead) == (2, 2)
    acks = [settled(net, o) for o in net.sent if o.stream == "-"]
    assert [msgs for msgs, _, _ in acks] == [u.msgs for u in units]
    assert logged() == []


def test_the_stage_hears_of_chunks_once(logged):
    job, _ = job_of()
    job.chunked = 1
    job.inbox.put(control(END, 0))
    assert list(job.packets()) == []
    assert job.chunked == 2
    ((level, message),) = logged()
    assert level == "WARNING"
    assert message.startswith("packets larger than the server's max_payload arrive in chunks")


def test_a_cut_upstream_fails_the_stage():
    job, _ = job_of()
    job.inbox.put(control("cut", 0, "the camera went away"))
    with pytest.raises(StageError) as caught:
        list(job.packets())
    assert str(caught.value) == "the stream was cut upstream: the camera went away"


def test_an_end_that_overtook_the_last_messages_waits_for_them():
    job, net = job_of()
    backlog = iter([1, 1, 0])  # the client still holds messages, twice; then none
    net.backlog = lambda: next(backlog)  # type: ignore[method-assign]
    job.inbox.put(control(END, 0))
    assert list(job.packets()) == []
    assert next(backlog, "asked three times") == "asked three times"


def test_ctrl_c_stops_the_stage_and_leaves_the_stream_to_the_others(logged, monkeypatch):
    from vflow_cli import runner

    job, net = job_of()
    job.inbox.put(unit_of_packet(0, {"kind": "data"}))
    monkeypatch.setattr(runner._state, "presses", 1)
    assert list(job.packets()) == []
    assert len(job.inbox) == 1 and net.sent == []  # not taken: the server gives it to another
    assert logged() == [("INFO", "stopping: Ctrl-C (the stream goes on with the other workers)")]


@pytest.mark.parametrize("pixels", [True, False])
def test_a_frame_that_came_as_jpeg_is_decoded_for_a_stage_that_looks_at_pixels(pixels):
    image = np.full((8, 8, 3), 128, np.uint8)
    body, wire = messages.body({"kind": "frame", "image": image}, 90)
    assert wire
    job, _ = job_of()
    job.pixels = pixels
    job.inbox.put(Unit("s1", "data", 0, body=body, wire=True, msgs=[SimpleNamespace()]))
    got = next(job.packets())["image"]
    if pixels:
        assert isinstance(got, np.ndarray) and got.shape == (8, 8, 3)
        assert abs(int(got.mean()) - 128) <= 2
    else:  # passed on as it came: no decoding, no re-encoding
        assert isinstance(got, messages.WireJpeg) and got.shape == (8, 8, 3)


def test_what_is_pending():
    job, net = job_of()
    assert job._pending() is False
    job.inbox.put(data(0))
    assert job._pending() is True
    job.inbox.get(0)
    net.waiting = 1  # live: the client still holds messages
    assert job._pending() is True
    job.durable = True  # durable: the server says
    assert job._pending() is False
    net.info = SimpleNamespace(num_pending=2, num_ack_pending=0)
    assert job._pending() is True
    net.info = SimpleNamespace(num_pending=0, num_ack_pending=1)
    assert job._pending() is True
    net.info = TimeoutError()
    assert job._pending() is True  # cannot tell: wait


# --- a stage that raises -----------------------------------------------------------------


def test_a_stage_that_raises_on_a_packet_goes_on_with_the_next():
    job, net = job_of()

    def source():
        for n in range(4):
            job.current = Task(data(n), {"n": n})
            yield {"n": n}

    def stage(packets):
        for packet in packets:
            if packet["n"] in (1, 2):
                raise ValueError(f"bad {packet['n']}")
            yield packet

    assert list(job.wrap(stage)(source())) == [{"n": 0}, {"n": 3}]
    assert (job.failures, job.dead) == (2, 2)
    assert [s[1] for s in net.stored] == ["stage: bad 1", "stage: bad 2"]


def test_a_stage_that_raises_before_its_first_packet_fails():
    job, _ = job_of()

    def broken(packets, **options):
        raise ValueError("no model")

    with pytest.raises(ValueError, match="no model"):
        list(job.wrap(broken)(iter([])))
    job.current = Task(data(0), None)  # an input it never got as a packet
    with pytest.raises(ValueError, match="no model"):
        list(job.wrap(broken)(iter([])))
    assert job.failures == 0


def test_a_consumer_stage_is_run_to_its_end():
    job, _ = job_of(out=False)
    seen = []

    def consumer(packets, every):
        for packet in packets:
            seen.append(packet["n"] * every)
            if packet["n"] == 1:
                raise ValueError("once")

    def source():
        for n in range(3):
            job.current = Task(data(n), {"n": n})
            yield {"n": n}

    assert job.wrap(consumer)(source(), every=10) is None
    assert seen == [0, 10, 20] and job.dead == 1


# --- the end of a worker -----------------------------------------------------------------


def test_closing_reports_the_counts(logged):
    job, net = job_of()
    job.out_session = Session("out session", net.closed)  # type: ignore[assignment]
    job.session = Session("session", net.closed)  # type: ignore[assignment]
    net.close = lambda timeout: net.closed.append(f"out {timeout}")  # type: ignore[attr-defined]
    job.done, job.failures, job.dead, job.missed = 5, 2, 1, 3
    job.streams.refused, net.unsigned = 1, 2
    job.close()
    assert net.closed == ["out 60", "input", "out session", "session"]
    assert logged() == [
        (
            "WARNING",
            "missed 3 packets of the live input (they came while the stage was busy, or before "
            "it listened); send --durable stores them for the workers",
        ),
        (
            "INFO",
            "worked on 5 packets (2 failed tries, 1 to the dead letters, 3 refused: forged, or "
            "far beyond their stream)",
        ),
    ]


def test_closing_after_a_failed_output_still_closes_the_connection(logged):
    job, net = job_of()

    def fail(timeout):
        raise TimeoutError("8 outputs not stored")

    net.close = fail  # type: ignore[attr-defined]
    job.session = Session("session", net.closed)  # type: ignore[assignment]
    job.out_session = job.session
    job.close()
    assert net.closed == ["input", "session"]  # one session: closed once
    assert logged() == [
        ("WARNING", "8 outputs not stored"),
        ("INFO", "worked on 0 packets (0 failed tries, 0 to the dead letters)"),
    ]


def test_closing_a_job_that_failed_to_start(logged):
    job, net = job_of()
    del job.out, job.input  # it failed before it had them
    job.session = Session("session", net.closed)  # type: ignore[assignment]
    job.out_session = job.session
    job.close()
    assert net.closed == ["session"]
    assert logged() == [("INFO", "worked on 0 packets (0 failed tries, 0 to the dead letters)")]


def test_the_heartbeat_goes_to_the_output_signed():
    job, net = job_of()
    out = Session("out", [])
    job.out_session = out  # type: ignore[assignment]
    asyncio.run(job._beat({messages.STREAM: "s1"}))
    assert out.published == [
        ("_VFLOW.beat.OUT", b"", {messages.STREAM: "s1", "Signed-For": "_VFLOW.beat.OUT"})
    ]
    assert net.published == []


def test_the_durable_consumer_asked_of_the_server():
    job, _ = job_of(durable=True)
    job.stream = "VFLOW_IN"
    pull = job._pull()
    assert (pull.name, pull.stream, pull.keep_alive) == ("g", "VFLOW_IN", 10.0)
    config = pull.config
    assert (config.durable_name, config.filter_subject) == ("g", "IN")
    assert config.ack_policy.value == "explicit"
    assert (config.ack_wait, config.max_deliver, config.max_ack_pending) == (30.0, -1, 1024)
    job.ack_wait = 0.3
    assert job._pull().keep_alive == 0.2  # never more often than five times a second


# --- on a real server: what the job sets up ----------------------------------------------


def real_job(server, mode: str, *, dst: bool = True, keep: bool = False, out_server=None) -> Job:
    from vflow_cli.catalogue import stage_info
    from vflow_cli.net.connection import Limits
    from vflow_cli.net.options import address_from

    url = f"nats://127.0.0.1:{server.port}"
    info = stage_info("sum" if dst else "null")
    assert info is not None
    return Job(
        address_from(f"{url}/IN", {}),
        address_from(f"nats://127.0.0.1:{(out_server or server).port}/OUT", {}) if dst else None,
        info,
        info.parse([]),
        group="grp",
        mode=mode,
        max_deliver=3,
        ack_wait=9.0,
        keep=keep,
        quality=None,
        idle=3.0,
        limits=Limits(1 << 20, 60.0),
    )


def stored_streams(server) -> dict[str, Any]:
    """The server's JetStream streams by name, with their config and consumers."""
    data = server.monitor_json("jsz?streams=1&consumers=1&config=1")
    found = {}
    for account in data.get("account_details", []):
        for stream in account.get("stream_detail", []):
            found[stream["name"]] = stream
    return found


def test_a_live_job_listens_in_its_queue_group_and_keeps_nothing(server, logged):
    job = real_job(server, "live")
    try:
        assert job.durable is False
        assert (job.inbox.leaky, job.inbox.size, job.inbox.budget) == (True, 64, 64 * MiB)
        assert (job.failures, job.dead, job.done, job.chunked, job.missed) == (0, 0, 0, 0, 0)
        assert (job.current, job.busy, job.sink.packets) == (None, None, 0)  # type: ignore[union-attr]
        assert job.out is not None and (job.out.subject, job.out.durable) == ("OUT", False)
        assert job.dead_letters.subject == "IN.dead"
        assert job.out_session is job.session  # one server: one connection
        names = [c.get("name", "") for c in server.monitor_json("connz").get("connections", [])]
        assert [n.split()[:2] for n in names] == [["vflow", "worker"]]  # named so in listings
        # a packet published on IN reaches the job's inbox, as a unit of its stream
        body = encode({"kind": "data", "n": 1})
        headers = {messages.STREAM: "s1", messages.SEQ: "0", messages.PART: "0"}
        job.session.call(job.session.client.publish("IN", body, headers=headers))
        packets = job.packets()
        assert next(packets) == {"kind": "data", "n": 1}
        assert job.busy == ("s1", 0)
        # live: neither its input nor its output is stored; its dead letters are
        subjects = [s["config"]["subjects"] for s in stored_streams(server).values()]
        assert subjects == [["IN.dead"]]
    finally:
        job.close()
    assert ("INFO", "worked on 0 packets (0 failed tries, 0 to the dead letters)") in logged()


def test_a_durable_job_stores_its_input_and_output_and_asks_for_a_durable_consumer(server):
    job = real_job(server, "durable")
    try:
        assert job.durable is True
        assert (job.inbox.leaky, job.inbox.size) == (False, 1)
        assert job.out is not None and job.out.durable is True
        streams = stored_streams(server)
        subjects = {name: s["config"]["subjects"] for name, s in streams.items()}
        assert sorted(map(tuple, subjects.values())) == [("IN",), ("IN.dead",), ("OUT",)]
        (input_stream,) = [n for n, s in subjects.items() if s == ["IN"]]
        assert job.stream == input_stream
        assert streams[input_stream]["config"]["max_bytes"] == 1 << 20
        consumers = {c["name"]: c["config"] for c in streams[input_stream]["consumer_detail"]}
        config = consumers["grp"]
        assert config["ack_policy"] == "explicit" and config["ack_wait"] == 9 * 10**9
        assert config["filter_subject"] == "IN"
        # the server redelivers without end: the job counts deliveries (dead letters)
        assert (config["max_deliver"], config["max_ack_pending"]) == (-1, 1024)
        (output_stream,) = [n for n, s in subjects.items() if s == ["OUT"]]
        assert streams[output_stream]["config"]["max_age"] == 60 * 10**9  # the limits given
    finally:
        job.close()


def test_auto_is_durable_when_the_input_is_stored(server):
    first = real_job(server, "durable", dst=False)  # stores IN
    first.close()
    job = real_job(server, "auto", dst=False)
    try:
        assert job.durable is True and job.out is None and job.sink is None
    finally:
        job.close()


def test_live_jobs_of_one_group_share_the_input(server):
    jobs = [real_job(server, "live"), real_job(server, "live")]
    try:
        session = jobs[0].session
        for seq in range(20):
            headers = {messages.STREAM: "s1", messages.SEQ: str(seq), messages.PART: "0"}
            body = encode({"kind": "data", "n": seq})
            session.call(session.client.publish("IN", body, headers=headers))
        wait_for(lambda: sum(len(j.inbox) for j in jobs) >= 20, 10, "20 messages in the inboxes")
        for job in jobs:  # a round trip: what the server sent each job has arrived
            job.session.call(job.session.client.flush(timeout=5))
        assert sum(len(j.inbox) for j in jobs) == 20  # each message to one of them
    finally:
        for job in jobs:
            job.close()


def test_auto_waits_for_its_input_and_takes_a_live_one_with_what_it_heard(server):
    import threading

    from vflow_cli.net.options import address_from
    from vflow_cli.net.session import Session as RealSession

    made: list[Job] = []
    starting = threading.Thread(target=lambda: made.append(real_job(server, "auto")))
    starting.start()
    sender = RealSession(address_from(f"nats://127.0.0.1:{server.port}/IN", {}), "send")
    try:
        seq = 0
        while starting.is_alive() and seq < 2000:  # until the job has heard one and decided
            headers = {messages.STREAM: "s1", messages.SEQ: str(seq), messages.PART: "0"}
            body = encode({"kind": "data", "n": seq})
            sender.call(sender.client.publish("IN", body, headers=headers))
            seq += 1
            starting.join(0.05)
        starting.join(30)
        (job,) = made
    finally:
        sender.close()
    try:
        assert job.durable is False and job.inbox.leaky
        assert len(job.inbox) >= 1  # what the probe heard is the live input's
        assert job.missed == 0  # and none of it was lost
        first = next(job.packets())
        assert first["kind"] == "data" and 0 <= first["n"] < seq
    finally:
        job.close()


def test_an_output_on_another_server_gets_its_own_connection(server, tmp_path):
    from tests.net.util import Server

    other = Server(tmp_path / "other")
    try:
        job = real_job(server, "durable", out_server=other)
        try:
            assert job.out_session is not job.session
            names = [c.get("name", "") for c in other.monitor_json("connz")["connections"]]
            assert [n.split()[:2] for n in names] == [["vflow", "worker"]]
            # the output stream is made on the output's server, the input's on the input's
            assert [s["config"]["subjects"] for s in stored_streams(other).values()] == [["OUT"]]
            assert ["OUT"] not in [s["config"]["subjects"] for s in stored_streams(server).values()]
        finally:
            job.close()
        assert job.out_session.closed and job.session.closed  # type: ignore[attr-defined]
    finally:
        other.stop()
