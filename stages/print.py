"""print: show each packet as a JSON line or a CSV row on stdout (for jq, sheets). Streaming."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.images import settle
from vflow_cli.packets import to_json
from vflow_cli.stage import Packet, consumer

MISSING = object()


class Each(list):
    """The values of one field in each element of a list (objects.id: the frame's ids)."""


def lookup(packet: Packet, field: str) -> Any:
    """A field's value, or MISSING. FIELD is a key of the packet; failing that, a dotted
    path through maps (by key) and lists (by index from 0, or from -1 for the last; a name
    instead of an index goes into every element: objects.id is the list of their ids)."""
    if field in packet:
        return packet[field]
    return _walk(packet, field.split("."))


def _walk(value: Any, parts: list[str]) -> Any:
    for i, part in enumerate(parts):
        if isinstance(value, dict):
            if part not in value:
                return MISSING
            value = value[part]
        elif isinstance(value, (list, tuple)):
            try:
                value = value[int(part)]
            except IndexError:
                return MISSING
            except ValueError:  # a name: the field of every element that has it
                found = Each(v for v in (_walk(e, parts[i:]) for e in value) if v is not MISSING)
                return found or MISSING
        else:
            return MISSING
    return value


def _cell(value: Any, dumps: Any) -> str:
    """A CSV cell: text as it is, numbers as numbers, maps and lists as JSON, null empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, Each):  # objects.id: "3;5;9"
        return ";".join(_cell(item, dumps) for item in value)
    return dumps(value)


@consumer(name="print", pixels=False)
@click.option(
    "-f",
    "--field",
    "fields",
    multiple=True,
    metavar="FIELD",
    help="Print only these fields (repeatable), in this order; packets with none of them "
    "are skipped. A dotted path reaches inside maps and lists: lines.door.in, objects.0.id.",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help="Print only packets of this kind (repeatable).",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(("json", "csv")),
    default="json",
    show_default=True,
    help="json: one JSON object per line; csv: a header row, then one row per packet (the "
    "columns: -f, else the fields of the first packet printed).",
)
@click.option(
    "--explode",
    metavar="FIELD",
    default=None,
    help="One row per element of this list field (objects: one per object), each with its "
    "frame's seq, frame and t; -f then picks among the element's fields.",
)
@click.option(
    "--header/--no-header",
    default=True,
    show_default=True,
    help="With --format csv: start with a row of the field names.",
)
def print_(
    packets: Iterator[Packet],
    fields: tuple[str, ...],
    kinds: tuple[str, ...],
    format_: str,
    header: bool,
    explode: str | None = None,
) -> None:
    """Print each packet as a line of JSON (or CSV): metadata in full, an image as shape and dtype.

    -f picks fields; a field is a key of the packet or, failing that, a dotted path into
    it (lines.door.in, zones.till.occupancy, objects.0.box), printed under that name.
    --format csv prints the chosen fields as CSV rows for a spreadsheet or a plot: an
    absent field is an empty cell, a map or list a JSON cell, and a name that goes into
    every element of a list gives their values joined by ';' (-f objects.id: "3;5;9",
    the ids in the frame). Without -f, the columns are
    the fields of the first packet printed (its image left out), which suits packets of one
    shape: `--kind report` after `line --report` or `zone --report` is a table as it is.

    \b
      vflow int 0 40 | vflow sum | vflow print | tail -n 1
      vflow testcard --frames 3 | vflow print --kind frame | jq .seq
      ... | vflow line door 400,0,400,576 | vflow print --kind frame --format csv \\
          -f t -f lines.door.in -f lines.door.out > counts.csv
      ... | vflow line door 400,0,400,576 --report 1m | vflow print --kind report --format csv
      ... | vflow track | vflow print --explode objects --format csv > objects.csv

    --explode objects makes one row per object, for a table of tracks: frame, t, id, box,
    score, label and velocity (CSV columns without -f; seq too when there is no frame).
    """
    write = sys.stdout.write
    rows = csv.writer(sys.stdout, lineterminator="\n") if format_ == "csv" else None
    if rows is not None and header and fields:
        rows.writerow(fields)
    for packet in _exploded(packets, explode) if explode else packets:
        if kinds and packet.get("kind") not in kinds:
            continue
        if rows is not None and not fields and explode == "objects":
            fields = tuple(k for k in (*CONTEXT, *OBJECT) if k != "seq" or "frame" not in packet)
            if header:
                rows.writerow(fields)
        if rows is not None and not fields:  # the first packet's fields are the columns
            fields = tuple(str(key) for key in packet if key != "image")
            if header:
                rows.writerow(fields)
        values = [lookup(packet, f) for f in fields]
        if fields and all(v is MISSING for v in values):
            continue
        settle(packet)  # a packet is printed once its image has fully arrived
        if rows is not None:
            rows.writerow(["" if v is MISSING else _cell(v, to_json) for v in values])
            continue
        if fields:
            packet = {f: v for f, v in zip(fields, values, strict=True) if v is not MISSING}
        write(to_json(packet) + "\n")


CONTEXT = ("seq", "frame", "t")  # what an exploded row keeps of its packet
OBJECT = ("id", "box", "score", "label", "velocity")


def _exploded(packets: Iterator[Packet], field: str) -> Iterator[Packet]:
    """One packet per element of `field` (a list): the element's fields (a value that is
    not a map goes under the field's name), with the packet's kind, seq, frame and t."""
    for packet in packets:
        items = lookup(packet, field)
        settle(packet)
        if not isinstance(items, (list, tuple)):
            continue
        context = {k: packet[k] for k in ("kind", *CONTEXT) if k in packet}
        for item in items:
            yield {**context, **item} if isinstance(item, dict) else {**context, field: item}
