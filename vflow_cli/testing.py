"""testing: run a stage in memory, through the same runner as on a pipe, for tests (in the
spirit of bytewax's TestingSource and TestingSink).

    out = run_stage("resize", ["8x8"], [frame(0), frame(1)])
    assert out.status == 0 and [p["image"].shape for p in out.packets] == [(8, 8, 3)] * 2

The stage's options are parsed from a command line, as `vflow NAME ARGS` would; the runner
handles its errors and signals; what it writes is collected, and whether it ended its
stream cleanly (the trailer) is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vflow_cli.framing import Packet


class TestingSink:
    """Collects what a stage writes (vflow_cli.runner.Sink)."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.out: list[Packet] = []
        self.packets = 0
        self.bytes = 0
        self.busy = False
        self.ended: bool | None = None  # None: never closed; True: with its trailer

    def write(self, packet: Packet) -> None:
        self.out.append(packet)
        self.packets += 1

    def push(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self, *, end: bool = True) -> None:
        self.ended = end


@dataclass
class Result:
    status: int
    packets: list[Packet] = field(default_factory=list)
    ended: bool | None = None  # the stage ended its stream cleanly


def run_stage(name: str, args: list[str], packets: Iterable[Packet] = ()) -> Result:
    """Run the stage NAME with ARGS over `packets`; its status and what it wrote."""
    from vflow_cli.catalogue import stage_info

    info = stage_info(name)
    if info is None:
        raise KeyError(f"no stage {name!r}")
    sink = TestingSink()
    try:
        info.run(info.parse(args), source=iter(list(packets)), sink=sink)
        status = 0
    except SystemExit as exit:
        status = int(exit.code or 0)
    return Result(status, sink.out, sink.ended)
