"""int: produce a sequence of integers (Videoflow's IntProducer). Streaming."""

from __future__ import annotations

import time
from collections.abc import Iterator

import click

from vflow_cli.clock import Ticker
from vflow_cli.packets import media_time
from vflow_cli.stage import Packet, Progress, producer


@producer(name="int")
@click.argument("start", type=int)
@click.argument("end", type=int)
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    metavar="SECONDS",
    help="Wait this long between packets (0: as fast as possible).",
)
def int_(start: int, end: int, interval: float) -> Iterator[Packet | Progress]:
    """Produce the integers START to END, both included, one packet each.

    Each packet is {"kind": "data", "seq": N, "t": SECONDS, "value": INTEGER}, where t is the
    time since the first packet. END below START counts down.
    """
    step = 1 if end >= start else -1
    yield Progress(abs(end - start) + 1, "packets")
    ticker = Ticker(interval) if interval else None
    began = time.monotonic()
    for seq, value in enumerate(range(start, end + step, step)):
        if ticker is not None:
            ticker.wait()
        yield {
            "kind": "data",
            "seq": seq,
            "t": media_time(time.monotonic() - began),
            "value": value,
        }
