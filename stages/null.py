"""null: discard packets. Streaming."""

from __future__ import annotations

from collections.abc import Iterator

from vflow_cli.stage import Packet, consumer


@consumer(pixels=False)
def null(packets: Iterator[Packet]) -> None:
    """Read and discard every packet; with -v, report packets, bytes and rate at the end."""
    for _ in packets:
        pass
