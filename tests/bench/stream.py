"""The packet stream itself: big frames, small packets, latency and start-up, each beside a peer."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.common import ENV, Row, wall

FRAMES = 200  # 1920x1080x3 frames: 1.24 GB through each pipe
# the same stages over 600 frames (3.7 GB a pipe): five Pythons starting (about 0.1 s of
# imports each, the start-up row) weigh on 200 frames; what a long stream costs shows here
STEADY = 600
SMALL = 1_000_000


def rows() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="vflow-bench-") as tmp:
        return [
            *_big_frames(Path(tmp)),
            *_pixels(Path(tmp), FRAMES),
            *_pixels(Path(tmp), STEADY, cpu=False),
            *_small_packets(Path(tmp)),
            _latency(),
            _startup(),
            *_detection(),
        ]


def _pixels(tmp: Path, frames: int, cpu: bool = True) -> list[Row]:
    """Stages that change pixels: shared memory between them (the default), the same pipe
    without it (VFLOW_SHM=0), and the stages in one process (vflow chain). Wall time, and
    the CPU time of every process: on a busy machine the second is the steadier figure."""
    stream = tmp / f"hd-{frames}.vflow"
    card = f"vflow testcard --size hd --frames {frames}"
    subprocess.run(["bash", "-c", f"{card} > {stream}"], env=ENV, check=True)
    flips = f"{card} | vflow flip | vflow flip v | vflow flip | vflow null"
    commands = {
        "shm": flips,
        "pipe": "export VFLOW_SHM=0; " + flips,
        "chain": f"{card} | vflow chain flip , flip v , flip | vflow null",
        "cat": f"cat {stream} | cat | cat | cat | cat > /dev/null",
    }
    walls: dict[str, list[float]] = {k: [] for k in commands}
    cpus: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(3):  # in turns: the machine's other work falls on each alike
        for key, command in commands.items():
            seconds, cpu = _wall_and_cpu(command)
            walls[key].append(seconds)
            cpus[key].append(cpu)
    stream.unlink()
    wall_of = {k: min(v) for k, v in walls.items()}
    cpu_of = {k: min(v) for k, v in cpus.items()}
    name = f"testcard hd | flip x3 | null ({frames} frames)"
    chain = f"testcard hd | chain flip , flip v , flip | null ({frames} frames)"
    rows = [
        Row(
            f"{name}, shared memory",
            wall_of["shm"],
            "s",
            "cat file | cat x3 | cat",
            wall_of["cat"],
            "<= 1.3x",
            wall_of["shm"] <= 1.3 * wall_of["cat"],
        ),
        Row(f"{name}, VFLOW_SHM=0", wall_of["pipe"], "s", "cat chain", wall_of["cat"], "reported"),
        Row(chain, wall_of["chain"], "s", "cat chain", wall_of["cat"], "reported"),
    ]
    if not cpu:
        return rows
    for key, label in (("shm", f"{name}, shared memory"), ("pipe", f"{name}, VFLOW_SHM=0")):
        rows.append(
            Row(f"{label}: CPU", cpu_of[key], "s", "cat chain: CPU", cpu_of["cat"], "reported")
        )
    rows.append(
        Row(f"{chain}: CPU", cpu_of["chain"], "s", "cat chain: CPU", cpu_of["cat"], "reported")
    )
    return rows


def _wall_and_cpu(command: str) -> tuple[float, float]:
    """Wall seconds of a bash command, and the CPU seconds (user + system) of all it ran."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        ["bash", "-c", "set -o pipefail; " + command],
        env=ENV,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def _detection() -> list[Row]:
    """The issue's detection row: five stages on pipes, the middle three also as one chain,
    beside decode + ONNX Runtime + the tracker in one Python process (tests.bench.detect)."""
    from tests.video_support import vtest_avi

    clip = vtest_avi()
    frames = 795
    size = "416x416"
    count = "line door 400,0,400,576"
    pipe = (
        f"vflow read {clip} | vflow detect --size {size} | vflow track | vflow {count} | vflow null"
    )
    chain = (
        f"vflow read {clip} | vflow chain 'detect --size {size}' , track , '{count}' | vflow null"
    )
    peer = f"{sys.executable} -m tests.bench.stream {clip} {size}"
    seen: dict[str, list[float]] = {"pipe": [], "chain": [], "peer": []}
    cpu: dict[str, list[float]] = {"pipe": [], "chain": [], "peer": []}
    for _ in range(2):
        for key, command in (("pipe", pipe), ("chain", chain), ("peer", peer)):
            seconds, used = _wall_and_cpu(command)
            seen[key].append(frames / seconds)
            cpu[key].append(used)
    pipe_fps, chain_fps, peer_fps = (max(seen[k]) for k in ("pipe", "chain", "peer"))
    name = f"768x576 read | detect --size {size} | track | line | null: frames/s"
    return [
        Row(
            name,
            pipe_fps,
            "fps",
            "one process: decode+ORT+tracker",
            peer_fps,
            ">= 0.9x",
            pipe_fps >= 0.9 * peer_fps,
        ),
        Row(
            "the same, detect+track+line as one vflow chain: frames/s",
            chain_fps,
            "fps",
            "one process",
            peer_fps,
            ">= 0.9x",
            chain_fps >= 0.9 * peer_fps,
        ),
        *(
            Row(
                f"the same, {label}: CPU seconds",
                min(cpu[key]),
                "s",
                "one process: CPU seconds",
                min(cpu["peer"]),
                "reported",
            )
            for key, label in (("pipe", "on pipes"), ("chain", "as a chain"))
        ),
    ]


def one_process(clip: str, size: str) -> int:
    """The peer: decode + YOLOX at `size` on ONNX Runtime + the tracker, in this process."""
    from tests.quality.pipeline import run
    from vflow_cli.vision.boxes import parse_input_size
    from vflow_cli.vision.detectors import Settings, open_detector
    from vflow_cli.vision.tracker import Tracker

    frames = 0
    for _ in run(Path(clip), open_detector(Settings(size=parse_input_size(size))), Tracker()):
        frames += 1
    return frames


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


if __name__ == "__main__":
    one_process(sys.argv[1], sys.argv[2])
