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

import errno
import math
import os
import queue
import stat
import sys
import threading
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
LAZY_AT = 1 << 16  # images larger than this may stay in the input until needed (Pending)
BACKGROUND_AT = 1 << 18  # images this large are written by a helper thread
PIPE_SIZE = 1 << 20  # ask the kernel for pipes this large (fewer context switches)

Packet = dict[str, Any]

# dtypes a raw image may have on the wire; multi-byte ones are little-endian
DTYPES = {  # name -> bytes per value
    **{"uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "uint32": 4, "int32": 4},
    **{"uint64": 8, "int64": 8, "float16": 2, "float32": 4, "float64": 8},
}
ENCODINGS = frozenset({"jpeg", "png", "webp"})
_BIN_HEADER = {0xC4: 1, 0xC5: 2, 0xC6: 4}  # bin8, bin16, bin32: bytes of length that follow
_MAP_START = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])


class StreamError(Exception):
    """The input is not a well-formed vflow stream (the runner turns it into one line)."""


class Encoded:
    """An image kept compressed inside a packet (see `vflow jpeg`); `shape` is the decoded shape."""

    __slots__ = ("data", "dtype", "format", "shape")

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
        lazy: bool = False,
    ) -> None:
        raw = getattr(stream, "raw", None)
        if raw is not None:
            # a BufferedReader nobody has read from yet: read the file itself, so a read is one
            # syscall and a payload lands in its array without passing through a buffer
            stream = raw
        self._stream = stream
        self._fd = _fileno(stream)
        self.lazy = lazy  # leave large images in the input until someone needs them
        self._pending: Pending | None = None
        self._read = getattr(stream, "read1", None) or stream.read
        self._readinto = stream.readinto  # type: ignore[attr-defined]
        self._on_idle = on_idle or (lambda: None)
        self.max_packet = max_packet or max_packet_size()
        self.name = name
        self.packets = 0  # packets handed out
        self.bytes = 0  # bytes read
        self.header: Packet | None = None
        self._pool = ArrayPool()
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
            raise StreamError(
                f"{self.name} is not a vflow stream (it starts with {_describe(chunk)})"
            )
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
            if self._pending is not None:
                self._settle()
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
            except (ValueError, TypeError, OverflowError) as exc:
                # FormatError, StackError, a container over the limits, an unhashable map key
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
        have = min(len(pending), length)
        head = bytes(pending[:have])
        pending = pending[have:]
        self._unpacker = self._new_unpacker()
        self._chunk = b""
        if len(pending):  # the payload ended inside the last chunk: the rest is the next packet
            rest = bytes(pending)
            self._chunk = rest
            self._fed = len(rest)
            self._unpacker.feed(rest)
        image = Pending(self, desc, make, length, head)
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
        value, target = image.make(image.nbytes)
        have = len(image.head)
        target[:have] = image.head
        self._read_exact(target[have:], image.number)
        image.value = value

    def _read_exact(self, target: memoryview, number: int) -> None:
        got, length = 0, len(target)
        if length:
            self._on_idle()
        while got < length:
            n = self._readinto(target[got:])
            if not n:
                raise StreamError(
                    f"input ended in the middle of packet {number} "
                    f"(its image was {length - got} bytes short; was the stage before killed?)"
                )
            got += n
            self.bytes += n

    def _discard(self, image: Pending) -> None:
        """Skip an image nobody kept, without copying it into this process where possible."""
        left = image.nbytes - len(image.head)
        moved = _splice(self._fd, _devnull(), left)
        self.bytes += moved
        left -= moved
        scratch = memoryview(bytearray(min(left, 1 << 20)))
        while left:
            self._read_exact(scratch[: min(left, len(scratch))], image.number)
            left -= min(left, len(scratch))
        image.head = b""

    def forward(self, image: Pending, out_fd: int | None, write: Callable[[Any], None]) -> None:
        """Send an image that is still in the input straight to an output (splice(2))."""
        if self._pending is not image or image.forwarded:
            raise RuntimeError("an image left in the input was passed on twice or too late")
        write(memoryview(image.head))
        left = image.nbytes - len(image.head)
        if out_fd is not None:
            self._on_idle()
            moved = _splice(self._fd, out_fd, left)
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
            # no numpy here: a stage that only passes images on never needs it
            size = math.prod(shape) * DTYPES[dtype]
            if size > self.max_packet:
                raise StreamError(
                    f"{where}: a {'x'.join(map(str, shape))} {dtype} image is larger than the "
                    f"{self.max_packet}-byte limit (set VFLOW_MAX_PACKET to raise it)"
                )

            def make(length: int):
                import numpy as np

                array = self._pool.get(shape, np.dtype(dtype).newbyteorder("<"))
                return array, _bytes_of(array)

            return size, make
        if fmt in ENCODINGS:

            def make_encoded(length: int):
                data = bytearray(length)
                return Encoded(fmt, data, shape, dtype), memoryview(data)

            return -1, make_encoded
        raise StreamError(f"{where}: image format {fmt!r} is not raw or one of {sorted(ENCODINGS)}")


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
        "make",
        "nbytes",
        "number",
        "reader",
        "shape",
        "value",
    )

    def __init__(self, reader: PacketReader, desc: Packet, make: Any, nbytes: int, head: bytes):
        self.reader = reader
        self.format = desc.get("format", "raw")
        self.dtype = desc.get("dtype", "uint8")
        self.shape = tuple(desc["shape"])
        self.make = make
        self.nbytes = nbytes
        self.head = head  # the first bytes, already read with the packet's map
        self.value: Any = None
        self.forwarded = False
        self.number = reader.packets + 1  # its packet's place in the stream

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

    def describe(self) -> Packet:
        return {"format": self.format, "dtype": self.dtype, "shape": list(self.shape)}


