"""A filter written for vflow-packet(5) as it was before trailers, with msgpack alone.

It forwards every map with a "vflow" key exactly as it came (a header to it; the trailer is
one too), and does not count what it passes on:

    oldfilter.py dropodd   drop the packets whose seq is odd
    oldfilter.py double    send every packet twice (the copy with "copy": true)
"""

from __future__ import annotations

import sys

import msgpack


def main() -> int:
    mode = sys.argv[1]
    out = sys.stdout.buffer
    pack = msgpack.Packer().pack
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    while chunk := sys.stdin.buffer.read1(1 << 16):
        unpacker.feed(chunk)
        for obj in unpacker:
            if isinstance(obj, dict) and "vflow" in obj:
                out.write(pack(obj))  # a header: pass it on as it is
            elif mode == "dropodd":
                if obj.get("seq", 0) % 2 == 0:
                    out.write(pack(obj))
            elif mode == "double":
                out.write(pack(obj))
                out.write(pack({**obj, "copy": True}))
            else:
                sys.exit(f"oldfilter.py: no mode {mode!r}")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
