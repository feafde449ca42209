"""What the benchmark modules share: timing a shell command, and the table."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BIN = str(Path(sys.executable).parent)
ENV = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}


@dataclass
class Row:
    name: str  # what was measured
    value: float  # vflow's number
    unit: str  # "s" for wall time, or e.g. "packets/s"
    peer: str = ""  # what it is compared with
    peer_value: float | None = None
    target: str = ""  # e.g. "<= 2.0x (aim 1.3x)"
    ok: bool | None = None  # met the target?


def wall(command: str, repeat: int = 3) -> float:
    """Best wall time of a bash command over `repeat` runs: the machine's other work only ever
    adds time. pipefail: a failing stage fails the benchmark."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            ["bash", "-c", "set -o pipefail; " + command],
            env=ENV,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - start)
    return min(times)


def print_table(rows: list[Row]) -> None:
    header = ("benchmark", "vflow", "peer", "peer value", "ratio", "target", "met")
    lines = [header]
    for r in rows:
        ratio = ""
        if r.peer_value:
            ratio = f"{r.value / r.peer_value:.2f}x"
        lines.append(
            (
                r.name,
                f"{r.value:,.3f} {r.unit}" if r.value < 1000 else f"{r.value:,.0f} {r.unit}",
                r.peer,
                "" if r.peer_value is None else f"{r.peer_value:,.3f} {r.unit}",
                ratio,
                r.target,
                {None: "", True: "yes", False: "NO"}[r.ok],
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for i, line in enumerate(lines):
        print(" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("-+-".join("-" * w for w in widths))
