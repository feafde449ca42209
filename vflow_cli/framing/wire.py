"""framing.wire: what is on the wire, and the limits a reader holds every stream to.

A stream is a plain sequence of msgpack objects (man/vflow-packet.5):

    {"vflow": 1}                            header: first object of every stream
    {"kind": "data", "seq": 0, ...}         a packet: one msgpack map
    {"kind": "frame", "image": {...}}       a packet carrying an image ...
    <bin: the image's bytes>                ... is followed by exactly one bin object
    {"vflow": 1, "end": true, "packets": N} trailer: a clean end (a header to old readers)

A stream that stops without its trailer was cut: a stage before this one died.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import msgpack

VERSION = 1  # major version of the packet format; a reader refuses any other
CHUNK = 1 << 16  # one read() asks for at most this much metadata
DEFAULT_MAX_PACKET = 1 << 30  # 1 GiB, a packet with its image; VFLOW_MAX_PACKET overrides
DEFAULT_MAX_META = 16 << 20  # 16 MiB, a packet without its image; VFLOW_MAX_META overrides
# items (array elements, map entries) one packet's metadata may hold: one per ITEM_BYTES of
# the metadata limit (524288 by default). Python spends up to ~70 bytes on an item, so even
# the most wasteful shape (empty maps in arrays) stays under 40 MB; detections cost ~10
# bytes an item on the wire, so legitimate metadata is far below this
ITEM_BYTES = 32
MAX_DEPTH = 1024  # msgpack's own nesting limit (its C parser's stack)
# metadata parsed from at most this many bytes is parsed without counting items: even the
# worst shape (~70 bytes of Python objects per wire byte) stays under 20 MB
CAREFUL_AT = 256 << 10
ENCODED_SLACK = 1 << 16  # a compressed image may exceed its raw size by this (headers)

Packet = dict[str, Any]

# dtypes a raw image may have on the wire; multi-byte ones are little-endian
DTYPES = {  # name -> bytes per value
    **{"uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "uint32": 4, "int32": 4},
    **{"uint64": 8, "int64": 8, "float16": 2, "float32": 4, "float64": 8},
}
ENCODINGS = frozenset({"jpeg", "png", "webp"})
BIN_HEADER = {0xC4: 1, 0xC5: 2, 0xC6: 4}  # bin8, bin16, bin32: bytes of length that follow
MAP_START = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])


class StreamError(Exception):
    """The input is not a well-formed vflow stream (the runner turns it into one line)."""


class StreamCut(StreamError):
    """The input ended without the trailer: whatever wrote it stopped before its end."""


class OutputError(OSError):
    """Packets could not be written (a full disk, a closed descriptor): the environment's
    problem, not vflow's. A reader that left (EPIPE) is BrokenPipeError instead."""


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


# -- control objects -------------------------------------------------------------------------


def header(**info: Any) -> Packet:
    """The object that opens a stream."""
    return {"vflow": VERSION, **info}


def trailer(packets: int) -> Packet:
    """The object that closes a stream cleanly; `packets` counts the packets since the header.

    It is a header to a reader that does not know trailers (readers skip repeated headers),
    so it needs no new major version."""
    return {"vflow": VERSION, "end": True, "packets": packets}


def is_trailer(obj: Packet) -> bool:
    return obj.get("end") is True


# -- limits ----------------------------------------------------------------------------------


def parse_bytes(text: str) -> int:
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


def _env_size(name: str, default: int) -> int:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise StreamError(f"{name}: {exc}") from None


def max_packet_size() -> int:
    """The largest packet (metadata plus image) a reader accepts: VFLOW_MAX_PACKET or 1 GiB."""
    return _env_size("VFLOW_MAX_PACKET", DEFAULT_MAX_PACKET)


def max_meta_size() -> int:
    """The largest metadata (a packet without its image): VFLOW_MAX_META or 16 MiB, and never
    more than the packet limit."""
    return min(_env_size("VFLOW_MAX_META", DEFAULT_MAX_META), max_packet_size())


def too_large(what: str, limit: int, variable: str) -> StreamError:
    from vflow_cli.console import human_bytes

    size = human_bytes(limit, binary=True)
    return StreamError(f"{what} is larger than the {size} limit (set {variable} to raise it)")


class _TooMany(Exception):
    pass


class Unpacker:
    """msgpack's Unpacker for metadata, with the limits of vflow-packet(5).

    careful=False parses at C speed, with per-container limits only; the reader uses it
    while a packet's metadata is smaller than CAREFUL_AT. careful=True also counts every
    item of a packet as it is parsed (a hook per container) and stops at max_items(), so
    no shape of metadata, however nested, costs more than that many Python objects.
    """

    def __init__(self, meta_limit: int, *, careful: bool) -> None:
        self.careful = careful
        self.items = items = max_items(meta_limit)
        self.left = items
        hooks: dict[str, Any] = {}
        if careful:

            def count(obj: Any) -> Any:
                self.left -= len(obj)
                if self.left < 0:
                    raise _TooMany
                return obj

            hooks = {"object_hook": count, "list_hook": count}
        self.raw = msgpack.Unpacker(
            max_buffer_size=meta_limit + 2 * CHUNK,
            max_str_len=meta_limit,
            max_bin_len=meta_limit,
            max_ext_len=meta_limit,
            max_array_len=items,
            max_map_len=items,
            strict_map_key=False,
            **hooks,
        )

    def reset(self) -> None:
        """A new top-level object starts: its own item budget."""
        self.left = self.items


