"""vflow graph: parallel workers on a CPU-heavy stage, and what a fan-out costs over a pipe."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.bench.common import Row, wall

ROOT = Path(__file__).resolve().parents[2]
BURN = ROOT / "examples" / "burn.py"
PACKETS = 400  # through burn.py at WORK units each: about 7 s on one core
WORK = 100000
FRAMES = 1000  # 640x480 test-card frames for the fan-out rows (0.92 GB)
SMALL = 200_000  # small packets for the fan-out rows


def rows() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="vflow-bench-graph-") as tmp:
        here = Path(tmp)
        return [*_workers(here), *_fan_out(here)]


def _spec(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def _workers(tmp: Path) -> list[Row]:
    def spec(workers: int) -> str:
        return _spec(
            tmp,
            f"burn{workers}.toml",
            f"""\
[nodes.src]
run = ["int", "1", "{PACKETS}"]
[nodes.burn]
python = ["{BURN}", "--work", "{WORK}"]
workers = {workers}
from = ["src"]
[nodes.out]
run = ["null"]
from = ["burn"]
""",
        )

    one_spec, two_spec = spec(1), spec(2)
    ones, twos = [], []
    for _ in range(3):  # interleaved, so that other load on the machine hits both alike
        ones.append(wall(f"vflow graph {one_spec}", repeat=1))
        twos.append(wall(f"vflow graph {two_spec}", repeat=1))
    one, two = min(ones), min(twos)
    cores = len(os.sched_getaffinity(0))
    speedup = one / two
    return [
        Row(
            f"graph: burn.py x{PACKETS} packets, workers = 2 ({cores} cores)",
            two,
            "s",
            "workers = 1",
            one,
            "speed-up >= 1.7x (time <= 0.59x)",
            speedup >= 1.7,
        )
    ]


def _fan_out(tmp: Path) -> list[Row]:
    card = f'"testcard", "--frames", "{FRAMES}"'
    linear = _spec(
        tmp,
        "linear.toml",
        f"""\
[nodes.src]
run = [{card}]
[nodes.out]
run = ["null"]
from = ["src"]
""",
    )
    fan = _spec(
        tmp,
        "fan.toml",
        f"""\
[nodes.src]
run = [{card}]
[nodes.a]
run = ["null"]
from = ["src"]
[nodes.b]
run = ["null"]
from = ["src"]
""",
    )
    small_linear = _spec(
        tmp,
        "small-linear.toml",
        f"""\
[nodes.src]
run = ["int", "1", "{SMALL}"]
[nodes.out]
run = ["null"]
from = ["src"]
""",
    )
    small_fan = _spec(
        tmp,
        "small-fan.toml",
        f"""\
[nodes.src]
run = ["int", "1", "{SMALL}"]
[nodes.a]
run = ["null"]
from = ["src"]
[nodes.b]
run = ["null"]
from = ["src"]
""",
    )
    shell = wall(f"vflow testcard --frames {FRAMES} | vflow null")
    graph_linear = wall(f"vflow graph {linear}")
    graph_fan = wall(f"vflow graph {fan}")
    small_pipe = wall(f"vflow graph {small_linear}")
    small_tee = wall(f"vflow graph {small_fan}")
    return [
        Row(
            f"graph: testcard x{FRAMES} -> null, linear spec",
            graph_linear,
            "s",
            "the same shell pipe",
            shell,
            "<= shell + 0.5 s (start-up)",
            graph_linear <= shell + 0.5,
        ),
        Row(
            f"graph: testcard x{FRAMES} -> 2 x null, fan-out",
            graph_fan,
            "s",
            "linear spec",
            graph_linear,
            "<= 2.5x",
            graph_fan <= 2.5 * graph_linear,
        ),
        Row(
            f"graph: int x{SMALL} -> 2 x null, fan-out",
            small_tee,
            "s",
            "linear spec",
            small_pipe,
            "reported (the runner relays each packet in Python)",
            None,
        ),
    ]
