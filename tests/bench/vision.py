"""The counting and drawing stages: what annotate costs a frame at 768x576 and 1080p, and what
line, zone and blur cost in a pipe, each beside `vflow identity` moving the same stream.

The streams are synthetic tracked scenes (tests/scene.py): 12 people walking, a counting
line and a zone, at the two frame sizes. `annotate` is in the issue's speed path
(`read | detect | track | line | annotate | null` at 30 fps or more on 2 cores), so its
budget is a few milliseconds a frame.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.bench.common import ENV, Row, wall
from tests.scene import Walker, stream
from vflow_cli.framing import PacketWriter

FRAMES = 300
SIZES = {"768x576": (768, 576), "1080p": (1920, 1080)}  # 400 MB and 1.9 GB of raw frames
PEOPLE = 12


def walkers(width: int, height: int) -> list[Walker]:
    s = height / 576
    people = []
    for i in range(PEOPLE):
        y = (120 + i * 35) * s
        start, end = (50 + (i * 53) % 300) * s, (700 - (i * 37) % 300) * s
        keys = [(0, start, y), (FRAMES // 2, end, y), (FRAMES - 1, start, y)]
        people.append(Walker(i + 1, keys, size=(30 * s, 80 * s)))
    return people


def line_and_zone(width: int, height: int) -> tuple[str, list[str]]:
    s = height / 576
    door = ",".join(str(round(v * s)) for v in (400, 0, 400, 576))
    corners = [f"{round(x * s)},{round(y * s)}" for x, y in ((450, 380), (750, 380), (750, 560))]
    return door, corners


def _in_process(width: int, height: int) -> list[float]:
    """ms per frame of annotate's drawing alone (no pipes), 12 people, a line and a zone."""
    from vflow_cli.vision.draw import Painter
    from vflow_cli.vision.objects import objects_of

    painter = Painter()
    door, corners = line_and_zone(width, height)
    points = [float(v) for v in door.split(",")]
    polygon = [[float(v) for v in c.split(",")] for c in corners]
    times = []
    for packet in stream(walkers(width, height), FRAMES, size=(width, height), raw=True):
        if packet.get("kind") != "frame":
            continue
        packet["lines"] = {"door": {"points": points, "in": 12, "out": 7}}
        packet["zones"] = {"till": {"polygon": polygon, "occupancy": 2, "entries": 9, "exits": 7}}
        image = packet["image"]
        start = time.perf_counter()
        painter.paint(image, packet, objects_of(packet))
        times.append((time.perf_counter() - start) * 1000)
    return times


def _heat_in_process(width: int, height: int) -> list[float]:
    """ms per frame of annotate --heatmap's part alone: add the feet, draw the heat."""
    from vflow_cli.vision.heatmap import Heat
    from vflow_cli.vision.objects import objects_of

    heat = Heat()
    times = []
    for packet in stream(walkers(width, height), FRAMES, size=(width, height), raw=True):
        if packet.get("kind") != "frame":
            continue
        start = time.perf_counter()
        heat.add(objects_of(packet), packet["t"], (width, height))
        heat.draw(packet["image"])
        times.append((time.perf_counter() - start) * 1000)
    return times


def rows() -> list[Row]:
    out: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="vflow-bench-vision-") as tmp:
        for label, (width, height) in SIZES.items():
            times = _in_process(width, height)
            median = statistics.median(times)
            out.append(
                Row(
                    f"annotate {label}, {PEOPLE} tracks + line + zone: drawing per frame",
                    median,
                    "ms",
                    "",
                    None,
                    "<= 3 ms (768x576), reported (1080p)",
                    median <= 3.0 if label == "768x576" else None,
                )
            )
            heat = statistics.median(_heat_in_process(width, height))
            out.append(
                Row(
                    f"annotate --heatmap {label}: the heat overlay per frame",
                    heat,
                    "ms",
                    "annotate's drawing, same frames",
                    median,
                    "reported",
                )
            )
            out.extend(_pipes(Path(tmp), label, width, height))
    return out


def _pipes(tmp: Path, label: str, width: int, height: int) -> list[Row]:
    recording = tmp / f"scene-{label}.vflow"
    door, corners = line_and_zone(width, height)
    with recording.open("wb") as f:
        writer = PacketWriter(f)
        for packet in stream(walkers(width, height), FRAMES, size=(width, height), raw=True):
            writer.write(packet)
        writer.close()
    # the counters first, so that annotate has lines and zones to draw
    counted = tmp / f"counted-{label}.vflow"
    subprocess.run(
        [
            "bash",
            "-c",
            f"vflow line door {door} < {recording} | vflow zone till "
            f"{' '.join(corners)} > {counted}",
        ],
        env=ENV,
        check=True,
    )
    empty = tmp / "empty.vflow"
    with empty.open("wb") as f:
        PacketWriter(f).close()
    ident = wall(f"vflow identity < {counted} | vflow null")
    ident_raw = wall(f"vflow identity < {recording} | vflow null")
    annotate = wall(f"vflow annotate < {counted} | vflow null")
    stamp = wall(f"vflow stamp '{{seq}}' < {counted} | vflow null")  # a stage that draws little
    # start-up (annotate imports cv2 and numpy; identity neither), measured apart
    ident_start = wall(f"vflow identity < {empty} | vflow null")
    annotate_start = wall(f"vflow annotate < {empty} | vflow null")
    line = wall(f"vflow line door {door} < {recording} | vflow null")
    zone = wall(f"vflow zone till {' '.join(corners)} < {recording} | vflow null")
    fps = FRAMES / annotate
    added = ((annotate - annotate_start) - (ident - ident_start)) / FRAMES * 1000
    return [
        Row(
            f"annotate in a pipe, {label}: time per frame beyond identity's (start-up apart)",
            added,
            "ms",
            "",
            None,
            "<= 5 ms (768x576), reported (1080p)",
            added <= 5.0 if label == "768x576" else None,
        ),
        Row(
            f"annotate < {label} stream | null ({FRAMES} frames)",
            fps,
            "frames/s",
            "stamp '{seq}' < same | null",
            FRAMES / stamp,
            ">= 30 frames/s" if label == "768x576" else "reported",
            fps >= 30 if label == "768x576" else None,
        ),
        Row(
            f"line < {label} stream | null",
            FRAMES / line,
            "frames/s",
            "identity < same | null",
            FRAMES / ident_raw,
            "reported",
        ),
        Row(
            f"zone < {label} stream | null",
            FRAMES / zone,
            "frames/s",
            "identity < same | null",
            FRAMES / ident_raw,
            "reported",
        ),
    ]
