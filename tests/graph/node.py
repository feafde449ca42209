"""A test node in plain Python and msgpack (no vflow import): proves the format stands alone.

node.py slow SECONDS      pass packets on, sleeping SECONDS before each
node.py fail N            pass packets on, crash (exit 1, a traceback) on packet N
node.py env               for each packet, send one saying what CUDA_VISIBLE_DEVICES is
node.py double            send every packet twice (a stage that adds packets)
node.py drop N            pass only packets whose seq is a multiple of N (drops by content)
node.py hold K            pass packets on; on packet seq K wait (up to 60 s, then fail) for
                          the file $GATE, which a copy that passes on a packet after K makes
                          (with workers: K comes out after later packets were finished)
node.py produce N [S [P]] produce N packets (seq 0..N-1), sleeping S between them, each
                          with a field "pad" of P characters
"""

from __future__ import annotations

import os
import signal
import sys
import time

import msgpack


def packets():
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    stdin = sys.stdin.buffer
    while chunk := stdin.read1(1 << 16):
        unpacker.feed(chunk)
        for obj in unpacker:
            if isinstance(obj, dict) and "vflow" not in obj:
                yield obj


def hold(seq: int, held: int, gate: str) -> None:
    """Wait for the gate before passing on packet `held` (only another copy opens it: this
    one reads nothing while it waits)."""
    if seq != held:
        return
    end = time.monotonic() + 60
    while not os.path.exists(gate):
        if time.monotonic() > end:
            raise RuntimeError(f"nobody passed on a packet after {held} in 60 s")
        time.sleep(0.01)


def main() -> int:
    mode, args = sys.argv[1], sys.argv[2:]
    if os.environ.get("PIDFILE"):  # tests kill this node by its pid
        with open(os.environ["PIDFILE"], "w") as f:
            f.write(str(os.getpid()))
    out = sys.stdout.buffer
    pack = msgpack.Packer().pack
    out.write(pack({"vflow": 1}))
    out.flush()

    sent = 0

    def send(packet: dict) -> None:
        nonlocal sent
        out.write(pack(packet))
        out.flush()
        sent += 1

    def end() -> int:  # the trailer: this stream finished, it was not cut
        out.write(pack({"vflow": 1, "end": True, "packets": sent}))
        out.flush()
        return 0

    try:
        if mode == "produce":
            pause = float(args[1]) if len(args) > 1 else 0.0
            pad = {"pad": "x" * int(args[2])} if len(args) > 2 else {}
            for seq in range(int(args[0])):
                send({"kind": "data", "seq": seq, "value": seq, **pad})
                time.sleep(pause)
            return end()
        for n, packet in enumerate(packets(), 1):
            if mode == "slow":
                time.sleep(float(args[0]))
                send(packet)
            elif mode == "fail":
                if n == int(args[0]):
                    raise RuntimeError(f"packet {n} is one too many")
                send(packet)
            elif mode == "env":
                gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
                send({**packet, "gpu": gpu, "node": os.environ.get("VFLOW_GRAPH_NODE")})
            elif mode == "hang":
                send(packet)
            elif mode == "hold":
                hold(packet.get("seq", 0), int(args[0]), os.environ["GATE"])
                send(packet)
                if packet.get("seq", 0) > int(args[0]):
                    open(os.environ["GATE"], "a").close()  # after the packet went out
            elif mode == "drop":
                if packet.get("seq", 0) % int(args[0]) == 0:
                    send(packet)
            elif mode == "double":
                send(packet)
                send({**packet, "copy": True})
        if mode == "hang":
            if args[:1] == ["stubborn"]:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                time.sleep(1)
    except BrokenPipeError:
        return 141
    return end()


if __name__ == "__main__":
    sys.exit(main())
