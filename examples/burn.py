"""burn: a CPU-heavy processor in plain Python and msgpack, without vflow.

Reads a vflow packet stream on stdin, spends --work units of CPU on each packet, records the
result in the packet's "burn" field and writes it out. It shows that the packet format is
readable with msgpack alone, and it gives `workers = N` something worth spreading:

    [nodes.heavy]
    python = ["burn.py", "--work", "20000"]
    cwd = "."          # relative paths run from the spec's directory
    workers = 2
    from = ["src"]
"""

from __future__ import annotations

import argparse
import sys

import msgpack


def burn(seed: int, work: int) -> int:
    x = seed & 0xFFFF
    for i in range(work):
        x = (x * 1103515245 + 12345 + i) & 0x7FFFFFFF
    return x


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=int, default=20000, help="CPU units per packet")
    args = parser.parse_args()
    out = sys.stdout.buffer
    pack = msgpack.Packer().pack
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    out.write(pack({"vflow": 1}))
    out.flush()
    image_next = False
    stdin = sys.stdin.buffer
    try:
        while chunk := stdin.read1(1 << 16):
            unpacker.feed(chunk)
            for obj in unpacker:
                if image_next:  # the bin payload after a packet with an image: pass it on
                    out.write(pack(obj))
                    image_next = False
                    continue
                if not isinstance(obj, dict) or "vflow" in obj:
                    continue  # the stream header (ours was written above)
                obj["burn"] = burn(int(obj.get("seq", 0) or 0), args.work)
                out.write(pack(obj))
                image_next = "image" in obj
                if not image_next:
                    out.flush()
        out.flush()
    except BrokenPipeError:
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
