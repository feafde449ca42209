"""framing.reader: iterate over the packets of one binary stream.

The reader parses each map with msgpack's Unpacker, fed with whatever one read() returns
(so a 10-byte packet is handed on at once), and reads an image payload with readinto()
straight into the numpy array handed to the stage. Every length read from the wire is
checked against the limits before anything of that size exists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import msgpack

from vflow_cli.framing import pipes
from vflow_cli.framing.arrays import ArrayPool
from vflow_cli.framing.wire import (
    BIN_HEADER,
    CAREFUL_AT,
    CHUNK,
    MAP_START,
    VERSION,
    Encoded,
    Packet,
    StreamCut,
    StreamError,
    Unpacker,
    _TooMany,
    bytes_of,
    check_image,
    is_trailer,
    max_meta_size,
    max_packet_size,
    parse_error,
    too_large,
)

LAZY_AT = 1 << 16  # images larger than this may stay in the input until needed (Pending)
PREALLOCATE = 8 << 20  # a compressed payload up to this size is read into one buffer at once


def _describe(data: bytes) -> str:
    shown = data[:24]
    text = repr(bytes(shown))
    return text + ("..." if len(data) > len(shown) else "")


class PacketReader:
    """Iterate over the packets of one binary stream.

    on_idle is called before every read that may block: the runner passes the writer's
    flush, so output waits in a buffer only while more input is already at hand.

    At the end of the input, `ended` says whether the stream closed with its trailer; a
    stream without one raises StreamCut once every complete packet has been handed out.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        on_idle: Callable[[], None] | None = None,
        max_packet: int | None = None,
        name: str = "stdin",
        lazy: bool = False,
        shared: bool = False,
    ) -> None:
        raw = getattr(stream, "raw", None)
        if raw is not None:
            # a BufferedReader nobody has read from yet: read the file itself, so a read is one
            # syscall and a payload lands in its array without passing through a buffer
            stream = raw
        self._stream = stream
        self._fd = pipes.fileno(stream)
        self.lazy = lazy  # leave large images in the input until someone needs them
        self._pending: Pending | None = None
        self._read = getattr(stream, "read1", None) or stream.read
        self._readinto = stream.readinto  # type: ignore[attr-defined]
        self._on_idle = on_idle or (lambda: None)
        self.max_packet = max_packet or max_packet_size()
        self.max_meta = min(max_meta_size(), self.max_packet)
        self.name = name
        self.packets = 0  # packets handed out
        self.bytes = 0  # bytes read
        self.header: Packet | None = None
        self.ended = False  # the last object was a trailer
        self._since_header = 0  # packets since the last header, to check the trailer's count
        self._careful = False  # count items as they are parsed (a large packet was seen)
        self._pool = ArrayPool()
        self._unpacker = self._new_unpacker()
        self._shared = shared  # take up a writer's offer of shared memory (framing.shm)
        self.rings: Any = None

    def _new_unpacker(self) -> Unpacker:
        self._fed = self._end = 0  # bytes fed to the unpacker; where its last object ended
        self._held: list[bytes] = []  # chunks fed to the unpacker that may hold unparsed bytes
        self._held_at = 0  # the unpacker's position where _held[0] starts
        return Unpacker(self.max_meta, careful=self._careful)

    def _feed(self, chunk: bytes) -> None:
        # forget the chunks the unpacker has wholly parsed
        while self._held and self._held_at + len(self._held[0]) <= self._end:
            self._held_at += len(self._held.pop(0))
        self._held.append(chunk)
        self._fed += len(chunk)
        try:
            self._unpacker.raw.feed(chunk)
        except msgpack.BufferFull:
            raise too_large(
                f"packet {self.packets + 1}'s metadata", self.max_meta, "VFLOW_MAX_META"
            ) from None
        if not self._careful and self._fed - self._end > CAREFUL_AT:
            self._be_careful()

    def _be_careful(self) -> None:
        """A packet's metadata has grown past CAREFUL_AT: parse from its first byte again,
        counting items, for the rest of this stream."""
        data = b"".join(self._held)[self._end - self._held_at :]
        self._careful = True
        self._unpacker = self._new_unpacker()
        self._feed(data)

    def _fill(self) -> bool:
        """Feed the unpacker one more read. False at end of input."""
        if self.rings is not None:
            self.rings.release()
        self._on_idle()
        chunk = self._read(CHUNK)
        if not chunk:
            return False
        if self.bytes == 0 and chunk[0] not in MAP_START:
            raise StreamError(
                f"{self.name} is not a vflow stream (it starts with {_describe(chunk)})"
            )
        self.bytes += len(chunk)
        self._feed(chunk)
        return True

    def __iter__(self) -> Iterator[Packet]:
        while True:
            if self._pending is not None:
                self._settle()
            unpacker = self._unpacker
            tell = unpacker.raw.tell
            try:
                for obj in unpacker.raw:
                    self._end = tell()  # where the last whole object ends
                    if unpacker.careful:
                        unpacker.reset()
                    if type(obj) is not dict:
                        # (the first object is a map: the first byte was checked)
                        raise StreamError(
                            f"packet {self.packets + 1} is a {type(obj).__name__}, not a map"
                        )
                    if "vflow" in obj:
                        self._control(obj)
                        continue
                    if self.header is None:
                        raise StreamError(
                            f"{self.name} is not a vflow stream (its first map has no 'vflow' key)"
                        )
                    self.ended = False
                    self.packets += 1
                    self._since_header += 1
                    if "image" in obj:
                        if type(obj["image"]) is dict and "shm" in obj["image"]:
                            obj["image"] = self._shared_image(obj["image"])
                            yield obj  # no payload follows: the unpacker goes on
                            continue
                        obj["image"] = self._read_payload(obj["image"])
                        yield obj
                        break  # _read_payload gave us a new unpacker
                    yield obj
                else:
                    if not self._fill():
                        self._at_end()
                        return
            except StreamError:
                raise
            except (ValueError, TypeError, OverflowError, _TooMany, msgpack.StackError) as exc:
                # FormatError, a container over the limits, an unhashable map key, too deep
                raise parse_error(exc, self.packets + 1, self.max_meta) from None

    def _at_end(self) -> None:
        left = self._fed - self._end
        if left:
            raise StreamCut(
                f"input ended in the middle of packet {self.packets + 1} "
                f"({left} bytes of it arrived): a stage before this one stopped early"
            )
        if self.header is None:
            raise StreamCut("no input: the stage before this one wrote nothing (did it fail?)")
        if not self.ended:
            raise StreamCut(
                "input ended without an end of stream: a stage before this one stopped early"
            )

    def _control(self, obj: Packet) -> None:
        version = obj.get("vflow")
        if version != VERSION:
            raise StreamError(
                f"{self.name} is a vflow stream of packet format version {version!r}; "
                f"this vflow reads version {VERSION} (use a vflow of the same version)"
            )
        if is_trailer(obj):
            if self.header is None:
                raise StreamError(f"{self.name} ends before it starts (a trailer came first)")
            sent = obj.get("packets")
            if type(sent) is int and sent != self._since_header:
                # a filter that does not count (it drops or adds packets and forwards the
                # trailer it got) still ended its stream cleanly: a different count is news
                # for a debug line, never a failure (vflow-packet(5))
                logging.getLogger("vflow").debug(
                    "%s: its trailer counts %d packets, %d arrived (a filter that does not "
                    "count forwarded it)",
                    self.name,
                    sent,
                    self._since_header,
                )
            self.ended = True
            return
        if self.header is None:
            self.header = obj
        if self._shared and self.rings is None and "shm" in obj:
            from vflow_cli.framing.shm import Rings

            self.rings = Rings.connect(obj["shm"], self._fd, self.max_packet)
        self.ended = False
        self._since_header = 0  # streams joined end to end (cat a b) each count their own

    # -- payloads ---------------------------------------------------------------------------

    def _shared_image(self, desc: Packet) -> Any:
        """An image the writer left in shared memory: a read-only array over its slot."""
        where = f"packet {self.packets}"
        fmt, size, _ = check_image(desc, self.packets, self.max_packet)
        if self.rings is None or fmt != "raw":
            raise StreamError(f"{where} refers to shared memory this reader was not given")
        self.rings.release()
        image = self.rings.image(desc["shm"], desc, size, where)
        self.bytes += size  # what went through this stage, whichever way it came
        return image

    def _read_payload(self, desc: Any):
        number = self.packets
        fmt, size, most = check_image(desc, number, self.max_packet)
        # what the unpacker holds beyond the map just parsed: part of the next bin object.
        # The map was completed by the last chunk fed (objects are taken as soon as whole),
        # so it ends inside that chunk
        last = self._held[-1]
        pending = memoryview(last)[self._end - (self._fed - len(last)) :]
        head, pending = self._take(1, pending, number)
        width = BIN_HEADER.get(head[0])
        if width is None:
            raise StreamError(f"packet {number} has an 'image' but no bin payload after it")
        head, pending = self._take(width, pending, number)
        length = int.from_bytes(head, "big")
        if size >= 0 and length != size:
            raise StreamError(
                f"packet {number}: image needs {size} bytes but its payload has {length}"
            )
        if length > most:
            raise too_large(
                f"packet {number}'s {fmt} payload ({length} bytes for a "
                f"{'x'.join(map(str, desc['shape']))} image)",
                most,
                "VFLOW_MAX_PACKET",
            )
        have = min(len(pending), length)
        first = bytes(pending[:have])
        pending = pending[have:]
        self._unpacker = self._new_unpacker()
        if len(pending):  # the payload ended inside the last chunk: the rest is the next packet
            self._feed(bytes(pending))
        image = Pending(self, desc, fmt, length, first)
        if self.lazy and length - have >= LAZY_AT:
            self._pending = image
            return image
        self._load(image)
        return image.value

    def _settle(self) -> None:
        """The stage asks for the next packet: an image it neither passed on nor loaded was
        dropped (the promise of a stage registered with pixels=False), so skip it."""
        image = self._pending
        assert image is not None
        if image.value is None and not image.forwarded:
            self._discard(image)
        self._pending = None

    def _load(self, image: Pending) -> None:
        have = len(image.head)
        if image.format == "raw":
            import numpy as np

            # np.empty commits no memory: a payload that claims more than arrives costs
            # only what arrived
            value = self._pool.get(image.shape, np.dtype(image.dtype).newbyteorder("<"))
            target = bytes_of(value)
            target[:have] = image.head
            self._read_exact(target[have:], image.number)
            image.value = value
            return
        if image.nbytes <= PREALLOCATE:
            data = bytearray(image.nbytes)
            view = memoryview(data)
            view[:have] = image.head
            self._read_exact(view[have:], image.number)
        else:  # grow with what arrives, never to what the header claims
            data = bytearray(image.head)
            left = image.nbytes - have
            while left:
                piece = bytearray(min(left, PREALLOCATE))
                self._read_exact(memoryview(piece), image.number)
                data += piece
                left -= len(piece)
        image.value = Encoded(image.format, data, image.shape, image.dtype)

    def _read_exact(self, target: memoryview, number: int) -> None:
        got, length = 0, len(target)
        if length:
            self._on_idle()
        while got < length:
            n = self._readinto(target[got:])
            if not n:
                raise StreamCut(
                    f"input ended in the middle of packet {number} (its image was "
                    f"{length - got} bytes short): a stage before this one stopped early"
                )
            got += n
            self.bytes += n

    def _discard(self, image: Pending) -> None:
        """Skip an image nobody kept, without copying it into this process where possible."""
        left = image.nbytes - len(image.head)
        moved = pipes.splice(self._fd, pipes.devnull(), left)
        self.bytes += moved
        left -= moved
        scratch = memoryview(bytearray(min(left, 1 << 20)))
        while left:
            self._read_exact(scratch[: min(left, len(scratch))], image.number)
            left -= min(left, len(scratch))
        image.head = b""

    def forward(self, image: Pending, out_fd: int | None, write: Callable[[Any], None]) -> int:
        """Send an image that is still in the input straight to an output (splice(2)).

        Returns how many bytes went past `write` (moved inside the kernel)."""
        if self._pending is not image or image.forwarded:
            raise RuntimeError("an image left in the input was passed on twice or too late")
        write(memoryview(image.head))
        left = image.nbytes - len(image.head)
        moved = 0
        if out_fd is not None:
            self._on_idle()
            moved = pipes.splice(self._fd, out_fd, left)
            self.bytes += moved
            left -= moved
        scratch = memoryview(bytearray(min(left, 1 << 20)))
        while left:
            piece = scratch[: min(left, len(scratch))]
            self._read_exact(piece, image.number)
            write(piece)
            left -= len(piece)
        image.forwarded = True
        image.head = b""
        return moved

    def _take(self, n: int, pending: memoryview, number: int) -> tuple[bytes, memoryview]:
        """n bytes from pending, reading more input when pending runs short."""
        if len(pending) >= n:
            return bytes(pending[:n]), pending[n:]
        data = bytes(pending)
        while len(data) < n:
            self._on_idle()
            more = self._read(CHUNK)
            if not more:
                raise StreamCut(
                    f"input ended in the middle of packet {number}: "
                    "a stage before this one stopped early"
                )
            self.bytes += len(more)
            data += more
        return data[:n], memoryview(data)[n:]


