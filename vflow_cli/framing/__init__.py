"""framing: the only package that knows the vflow wire format (man/vflow-packet.5).

wire.py     what is on the wire: header, packet, payload, trailer; the limits;
            encode()/decode() of one packet on its own
reader.py   PacketReader: a stream -> packets (images read straight into arrays)
writer.py   PacketWriter: packets -> a stream (images written from their own memory)
pipes.py    pipe sizes and splice(2), which reader and writer share
"""

from vflow_cli.framing.arrays import ArrayPool
from vflow_cli.framing.pipes import widen_pipe
from vflow_cli.framing.reader import PacketReader, Pending
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
    parse_size,
    trailer,
)
from vflow_cli.framing.writer import PacketWriter

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
    "parse_size",
    "trailer",
    "widen_pipe",
]