def _fileno(stream: Any) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None  # an in-memory stream (tests)


_DEVNULL: list[int] = []


def _devnull() -> int:
    if not _DEVNULL:
        _DEVNULL.append(os.open(os.devnull, os.O_WRONLY))
    return _DEVNULL[0]


def _splice(src: int | None, dst: int | None, count: int) -> int:
    """Move up to count bytes from src to dst inside the kernel; returns how many moved.

    Where splice(2) does not apply (neither end a pipe, not Linux) it moves nothing and the
    caller copies the rest. A closed reader raises BrokenPipeError as a write would.
    """
    splice = getattr(os, "splice", None)
    if src is None or dst is None or splice is None or count <= 0:
        return 0
    moved = 0
    while moved < count:
        try:
            n = splice(src, dst, min(count - moved, 1 << 20))
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EBADF) and moved == 0:
                return 0  # e.g. file to file: copy instead
            raise
        if n == 0:
            break  # end of input: the caller's copy loop reports the truncation
        moved += n
    return moved


class ArrayPool:
    """Arrays for incoming images, used again once nobody else holds them.

    A fresh multi-megabyte array costs the kernel a page-zeroing pass every frame (measured:
    about 2 ms for 1080p, as much as the copy out of the pipe). An array in the pool whose
    only references are the pool's own is free: no stage, packet or writer can see it.
    """

    KEEP = 4  # arrays kept per shape
    SHAPES = 4  # shapes kept

    def __init__(self) -> None:
        self._arrays: dict[tuple[Any, ...], list[Any]] = {}
        self._free = self._count_when_free()

    @staticmethod
    def _count_when_free() -> int:
        """What get()'s test reports for an object only the pool holds.

        Measured, not assumed: interpreters differ in the references a loop variable and a
        call argument add (CPython 3.14 borrows some), and a wrong guess would hand out an
        array that a packet still uses.
        """
        probe = [object()]
        for item in probe:
            return sys.getrefcount(item)
        raise AssertionError("unreachable")

    def get(self, shape: list[int], dtype: Any) -> Any:
        import numpy as np

        key = (*shape, dtype.str)
        arrays = self._arrays.get(key)
        if arrays is None:
            if len(self._arrays) >= self.SHAPES:
                self._arrays.clear()
            arrays = self._arrays[key] = []
        for array in arrays:
            if sys.getrefcount(array) == self._free:  # only the pool's list holds it
                return array
        array = np.empty(shape, dtype)
        if len(arrays) < self.KEEP:
            arrays.append(array)
        return array


def _default(obj: Any) -> Any:
    """msgpack fallback for metadata: numpy scalars and small arrays become numbers and lists."""
    tolist = getattr(obj, "tolist", None)
    if tolist is not None:
        return tolist()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot send a {type(obj).__name__} in a packet")


