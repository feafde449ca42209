"""framing: the only package that knows the vflow wire format (man/vflow-packet.5).

wire.py     what is on the wire: header, packet, payload, trailer; the limits;
            encode()/decode() of one packet on its own
reader.py   PacketReader: a stream -> packets (images read straight into arrays)
writer.py   PacketWriter: packets -> a stream (images written from their own memory)
arrays.py   the arrays images are read into, reused once free
pipes.py    pipe sizes and splice(2), which reader and writer share
"""

from typing import TYPE_CHECKING, Any

from vflow_cli.framing.wire import (
    VERSION,
    Encoded,
    OutputError,
    Packet,
    StreamCut,
    StreamError,
    decode,
    encode,
    header,
    max_meta_size,
    max_packet_size,
    parse_bytes,
    trailer,
)

if TYPE_CHECKING:
    from vflow_cli.framing.arrays import ArrayPool
    from vflow_cli.framing.pipes import widen_pipe
    from vflow_cli.framing.reader import PacketReader, Pending
    from vflow_cli.framing.writer import PacketWriter

# imported when first asked for: a producer never loads the reader, a consumer never the
# writer (every stage's start-up pays for what it imports)
_LAZY = {
    "ArrayPool": "arrays",
    "widen_pipe": "pipes",
    "PacketReader": "reader",
    "Pending": "reader",
    "PacketWriter": "writer",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vflow_cli.framing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"vflow_cli.framing.{module}"), name)


__all__ = [
    "VERSION",
    "ArrayPool",
    "Encoded",
    "OutputError",
    "Packet",
    "PacketReader",
    "PacketWriter",
    "Pending",
    "StreamCut",
    "StreamError",
    "decode",
    "encode",
    "header",
    "max_meta_size",
    "max_packet_size",
    "parse_bytes",
    "trailer",
    "widen_pipe",
]
