"""detect and track: network inferences a second by input size and threads, and people
detection and tracking on the PETS 2009 clip (768x576, 795 frames) as a pipe and as a graph,
each beside the same work done in one Python process without pipes.

    python -m tests.bench detect                     # these rows only
    python -m tests.bench.detect CLIP                # the one-process peer alone

The machine may be busy with other work: every figure is the best of several runs taken in
turns with its peer, and the row's name gives the range seen.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.bench.common import Row, wall

SIZES = [(416, 416), (480, 352), (544, 416), (640, 480), (640, 640), (768, 576)]
ROUNDS = 3


def _inferences(threads: int, size: tuple[int, int], seconds: float = 1.0) -> float:
    import numpy as np

    from vflow_cli.vision.runtime import open_session
    from vflow_cli.vision.yolox import EXPECTED, bundled_model

    session = open_session(bundled_model(), threads=threads, device="cpu", expected=EXPECTED)
    w, h = size
    blob = np.full((1, 3, h, w), 114, np.float32)
    for _ in range(3):
        session.run(None, {"images": blob})
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, {"images": blob})
        runs += 1
    return runs / (time.perf_counter() - start)


def _range(values: list[float]) -> str:
    return f"{min(values):.0f}-{max(values):.0f}"


def inference_rows() -> list[Row]:
    rows = []
    for threads in (1, 2):
        seen: dict[tuple[int, int], list[float]] = {size: [] for size in SIZES}
        for _ in range(ROUNDS):  # in turns: a busy spell hits every size alike
            for size in SIZES:
                seen[size].append(_inferences(threads, size))
        square = max(seen[(416, 416)])
        for size in SIZES:
            w, h = size
            note = " (detect's default for 768x576 frames)" if size == (768, 576) else ""
            rows.append(
                Row(
                    f"YOLOX-Nano {w}x{h}{note}, {threads} thread(s): inferences/s "
                    f"[{_range(seen[size])}]",
                    max(seen[size]),
                    "/s",
                    "416x416, same threads" if size != (416, 416) else "",
                    square if size != (416, 416) else None,
                    "reported",
                )
            )
    return rows


def one_process(video: str) -> int:
    """decode + YOLOX on ONNX Runtime + the tracker, in this process, results discarded."""
    from tests.quality.pipeline import run
    from vflow_cli.vision.detectors import Settings, open_detector
    from vflow_cli.vision.tracker import Tracker

    frames = 0
    for _ in run(Path(video), open_detector(Settings()), Tracker()):
        frames += 1
    return frames


def pipeline_rows() -> list[Row]:
    from tests.video_support import vtest_avi

    clip = vtest_avi()
    frames = 795
    peer = f"{sys.executable} -m tests.bench.detect {clip}"
    count = "vflow line door 400,0,400,576 | vflow annotate"
    pipe = f"vflow read {clip} | vflow detect | vflow track | {count} | vflow null"
    # the speed goal, at the default size (768x576 here), beside the old default
    bare = f"vflow read {clip} | vflow detect | vflow track | vflow null"
    small = f"vflow read {clip} | vflow detect --size 544x416 | vflow track | vflow null"
    with tempfile.TemporaryDirectory(prefix="vflow-bench-detect-") as tmp:
        spec = Path(tmp) / "detect.toml"
        spec.write_text(
            f"""\
[nodes.read]
run = ["read", "{clip}"]
[nodes.detect]
run = ["detect", "--threads", "1"]
workers = 2
from = ["read"]
[nodes.track]
run = ["track"]
from = ["detect"]
[nodes.line]
run = ["line", "door", "400,0,400,576"]
from = ["track"]
[nodes.annotate]
run = ["annotate"]
from = ["line"]
[nodes.out]
run = ["null"]
from = ["annotate"]
"""
        )
        pipes, graphs, peers, bares, smalls = [], [], [], [], []
        for _ in range(ROUNDS):
            bares.append(frames / wall(bare, repeat=1))
            smalls.append(frames / wall(small, repeat=1))
            pipes.append(frames / wall(pipe, repeat=1))
            graphs.append(frames / wall(f"vflow graph {spec}", repeat=1))
            peers.append(frames / wall(peer, repeat=1))
    best_pipe, best_graph, best_peer = max(pipes), max(graphs), max(peers)
    return [
        Row(
            f"read | detect | track | null, vtest.avi 768x576: frames/s [{_range(bares)}]",
            max(bares),
            "fps",
            f"the same with detect --size 544x416 (the old default) [{_range(smalls)}]",
            max(smalls),
            ">= 30 fps",
            max(bares) >= 30,
        ),
        Row(
            "read | detect | track | line | annotate | null, vtest.avi 768x576: frames/s "
            f"[{_range(pipes)}]",
            best_pipe,
            "fps",
            f"one process: decode+ORT+tracker [{_range(peers)}]",
            best_peer,
            ">= 30 fps, >= 0.85x one process",
            best_pipe >= 30 and best_pipe >= 0.85 * best_peer,
        ),
        Row(
            "graph: read, detect x2 workers (1 thread each), track, line, annotate, null "
            f"[{_range(graphs)}]",
            best_graph,
            "fps",
            "one process",
            best_peer,
            "reported",
        ),
    ]


def rows() -> list[Row]:
    return [*inference_rows(), *pipeline_rows()]


if __name__ == "__main__":
    one_process(sys.argv[1])
