"""busy: where a stage's time goes: working, waiting for input, waiting for output.

    reader ──(waiting for input)──> stage ──(waiting for output)──> writer
                                    busy: the rest of the run

The runner measures every stage this way (-v prints it). A chain also measures each of
its stages (chain.Clock). Under `vflow graph` (VFLOW_REPORT=FILE) a stage writes its
numbers to FILE about once a second and at its end, and the graph names its bottleneck.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

REPORT = "VFLOW_REPORT"
EVERY = 1.0  # seconds between two saves of the numbers


def timed(packets: Iterator[Any], spent: Callable[[float, float], None]) -> Iterator[Any]:
    """What `packets` gives, calling spent(seconds inside its next(), now) for each packet
    and for its end."""
    clock = time.perf_counter
    while True:
        start = clock()
        try:
            packet = next(packets)
        except StopIteration:
            now = clock()
            spent(now - start, now)
            return
        now = clock()
        spent(now - start, now)
        yield packet


class Meter:
    """Seconds one process spent waiting for input, waiting for output, and busy."""

    def __init__(self, name: str, clock: Any = None) -> None:
        self.name = name
        self.clock = clock  # a chain.Clock, for each stage of a chain
        self.started = time.perf_counter()
        self.input = 0.0
        self.output = 0.0
        self.consumer = False
        self._path = os.environ.get(REPORT) or None
        self._saved = self.started

    def reading(self, packets: Iterator[Any]) -> Iterator[Any]:
        return timed(packets, self._waited)

    def _waited(self, seconds: float, now: float) -> None:
        self.input += seconds
        if self._path and now - self._saved > EVERY:
            self.save(now)

    def writing(self, write: Callable[[Any], None]) -> Callable[[Any], None]:
        clock = time.perf_counter

        def timed(packet: Any) -> None:
            start = clock()
            write(packet)
            now = clock()
            self.output += now - start
            if self._path and now - self._saved > EVERY:
                self.save(now)

        return timed

    def numbers(self, now: float | None = None) -> dict[str, Any]:
        """{"wall", "input", "output", "stages": [[name, busy seconds], ...]}."""
        wall = (now or time.perf_counter()) - self.started
        clock = self.clock
        if clock is None:
            stages = [[self.name, max(0.0, wall - self.input - self.output)]]
        else:
            stages = []
            before = self.input
            for name, inside in zip(clock.names, clock.inside, strict=False):
                stages.append([name, max(0.0, inside - before)])
                before = inside
            if len(stages) < len(clock.names):  # a consumer at the end: the rest is its own
                stages.append([clock.names[-1], max(0.0, wall - before - self.output)])
        return {"wall": wall, "input": self.input, "output": self.output, "stages": stages}

    def save(self, now: float | None = None) -> None:
        """Write the numbers to VFLOW_REPORT (a whole file, replaced at once)."""
        self._saved = now or time.perf_counter()
        if not self._path:
            return
        import json  # not at start-up: most runs never save

        temporary = f"{self._path}.{os.getpid()}.tmp"
        with contextlib.suppress(OSError):
            with open(temporary, "w") as out:
                json.dump(self.numbers(now), out)
            os.replace(temporary, self._path)

    def line(self) -> str:
        """-v: 'busy 35% of 2.10 s; waiting for input 60%, for output 5%' (per stage in a chain)."""
        numbers = self.numbers()
        wall = max(numbers["wall"], 1e-9)

        def share(seconds: float) -> str:
            return f"{100 * seconds / wall:.0f}%"

        stages = numbers["stages"]
        if len(stages) == 1:
            busy = f"busy {share(stages[0][1])} of {wall:.2f} s"
        else:
            each = ", ".join(f"{name} {share(seconds)}" for name, seconds in stages)
            busy = f"busy {each} of {wall:.2f} s"
        waits = []
        if self.input:
            waits.append(f"for input {share(self.input)}")
        if self.output:
            waits.append(f"for output {share(self.output)}")
        return busy + ("; waiting " + ", ".join(waits) if waits else "")


def read(path: str) -> dict[str, Any] | None:
    """The numbers a stage saved, or None (not yet, or not a stage of vflow)."""
    import json

    try:
        with open(path) as f:
            numbers = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(numbers, dict) or not isinstance(numbers.get("stages"), list):
        return None
    return numbers


def bottleneck(busy: dict[str, float]) -> str:
    """One line naming the stage the others waited on; `busy`: stage -> share of the run."""
    if not busy:
        return "no stage reported how busy it was"
    name, most = max(busy.items(), key=lambda item: item[1])
    others = [share for stage, share in busy.items() if stage != name]
    if most < 0.5:
        return (
            f"no stage was busy more than {100 * most:.0f}% of the run (the busiest: {name}); "
            "the rest went to waiting: start-up, a paced source, or moving data"
        )
    if not others:
        return f"{name} was busy {100 * most:.0f}% of the run"
    if max(others) < most * 0.8:
        return f"{name} was busy {100 * most:.0f}% of the run; every other stage waited on it"
    return f"{name} was busy {100 * most:.0f}% of the run, the most of any stage"