class Pending:
    """An image still in the input stream, for stages that never look at pixels.

    Written out before the stage asks for its next packet, it moves from stdin to stdout by
    splice(2) without entering this process. `load()` reads it into memory instead. If the
    stage does neither before asking for the next packet, the packet was dropped and its
    image is skipped. shape, dtype and format are known at once.
    """

    __slots__ = (
        "dtype",
        "format",
        "forwarded",
        "head",
        "nbytes",
        "number",
        "reader",
        "shape",
        "value",
    )

    def __init__(self, reader: PacketReader, desc: Packet, fmt: str, nbytes: int, head: bytes):
        self.reader = reader
        self.format = fmt
        self.dtype = desc.get("dtype", "uint8")
        self.shape = tuple(desc["shape"])
        self.nbytes = nbytes
        self.head = head  # the first bytes, already read with the packet's map
        self.value: Any = None
        self.forwarded = False
        self.number = reader.packets  # its packet's place in the stream

    def load(self) -> Any:
        """The image itself (a numpy array, or an Encoded image); only until the stage asks
        for the next packet, when an image not loaded nor passed on is skipped."""
        if self.value is None:
            if self.forwarded or self.reader._pending is not self:
                raise RuntimeError(
                    "an image was needed after the stage read the next packet; a stage "
                    "registered with pixels=False must pass on or drop each packet first"
                )
            self.reader._load(self)
        return self.value

    def skip(self) -> None:
        """Read past the image now (without keeping it): once this returns, it has fully
        arrived. It can no longer be loaded or passed on."""
        if self.value is None and not self.forwarded:
            if self.reader._pending is not self:
                raise RuntimeError("an image was skipped after the stage read the next packet")
            self.reader._discard(self)
            self.forwarded = True

    def describe(self) -> Packet:
        return {"format": self.format, "dtype": self.dtype, "shape": list(self.shape)}
