"""framing: the only module that knows the vflow wire format (man/vflow-packet.5).

A stream is a plain sequence of msgpack objects:

    {"vflow": 1, ...}                      header: first object of every stream
    {"kind": "data", "seq": 0, ...}        a packet: one msgpack map
    {"kind": "frame", "image": {...}}      a packet carrying an image ...
    <bin: the image's bytes>               ... is followed by exactly one bin object

The reader parses each map with msgpack's Unpacker, fed with whatever one read()
returns (so a 10-byte packet is handed on at once), and reads an image payload with
readinto() straight into the numpy array handed to the stage. The writer sends the
array's own memory. Neither side copies a frame it does not have to.
"""

from __future__ import annotations

import math
import os
import stat
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import msgpack

VERSION = 1  # major version of the packet format; a reader refuses any other
CHUNK = 1 << 16  # one read() asks for at most this much metadata
FLUSH_AT = 1 << 16  # small packets are sent when this much is pending ...
FLUSH_AFTER = 0.02  # ... or when the oldest pending byte is this old (seconds)
DEFAULT_MAX_PACKET = 1 << 30  # 1 GiB; VFLOW_MAX_PACKET overrides
MAX_CONTAINER = 1 << 22  # most items in one msgpack array or map
PIPE_SIZE = 1 << 20  # ask the kernel for pipes this large (fewer context switches)

Packet = dict[str, Any]

# dtypes a raw image may have on the wire; multi-byte ones are little-endian
DTYPES = frozenset(
    "uint8 int8 uint16 int16 uint32 int32 uint64 int64 float16 float32 float64".split()
)
ENCODINGS = frozenset({"jpeg", "png", "webp"})
_BIN_HEADER = {0xC4: 1, 0xC5: 2, 0xC6: 4}  # bin8, bin16, bin32: bytes of length that follow
_MAP_START = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])


class StreamError(Exception):
    """The input is not a well-formed vflow stream (the runner turns it into one line)."""


class Encoded:
    """An image kept compressed inside a packet (see `vflow jpeg`); `shape` is the decoded shape."""

    __slots__ = ("format", "data", "shape", "dtype")

    def __init__(self, format: str, data: bytes | bytearray | memoryview, shape, dtype="uint8"):
        self.format = format
        self.data = data
        self.shape = tuple(shape)
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"Encoded({self.format!r}, {len(self.data)} bytes, shape={self.shape})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Encoded)
            and (self.format, self.shape, self.dtype) == (other.format, other.shape, other.dtype)
            and bytes(self.data) == bytes(other.data)
        )

    __hash__ = None  # type: ignore[assignment]


def parse_size(text: str) -> int:
    """'512M', '2G', '4096' -> bytes."""
    text = text.strip().upper().removesuffix("B")
    scale = 1
    for suffix, factor in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)):
        if text.endswith(suffix):
            text, scale = text[:-1], factor
            break
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a size (e.g. 4096, 512M, 2G)") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"size must be positive, not {text!r}")
    return int(value * scale)


def max_packet_size() -> int:
    """The largest packet (metadata plus payload) a reader accepts: VFLOW_MAX_PACKET or 1 GiB."""
    text = os.environ.get("VFLOW_MAX_PACKET")
    if not text:
        return DEFAULT_MAX_PACKET
    try:
        return parse_size(text)
    except ValueError as exc:
        raise StreamError(f"VFLOW_MAX_PACKET: {exc}") from None


def widen_pipe(fd: int) -> None:
    """Ask for a larger pipe buffer: 1 MiB pipes move big frames with fewer context switches."""
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            import fcntl

            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    except (OSError, ValueError):
        pass  # not a pipe, not Linux, or over /proc/sys/fs/pipe-max-size: keep the default


def _describe(data: bytes) -> str:
    shown = data[:24]
    text = repr(bytes(shown))
    return text + ("..." if len(data) > len(shown) else "")