def max_items(meta_limit: int) -> int:
    return max(1024, meta_limit // ITEM_BYTES)


def parse_error(exc: BaseException, number: int, meta_limit: int) -> StreamError:
    """The StreamError for an exception raised while parsing packet `number`'s metadata."""
    where = f"packet {number}"
    text = str(exc)
    if isinstance(exc, _TooMany) or re.search(r"exceeds max_(array|map)_len", text):
        return StreamError(
            f"{where} holds more than {max_items(meta_limit)} items in its metadata (arrays "
            "and maps; VFLOW_MAX_META / 32); "
            "a packet's metadata is for fields, not bulk data (send bulk data as an image)"
        )
    if re.search(r"exceeds max_(str|bin|ext)_len", text):
        return too_large(f"{where}'s metadata", meta_limit, "VFLOW_MAX_META")
    if isinstance(exc, msgpack.StackError):
        return StreamError(f"{where} is nested deeper than msgpack's {MAX_DEPTH} levels")
    return StreamError(f"{where} is not valid msgpack ({type(exc).__name__}: {exc})")


# -- images ----------------------------------------------------------------------------------


def check_image(desc: Any, number: int, max_packet: int) -> tuple[str, int, int]:
    """Check an image descriptor: (format, exact payload size or -1, most bytes allowed).

    Raw images have an exact size. A compressed image may not be larger than its raw size
    plus some slack: a claim of a gigabyte for a 4x4 JPEG is refused before anything is read.
    """
    where = f"packet {number}"
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
    raw = math.prod(shape) * DTYPES[dtype]
    if fmt == "raw":
        if raw > max_packet:
            raise too_large(
                f"{where}: a {'x'.join(map(str, shape))} {dtype} image",
                max_packet,
                "VFLOW_MAX_PACKET",
            )
        return fmt, raw, raw
    if fmt in ENCODINGS:
        return fmt, -1, min(max_packet, 2 * raw + ENCODED_SLACK)
    raise StreamError(f"{where}: image format {fmt!r} is not raw or one of {sorted(ENCODINGS)}")


def image_wire(image: Any) -> tuple[Packet, memoryview]:
    """(descriptor, payload memory) for an ndarray or Encoded image, without a copy."""
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
    return desc, bytes_of(image)


def bytes_of(array: Any) -> memoryview:
    """The memory of a C-contiguous array as bytes, without a copy."""
    import numpy as np

    return memoryview(array.reshape(-1).view(np.uint8))


def default(obj: Any) -> Any:
    """msgpack fallback for metadata: numpy scalars and small arrays become numbers and lists."""
    tolist = getattr(obj, "tolist", None)
    if tolist is not None:
        return tolist()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot send a {type(obj).__name__} in a packet")


# -- one packet on its own (a message on a network, a record in a file) -----------------------


def encode(packet: Packet) -> bytes:
    """One packet as bytes: its map, then its image's bin object if it has one.

    The same bytes it has inside a stream, without the stream's header and trailer: any
    msgpack library reads it back (see decode)."""
    pack = msgpack.Packer(default=default).pack
    image = packet.get("image")
    if image is None:
        return pack(packet)
    load = getattr(image, "load", None)  # an image still in the input (framing.Pending)
    if load is not None:
        image = load()
    desc, payload = image_wire(image)
    head = pack({**packet, "image": desc})
    return b"".join((head, b"\xc6", len(payload).to_bytes(4, "big"), payload))


def decode(data: bytes | bytearray | memoryview, *, copy: bool = True) -> Packet:
    """The packet that encode() made, checked against the same limits as a stream.

    A raw image becomes a numpy array: a copy of its bytes (copy=True), or with copy=False a
    view of `data` itself (writable only if `data` is). Raises StreamError."""
    view = memoryview(data).cast("B")
    meta_limit = max_meta_size()
    unpacker = Unpacker(meta_limit, careful=len(view) > CAREFUL_AT)
    raw = unpacker.raw
    try:
        raw.feed(view[: min(len(view), meta_limit + CHUNK)])
        packet = raw.unpack()
    except msgpack.OutOfData:  # (no BufferFull: what is fed fits the unpacker's buffer)
        raise StreamError("packet 1 is cut short (its map is incomplete)") from None
    except (ValueError, TypeError, OverflowError, _TooMany, msgpack.StackError) as exc:
        raise parse_error(exc, 1, meta_limit) from None
    if type(packet) is not dict:
        raise StreamError(f"a packet is a map, not a {type(packet).__name__}")
    end = raw.tell()
    if "image" not in packet:
        if end != len(view):
            raise StreamError(f"{len(view) - end} bytes follow the packet")
        return packet
    fmt, size, most = check_image(packet["image"], 1, max_packet_size())
    rest = view[end:]
    if not rest or rest[0] not in BIN_HEADER:
        raise StreamError("packet 1 has an 'image' but no bin payload after it")
    width = BIN_HEADER[rest[0]]
    length = int.from_bytes(rest[1 : 1 + width], "big")
    payload = rest[1 + width :]
    if len(payload) != length or (size >= 0 and length != size) or length > most:
        raise StreamError(
            f"packet 1: image payload of {len(payload)} bytes, expected "
            f"{size if size >= 0 else length}"
        )
    desc = packet["image"]
    if fmt != "raw":
        packet["image"] = Encoded(
            fmt, bytes(payload) if copy else payload, desc["shape"], desc.get("dtype", "uint8")
        )
        return packet
    import numpy as np

    dtype = np.dtype(desc.get("dtype", "uint8")).newbyteorder("<")
    array = np.frombuffer(payload, dtype).reshape(desc["shape"])
    packet["image"] = array.copy() if copy else array
    return packet
