"""head: pass the first N packets, then stop. Streaming."""

from __future__ import annotations

from collections.abc import Iterator

import click

from vflow_cli.options import counts, kind_option
from vflow_cli.stage import Packet, processor


@processor(pixels=False, stateful=True)
@click.argument("n", type=click.IntRange(min=0))
@kind_option
def head(packets: Iterator[Packet], n: int, kinds: tuple[str, ...]) -> Iterator[Packet]:
    """Pass the first N packets, then end the stream; the stages before it stop quietly."""
    counted = counts(kinds)
    seen = 0
    if n == 0:
        return
    for packet in packets:
        yield packet
        if counted(packet):
            seen += 1
            if seen == n:
                return
