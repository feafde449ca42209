"""print: show each packet as one JSON line on stdout (what jq users pipe into). Streaming."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import click

from vflow_cli.images import settle, to_json
from vflow_cli.stage import Packet, consumer


@consumer(name="print", pixels=False)
@click.option(
    "-f",
    "--field",
    "fields",
    multiple=True,
    metavar="FIELD",
    help="Print only these fields (repeatable); packets with none of them are skipped.",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help="Print only packets of this kind (repeatable).",
)
def print_(packets: Iterator[Packet], fields: tuple[str, ...], kinds: tuple[str, ...]) -> None:
    """Print each packet as one line of JSON: metadata in full, an image as shape and dtype.

    \b
      vflow int 0 40 | vflow sum | vflow print | tail -n 1
      vflow testcard --frames 3 | vflow print --kind frame | jq .seq
    """
    write = sys.stdout.write
    for packet in packets:
        if kinds and packet.get("kind") not in kinds:
            continue
        if fields:
            packet = {k: packet[k] for k in fields if k in packet}
            if not packet:
                continue
        settle(packet)  # a frame is printed once its image has fully arrived
        write(to_json(packet) + "\n")