class PacketWriter:
    """Write packets to one binary stream: small ones batched, images from their own memory.

    A large image is handed to a helper thread that writes it while the stage reads and
    works on the next packet: a stage then streams like `cat` instead of reading a whole
    frame, then writing a whole frame, in lockstep with its neighbours. At most one such
    image is in flight; order on the wire is always the order of write() calls.

    `busy` is true while write() runs: the runner's Ctrl-C handler lets it finish the packet.
    """

    def __init__(self, stream: BinaryIO, *, header: Packet | None = None) -> None:
        raw = getattr(stream, "raw", None)
        if raw is not None:
            stream.flush()
            stream = raw
        self._stream = stream
        self._fd = _fileno(stream)
        self._pack = msgpack.Packer(default=_default).pack
        self._buf = bytearray(self._pack({"vflow": VERSION, **(header or {})}))
        self._since = time.monotonic()
        self.packets = 0
        self.bytes = 0
        self.busy = False
        # the helper thread, started by the first large image
        self._jobs: queue.SimpleQueue | None = None
        self._done = threading.Condition()
        self._queued = 0  # jobs not yet written
        self._images = 0  # of which large images
        self._error: BaseException | None = None

    def write(self, packet: Packet) -> None:
        self.busy = True
        image = packet.get("image")
        if image is None:
            self._buf += self._pack(packet)
        elif type(image) is Pending and image.value is None:
            self._buf += self._pack({**packet, "image": image.describe()})
            self._buf += b"\xc6" + image.nbytes.to_bytes(4, "big")
            self._drain()  # what came before is written before the image moves
            image.reader.forward(image, self._fd, self._write_now)
        else:
            desc, payload = _image_wire(image)
            self._buf += self._pack({**packet, "image": desc})
            self._buf += b"\xc6" + len(payload).to_bytes(4, "big")
            if len(payload) >= BACKGROUND_AT:
                self._write_in_background(payload)
            elif len(payload) >= FLUSH_AT:
                self._flush()
                self._write_now(payload)
            else:
                self._buf += payload  # a thumbnail or a JPEG: one small copy beats a syscall
        self.packets += 1
        if len(self._buf) >= FLUSH_AT or time.monotonic() - self._since > FLUSH_AFTER:
            self._flush()
        self.busy = False

    def push(self) -> None:
        """Send what is batched, without waiting for an image the helper thread is writing.

        The reader calls this before it blocks (on_idle), so a lone packet leaves at once.
        """
        if self._buf:
            self.busy = True
            self._flush()
            self.busy = False

    def flush(self) -> None:
        """Send everything and wait until it is written."""
        self.busy = True
        self._drain()
        self.busy = False

    def close(self) -> None:
        """flush(), and stop the helper thread (end of stream)."""
        self.flush()
        if self._jobs is not None:
            self._jobs.put(None)
            self._jobs = None

    def _drain(self) -> None:
        self._flush()
        if self._queued:
            with self._done:
                while self._queued:
                    self._done.wait()
        self._raise()

    def _flush(self) -> None:
        if self._buf:
            buf, self._buf = self._buf, bytearray()
            if self._queued:  # the helper still has bytes to write: ours go after them
                self._submit(memoryview(buf), image=False)
            else:
                self._write_now(memoryview(buf))
        self._since = time.monotonic()

    def _write_in_background(self, payload: memoryview) -> None:
        if self._jobs is None:
            self._jobs = queue.SimpleQueue()
            threading.Thread(target=self._helper, name="vflow-writer", daemon=True).start()
        with self._done:
            while self._images and self._error is None:
                self._done.wait()  # one image in flight at most: memory stays bounded
        buf, self._buf = self._buf, bytearray()
        self._submit(memoryview(buf), image=False)
        self._submit(payload, image=True)

    def _submit(self, data: memoryview, *, image: bool) -> None:
        self._raise()
        assert self._jobs is not None
        with self._done:
            self._queued += 1
            self._images += image
        self.bytes += len(data)
        self._jobs.put((data, image))

    def _helper(self) -> None:
        jobs = self._jobs
        assert jobs is not None
        while (job := jobs.get()) is not None:
            data, image = job
            try:
                if self._error is None:
                    self._write_all(data)
            except BaseException as exc:  # a closed pipe: the stage's thread raises it
                self._error = exc
            with self._done:
                self._queued -= 1
                self._images -= image
                self._done.notify_all()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _write_now(self, data: memoryview) -> None:
        self._raise()
        self.bytes += len(data)
        self._write_all(data)

    def _write_all(self, data: memoryview) -> None:
        write = self._stream.write
        total = len(data)
        done = write(data)
        while done is not None and done < total:
            done += write(data[done:])


def _image_wire(image: Any) -> tuple[Packet, memoryview]:
    """(descriptor, payload memory) for an ndarray or Encoded image."""
    if type(image) is Pending:
        image = image.load()
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
