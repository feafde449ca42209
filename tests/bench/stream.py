"""The packet stream itself: big frames, small packets, latency and start-up, each beside a peer."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.common import ENV, Row, wall

FRAMES = 200  # 1920x1080x3 frames: 1.24 GB through each pipe
SMALL = 1_000_000


def rows() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="vflow-bench-") as tmp:
        return [*_big_frames(Path(tmp)), *_small_packets(Path(tmp)), _latency(), _startup()]


def _big_frames(tmp: Path) -> list[Row]:
    stream = tmp / "hd.vflow"
    card = f"vflow testcard --size hd --frames {FRAMES}"
    subprocess.run(["bash", "-c", f"{card} > {stream}"], env=ENV, check=True)
    size = stream.stat().st_size
    ident = "vflow identity"
    # 1. the pipeline, five processes, beside five processes of cat moving the same bytes
    vflow_chain = wall(f"{card} | {ident} | {ident} | {ident} | vflow null")
    cat_chain = wall(f"cat {stream} | cat | cat | cat | cat > /dev/null")
    # 2. the framing alone: the same recorded stream through identity x3 + null, or cat x4
    vflow_file = wall(f"{ident} < {stream} | {ident} | {ident} | vflow null")
    cat_file = wall(f"cat < {stream} | cat | cat | cat > /dev/null")
    gb = size / 1e9
    return [
        Row(
            f"testcard hd | identity x3 | null ({FRAMES} frames, {gb:.2f} GB)",
            vflow_chain,
            "s",
            "cat file | cat x3 | cat",
            cat_chain,
            "<= 2.0x (aim 1.3x)",
            vflow_chain <= 2.0 * cat_chain,
        ),
        Row(
            "recorded hd stream: identity x3 | null",
            vflow_file,
            "s",
            "cat < file | cat x3",
            cat_file,
            "<= 2.0x (aim 1.3x)",
            vflow_file <= 2.0 * cat_file,
        ),
    ]


def _small_packets(tmp: Path) -> list[Row]:
    stream = tmp / "ints.vflow"
    subprocess.run(["bash", "-c", f"vflow int 0 {SMALL - 1} > {stream}"], env=ENV, check=True)
    through = wall(f"vflow identity < {stream} | vflow null")
    peer = wall(f"cat < {stream} | cat > /dev/null")
    produced = wall(f"vflow int 0 {SMALL - 1} | vflow identity | vflow null", repeat=1)
    return [
        Row(
            f"{SMALL:,} small packets: identity < file | null",
            SMALL / through,
            "packets/s",
            "cat < file | cat",
            SMALL / peer,
            ">= 200,000 packets/s",
            SMALL / through >= 200_000,
        ),
        Row(
            f"{SMALL:,} small packets: int | identity | null",
            SMALL / produced,
            "packets/s",
            "",
            None,
            "reported",
        ),
    ]


def _latency(repeat: int = 200) -> Row:
    """One small packet into a stage whose input stays open: how long until it comes out."""

    def measure(argv: list[str], packet: bytes, header: bytes) -> float:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ENV)
        assert proc.stdin and proc.stdout
        proc.stdin.write(header)
        proc.stdin.flush()
        if argv[0] != "cat":
            os.read(proc.stdout.fileno(), 64)  # identity's own header
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            proc.stdin.write(packet)
            proc.stdin.flush()
            got = 0
            while got < len(packet):
                got += len(os.read(proc.stdout.fileno(), 1 << 16))
            times.append(time.perf_counter() - start)
        proc.stdin.close()
        proc.wait()
        return statistics.median(times)

    import msgpack

    header = msgpack.packb({"vflow": 1})
    packet = msgpack.packb({"kind": "data", "seq": 1, "value": 1})  # about 30 bytes
    vflow = measure([sys.executable, "-m", "vflow_cli", "identity"], packet, header)
    cat = measure(["cat"], packet, header)
    return Row(
        "one small packet through identity, input held open",
        vflow * 1000,
        "ms",
        "through cat",
        cat * 1000,
        "arrives at once (no wait for more input)",
        vflow < 0.05,
    )


def _startup() -> Row:
    vflow = wall("vflow int 0 0 | vflow null", repeat=5)
    python = wall(f"{sys.executable} -c pass | {sys.executable} -c pass", repeat=5)
    return Row(
        "start-up: int 0 0 | null",
        vflow,
        "s",
        "python -c pass | python -c pass",
        python,
        "reported (lazy imports: no cv2, no numpy)",
    )
