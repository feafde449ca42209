"""net.messages: a vflow stream as NATS messages (headers, bodies, control messages).

The body of a data message is one packet exactly as framing.encode() writes it (its
msgpack map, then its image's bin object): any msgpack library reads it. Everything about
the stream travels in headers, so a message is never parsed to be routed:

    Vflow-Stream   the sender's stream id (random, one per `vflow send` run)
    Vflow-Seq      the packet's number in that stream, 0, 1, 2, ... (the sender's count)
    Vflow-Part     output i of a worker for that input (a sender's packet is part 0 of 1)
    Vflow-Parts    on the last part: how many there are (0: the input gave no output)
    Vflow-Chunk    j/n when one packet is carried by n messages (larger than max_payload)
    Vflow-Size     the whole packet's size, on a chunk
    Vflow-Wire     jpeg: `send` compressed the frame; `recv` decodes it back to pixels
    Vflow-Kind     end | cut | dead: control messages (no body)
    Vflow-Packets  on end and cut: how many packets the stream had (seqs 0..N-1)
    Vflow-Reason   on cut and dead: why, for people
    Vflow-Dead-Subject, Vflow-Deliveries   on tombstones and dead letters
    Nats-Msg-Id    stream.seq.part[.chunk]: JetStream drops a second copy (a redelivered
                   input processed twice by workers gives the same ids)

Heartbeats go to _VFLOW.beat.SUBJECT (never stored): a sender, and each worker relaying
it, says once a second that the stream is alive (a worker adds Vflow-Busy: the number it
is working on, so that recv waits for it). Its last heartbeat carries Vflow-Kind: end (or
cut), for the workers that did not get the end message themselves. Dead letters go to
SUBJECT.dead.
"""

from __future__ import annotations

import contextlib
import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

from vflow_cli.framing import Encoded, Packet, StreamError, decode, encode


class Assembles(Protocol):
    """What puts a chunked packet back together (net.chunks.Assembler is one)."""

    def add(
        self, key: Any, chunk: str, size_text: str | None, data: bytes, now: float
    ) -> bytearray | None: ...


STREAM = "Vflow-Stream"
SEQ = "Vflow-Seq"
PART = "Vflow-Part"
PARTS = "Vflow-Parts"
CHUNK = "Vflow-Chunk"
SIZE = "Vflow-Size"
WIRE = "Vflow-Wire"
KIND = "Vflow-Kind"
PACKETS = "Vflow-Packets"
REASON = "Vflow-Reason"
DEAD_SUBJECT = "Vflow-Dead-Subject"  # on a tombstone: where the failed packet went
BUSY = "Vflow-Busy"  # on a worker's heartbeat: the sequence number it is working on
DELIVERIES = "Vflow-Deliveries"  # on a dead letter: how many times it was tried
SENDER = "Vflow-Sender"  # host:pid of the sender, on heartbeats (for listings)
MSG_ID = "Nats-Msg-Id"

END, CUT, DEAD = "end", "cut", "dead"
BEAT_PREFIX = "_VFLOW.beat."
FAR = 1 << 16  # a number this far beyond what a stream has shown is refused (a forgery)
HEADER_ROOM = 4096  # a message's size counts its headers: leave them this much
BEAT_EVERY = 1.0  # seconds between heartbeats


def new_stream_id() -> str:
    return secrets.token_hex(6)


def beat_subject(subject: str) -> str:
    return BEAT_PREFIX + subject


def dead_subject(subject: str) -> str:
    return subject + ".dead"


class WireJpeg(Encoded):
    """A frame `send` compressed for the trip: `recv` turns it back into pixels."""

    __slots__ = ()


def jpeg_able(image: Any) -> bool:
    """Raw 8-bit grey or BGR pictures go as JPEG; anything else (alpha, 16-bit, float,
    (H, W, 1)) goes raw, so that what arrives is what was sent."""
    if isinstance(image, Encoded):
        return False
    dtype = getattr(image, "dtype", None)
    if dtype is None or getattr(dtype, "name", None) != "uint8":
        return False
    return image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)


def body(packet: Packet, quality: int | None) -> tuple[bytes, bool]:
    """(the packet's bytes, whether its frame was JPEG-compressed for the trip).
    quality None: frames go as they are."""
    image = packet.get("image")
    wire = type(image) is WireJpeg
    if quality is not None and image is not None and jpeg_able(image):
        from vflow_cli.images import jpeg

        packet = {**packet, "image": jpeg(image, quality)}
        wire = True
    return encode(packet), wire


def packet_of(data: bytes | bytearray, wire: bool, *, pixels: bool) -> Packet:
    """The packet in a message body (StreamError if it breaks vflow-packet(5)).
    pixels: turn a frame that travelled as JPEG back into its array."""
    packet = decode(data, copy=not isinstance(data, bytearray))
    image = packet.get("image")
    if wire and isinstance(image, Encoded) and image.format == "jpeg":
        if pixels:
            from vflow_cli.images import pixels as decode_pixels

            packet["image"] = decode_pixels(image)
        else:
            packet["image"] = WireJpeg("jpeg", image.data, image.shape, image.dtype)
    return packet