class PacketReader:
    """Iterate over the packets of one binary stream.

    on_idle is called before every read that may block: the runner passes the writer's
    flush, so output waits in a buffer only while more input is already at hand.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        on_idle: Callable[[], None] | None = None,
        max_packet: int | None = None,
        name: str = "stdin",
    ) -> None:
        raw = getattr(stream, "raw", None)
        if raw is not None:
            # a BufferedReader nobody has read from yet: read the file itself, so a read is one
            # syscall and a payload lands in its array without passing through a buffer
            stream = raw
        self._stream = stream
        self._read = getattr(stream, "read1", None) or stream.read
        self._readinto = stream.readinto
        self._on_idle = on_idle or (lambda: None)
        self.max_packet = max_packet or max_packet_size()
        self.name = name
        self.packets = 0  # packets handed out
        self.bytes = 0  # bytes read
        self.header: Packet | None = None
        self._chunk = b""  # the last chunk fed to the unpacker
        self._fed = 0  # bytes fed to the current unpacker
        self._unpacker = self._new_unpacker()

    def _new_unpacker(self) -> msgpack.Unpacker:
        self._fed = self._end = 0
        limit = min(self.max_packet, MAX_CONTAINER)
        return msgpack.Unpacker(
            max_buffer_size=self.max_packet,
            max_array_len=limit,
            max_map_len=limit,
            strict_map_key=False,
        )

    def _fill(self) -> bool:
        """Feed the unpacker one more read. False at end of input."""
        self._on_idle()
        chunk = self._read(CHUNK)
        if not chunk:
            return False
        if self.bytes == 0 and chunk[0] not in _MAP_START:
            raise StreamError(f"{self.name} is not a vflow stream (it starts with {_describe(chunk)})")
        self.bytes += len(chunk)
        self._chunk = chunk
        self._fed += len(chunk)
        try:
            self._unpacker.feed(chunk)
        except msgpack.BufferFull:
            raise StreamError(
                f"packet {self.packets + 1} is larger than the {self.max_packet}-byte limit "
                "(set VFLOW_MAX_PACKET to raise it)"
            ) from None
        return True

    def __iter__(self) -> Iterator[Packet]:
        while True:
            unpacker = self._unpacker
            tell = unpacker.tell
            try:
                for obj in unpacker:
                    self._end = tell()  # where the last whole object ends
                    if type(obj) is not dict:
                        raise StreamError(
                            f"packet {self.packets + 1} is a {type(obj).__name__}, not a map"
                            + ("" if self.header else f" ({self.name} is not a vflow stream)")
                        )
                    if "vflow" in obj:
                        self._check_header(obj)
                        continue
                    if self.header is None:
                        raise StreamError(
                            f"{self.name} is not a vflow stream (its first map has no 'vflow' key)"
                        )
                    if "image" in obj:
                        obj["image"] = self._read_payload(obj["image"])
                        self.packets += 1
                        yield obj
                        break  # _read_payload gave us a new unpacker
                    self.packets += 1
                    yield obj
                else:
                    if not self._fill():
                        self._at_end()
                        return
            except msgpack.BufferFull:
                raise StreamError(
                    f"packet {self.packets + 1} is larger than the {self.max_packet}-byte limit "
                    "(set VFLOW_MAX_PACKET to raise it)"
                ) from None
            except (ValueError, msgpack.ExtraData) as exc:  # FormatError, StackError, limits
                if isinstance(exc, StreamError):
                    raise
                raise StreamError(f"packet {self.packets + 1} is malformed ({exc})") from None

    def _at_end(self) -> None:
        left = self._fed - self._end
        if left:
            raise StreamError(
                f"input ended in the middle of packet {self.packets + 1} "
                f"({left} bytes of it arrived; was the stage before killed?)"
            )

    def _check_header(self, obj: Packet) -> None:
        version = obj.get("vflow")
        if version != VERSION:
            raise StreamError(
                f"{self.name} is a vflow stream of packet format version {version!r}; "
                f"this vflow reads version {VERSION} (use a vflow of the same version)"
            )
        if self.header is None:
            self.header = obj

    # -- payloads ---------------------------------------------------------------------------

    def _read_payload(self, desc: Any):
        size, make = self._plan(desc)
        # what the unpacker holds beyond the map just parsed: part of the next bin object
        consumed = self._unpacker.tell()
        start = self._fed - len(self._chunk)
        if consumed < start:  # cannot happen: a map ends in the chunk that completed it
            raise AssertionError("framing: map ended before the last chunk")
        pending = memoryview(self._chunk)[consumed - start :]
        head, pending = self._take(1, pending)
        width = _BIN_HEADER.get(head[0])
        if width is None:
            raise StreamError(
                f"packet {self.packets + 1} has an 'image' but no bin payload after it"
            )
        head, pending = self._take(width, pending)
        length = int.from_bytes(head, "big")
        if length != size and size >= 0:
            raise StreamError(
                f"packet {self.packets + 1}: image needs {size} bytes but its payload has {length}"
            )
        if length > self.max_packet:
            raise StreamError(
                f"packet {self.packets + 1} is larger than the {self.max_packet}-byte limit "
                "(set VFLOW_MAX_PACKET to raise it)"
            )
        value, target = make(length)
        have = min(len(pending), length)
        target[:have] = pending[:have]
        pending = pending[have:]
        got = have
        if got < length:
            self._on_idle()
        while got < length:
            n = self._readinto(target[got:])
            if not n:
                raise StreamError(
                    f"input ended in the middle of packet {self.packets + 1} "
                    f"({got} of its {length}-byte image arrived; was the stage before killed?)"
                )
            got += n
            self.bytes += n
        self._unpacker = self._new_unpacker()
        self._chunk = b""
        if len(pending):
            rest = bytes(pending)
            self._chunk = rest
            self._fed = len(rest)
            self._unpacker.feed(rest)
        return value

    def _take(self, n: int, pending: memoryview) -> tuple[bytes, memoryview]:
        """n bytes from pending, reading more input when pending runs short."""
        if len(pending) >= n:
            return bytes(pending[:n]), pending[n:]
        data = bytes(pending)
        while len(data) < n:
            self._on_idle()
            more = self._read(CHUNK)
            if not more:
                raise StreamError(
                    f"input ended in the middle of packet {self.packets + 1} "
                    "(was the stage before killed?)"
                )
            self.bytes += len(more)
            data += more
        return data[:n], memoryview(data)[n:]

    def _plan(self, desc: Any):
        """Check an image descriptor; return (payload size or -1, allocator)."""
        where = f"packet {self.packets + 1}"
        if type(desc) is not dict:
            raise StreamError(f"{where}: 'image' must be a map, not {type(desc).__name__}")
        fmt = desc.get("format", "raw")
        shape = desc.get("shape")
        dtype = desc.get("dtype", "uint8")
        if (
            type(shape) is not list
            or not 1 <= len(shape) <= 4
            or not all(type(n) is int and 0 <= n < 1 << 31 for n in shape)
        ):
            raise StreamError(f"{where}: image shape {shape!r} is not a list of 1-4 sizes")
        if dtype not in DTYPES:
            raise StreamError(f"{where}: image dtype {dtype!r} is not one of {sorted(DTYPES)}")
        if fmt == "raw":
            import numpy as np

            dt = np.dtype(dtype).newbyteorder("<")
            size = math.prod(shape) * dt.itemsize
            if size > self.max_packet:
                raise StreamError(
                    f"{where}: a {'x'.join(map(str, shape))} {dtype} image is larger than the "
                    f"{self.max_packet}-byte limit (set VFLOW_MAX_PACKET to raise it)"
                )

            def make(length: int):
                array = np.empty(shape, dt)
                return array, _bytes_of(array)

            return size, make
        if fmt in ENCODINGS:

            def make_encoded(length: int):
                data = bytearray(length)
                return Encoded(fmt, data, shape, dtype), memoryview(data)

            return -1, make_encoded
        raise StreamError(f"{where}: image format {fmt!r} is not raw or one of {sorted(ENCODINGS)}")


def _default(obj: Any) -> Any:
    """msgpack fallback for metadata: numpy scalars and small arrays become numbers and lists."""
    tolist = getattr(obj, "tolist", None)
    if tolist is not None:
        return tolist()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot send a {type(obj).__name__} in a packet")


class PacketWriter:
    """Write packets to one binary stream, small ones batched, images from their own memory.

    `busy` is true while a packet is half written: the runner's Ctrl-C handler waits for it.
    """

    def __init__(self, stream: BinaryIO, *, header: Packet | None = None) -> None:
        raw = getattr(stream, "raw", None)
        if raw is not None:
            stream.flush()
            stream = raw
        self._stream = stream
        self._pack = msgpack.Packer(default=_default).pack
        self._buf = bytearray(self._pack({"vflow": VERSION, **(header or {})}))
        self._since = time.monotonic()
        self.packets = 0
        self.bytes = 0
        self.busy = False

    def write(self, packet: Packet) -> None:
        self.busy = True
        image = packet.get("image")
        if image is None:
            self._buf += self._pack(packet)
            self.packets += 1
            if len(self._buf) >= FLUSH_AT or time.monotonic() - self._since > FLUSH_AFTER:
                self._flush()
        else:
            desc, payload = _image_wire(image)
            self._buf += self._pack({**packet, "image": desc})
            self._buf += b"\xc6" + len(payload).to_bytes(4, "big")
            self._flush()
            self._write_all(payload)
            self.packets += 1
        self.busy = False

    def flush(self) -> None:
        if self._buf:
            self.busy = True
            self._flush()
            self.busy = False

    def _flush(self) -> None:
        if self._buf:
            self._write_all(memoryview(self._buf))
            self._buf = bytearray()
        self._since = time.monotonic()

    def _write_all(self, data: memoryview) -> None:
        write = self._stream.write
        total = len(data)
        done = write(data)
        while done is not None and done < total:
            done += write(data[done:])
        self.bytes += total


def _image_wire(image: Any) -> tuple[Packet, memoryview]:
    """(descriptor, payload memory) for an ndarray or Encoded image."""
    if isinstance(image, Encoded):
        desc = {"format": image.format, "dtype": image.dtype, "shape": list(image.shape)}
        return desc, memoryview(image.data).cast("B")
    import numpy as np

    if not isinstance(image, np.ndarray):
        raise TypeError(f"a packet's image must be a numpy array, not {type(image).__name__}")
    name = image.dtype.name
    if name not in DTYPES:
        raise TypeError(f"a packet's image cannot have dtype {name}")
    if image.dtype.byteorder == ">" or not image.flags.c_contiguous:
        image = np.ascontiguousarray(image, image.dtype.newbyteorder("<"))
    desc = {"format": "raw", "dtype": name, "shape": list(image.shape)}
    return desc, _bytes_of(image)


def _bytes_of(array: Any) -> memoryview:
    """The memory of a C-contiguous array as bytes, without a copy."""
    import numpy as np

    return memoryview(array.reshape(-1).view(np.uint8))