# -- chunks -----------------------------------------------------------------------------------


def split(data: bytes, limit: int) -> list[memoryview]:
    """data in n pieces of at most `limit` bytes: all the same size but the last."""
    view = memoryview(data)
    if len(view) <= limit:
        return [view]
    count = math.ceil(len(view) / limit)
    size = math.ceil(len(view) / count)
    return [view[i : i + size] for i in range(0, len(view), size)]


def parse_chunk(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    try:
        j, n = int(index), int(count)
    except ValueError:
        raise StreamError(f"bad {CHUNK} header {text!r}") from None
    if not 0 <= j < n:
        raise StreamError(f"bad {CHUNK} header {text!r}")
    return j, n


def msg_id(stream: str, seq: int, part: int, chunk: int | None = None) -> str:
    base = f"{stream}.{seq}.{part}"
    return base if chunk is None else f"{base}.{chunk}"


def header_int(headers: dict[str, str] | None, name: str) -> int | None:
    if not headers or name not in headers:
        return None
    try:
        return int(headers[name])
    except ValueError:
        raise StreamError(f"bad {name} header {headers[name]!r}") from None


# -- messages as units of a stream ---------------------------------------------------------


@dataclass
class Unit:
    """One message's worth for the stage thread: a packet's bytes, or a control message."""

    stream: str
    kind: str  # "data", "none" (an input with no output), "end", "cut", "dead"
    seq: int | None = None
    part: int = 0
    parts: int | None = None
    body: bytes | bytearray | None = None
    wire: bool = False
    packets: int | None = None
    reason: str = ""
    msgs: list[Any] = field(default_factory=list)  # JetStream messages to acknowledge
    headers: dict[str, str] = field(default_factory=dict)


class NotVflow(Exception):
    """A message without vflow's headers (someone else publishes on this subject)."""


def unit_of(msg: Any, assembler: Assembles, now: float) -> Unit | None:
    """The Unit a message completes (None: a chunk of a packet still incomplete).
    NotVflow or StreamError for a message that can't be part of a vflow stream."""
    headers = msg.headers or {}
    stream = headers.get(STREAM)
    if not stream:
        raise NotVflow
    kind = headers.get(KIND) or "data"
    seq = header_int(headers, SEQ)
    part = header_int(headers, PART) or 0
    parts = header_int(headers, PARTS)
    if kind in (END, CUT):
        return Unit(
            stream,
            kind,
            packets=header_int(headers, PACKETS) or 0,
            reason=printable(headers.get(REASON, "")),
            msgs=[msg],
            headers=headers,
        )
    if seq is None or seq < 0 or part < 0:
        raise StreamError(f"a message without a valid {SEQ} header")
    if kind == DEAD:
        reason = printable(headers.get(REASON, ""))
        return Unit(stream, kind, seq, reason=reason, msgs=[msg], headers=headers)
    if kind != "data" or not msg.data:
        return Unit(stream, "none", seq, part, parts if parts is not None else 0, msgs=[msg])
    body: bytes | bytearray = msg.data
    chunk = headers.get(CHUNK)
    if chunk is not None:
        whole = assembler.add((stream, seq, part), chunk, headers.get(SIZE), msg.data, now)
        if whole is None:
            return None
        body = whole
    wire = headers.get(WIRE) == "jpeg"
    return Unit(stream, "data", seq, part, parts, body, wire, msgs=[msg], headers=headers)


class Horizon:
    """How far each stream has shown itself: its highest packet number + 1 among the
    messages that arrived. A number or an end claimed FAR beyond is refused (counted): one
    forged message must not make a receiver wait for, or walk through, 10^12 packets.
    Before a stream has shown anything, a packet may start anywhere (a late receiver) but
    an end may not claim more than FAR. Remembers the last `keep` streams."""

    def __init__(self, keep: int = 256) -> None:
        self.shown: dict[str, int] = {}
        self.keep = keep
        self.refused = 0

    def allows(self, unit: Unit) -> bool:
        """Whether unit is plausible; a packet's number then counts as shown."""
        if unit.kind in (END, CUT):
            if (unit.packets or 0) > self.shown.get(unit.stream, 0) + FAR:
                self.refused += 1
                return False
            return True
        seq = unit.seq or 0
        shown = self.shown.get(unit.stream)
        if shown is not None and seq >= shown + FAR:
            self.refused += 1
            return False
        if shown is None:
            while len(self.shown) >= self.keep:
                del self.shown[next(iter(self.shown))]
        self.shown[unit.stream] = max(shown or 0, seq + 1)
        return True

    def forget(self, stream: str) -> None:
        self.shown.pop(stream, None)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str, limit: int = 300) -> str:
    """Text from the network, safe for a terminal: control characters (ESC, CR, ...)
    escaped as \\xNN, at most `limit` characters."""
    text = text[:limit]
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


async def settle(msg: Any, how: str = "ack", delay: float | None = None) -> None:
    """Answer one message of a JetStream consumer (a core message needs no answer)."""
    if not msg.reply:
        return
    with contextlib.suppress(Exception):
        if how == "ack":
            await msg.ack()
        elif how == "nak":
            await msg.nak(delay=delay)
        else:
            await msg.term()
