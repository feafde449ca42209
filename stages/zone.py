"""zone: occupancy, entries, exits and dwell of tracked ids in a polygon. Streaming, stateful."""

from __future__ import annotations

from collections.abc import Iterator

import click

from vflow_cli.stage import Packet, processor
from vflow_cli.vision.counting import classes_option, name_argument


def _corners(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from vflow_cli.vision.geometry import parse_polygon

    parse_polygon(value)
    return value


@processor(pixels=False, stateful=True)
@name_argument
@click.argument("corners", metavar="X,Y X,Y X,Y...", nargs=-1, required=True, callback=_corners)
@click.option(
    "--band",
    type=click.FloatRange(min=0),
    default=8.0,
    show_default=True,
    metavar="PX",
    help="Hysteresis: a foot point must be more than PX pixels inside the outline to "
    "enter, and more than PX outside to leave.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=3.0,
    show_default=True,
    metavar="SECONDS",
    help="An id inside that is not seen for this long has left (a 'lost' exit, dwell "
    "until last seen). Set it above your tracker's lost-track buffer.",
)
@classes_option
@click.option(
    "--events/--no-events",
    default=True,
    show_default=True,
    help="Send an 'event' packet after the frame of each entry and exit.",
)
def zone(
    packets: Iterator[Packet],
    name: str,
    corners: tuple[str, ...],
    band: float,
    timeout: float,
    classes: str | None,
    events: bool,
) -> Iterator[Packet]:
    """Count tracked ids inside the polygon X,Y X,Y X,Y... as NAME: occupancy, entries, exits.

    An object's position is its foot point, the bottom centre of its box; ids come from
    `vflow track`. An id enters when its foot is more than --band pixels inside the outline
    (an id first seen inside enters then, so occupancy = entries - exits) and exits when it
    is more than --band pixels outside, or when it has not been seen for --timeout seconds
    (a "lost" exit, with its dwell until it was last seen). Until then a missing id still
    counts as inside: trackers lose people behind obstacles for a few frames and find them
    again under the same id. An id back after a lost exit enters again. Times are the
    frames' media time (t), else their wall time. Corners may lie outside the picture.

    Every frame gets {"zones": {NAME: {"polygon": [[X, Y], ...], "occupancy": N, "entries":
    N, "exits": N, "inside": [{"id", "dwell"}, ...]}}}; after the frame of each entry or
    exit comes {"kind": "event", "event": "enter"|"exit", "zone": NAME, "id", "label",
    "seq", "frame", "t", "wall"} (an exit also has "dwell" in seconds and "lost"); at the
    end of the stream one {"kind": "summary", "zones": {NAME: {...}}} with the peak
    occupancy, dwell statistics over all visits (open ones until last seen) and each id's
    visits and dwell. Several `zone` stages in a row each add their own NAME.

    \b
      vflow camera 0 | vflow detect | vflow track \\
          | vflow zone till 100,300 400,300 400,560 100,560 | vflow annotate | vflow show
      ... | vflow zone till 100,300 400,300 400,560 100,560 | vflow print --kind summary
    """
    from vflow_cli.vision.counting import Counting
    from vflow_cli.vision.geometry import Polygon, parse_polygon, plain
    from vflow_cli.vision.zones import ZoneCounter

    points = parse_polygon(corners)
    polygon = Polygon(points)
    shown = [[plain(x), plain(y)] for x, y in points]
    counter = ZoneCounter(polygon, band=band, timeout=timeout)
    counting = Counting("zone", name, "zones", classes, polygon.meets_rect)
    for packet, feet in counting.frames_of(packets):
        if feet is None:
            yield packet
            continue
        changes = counter.update(feet.points, feet.now)
        counting.record(
            packet,
            {
                "polygon": [list(p) for p in shown],
                "occupancy": counter.occupancy,
                "entries": counter.entries,
                "exits": counter.exits,
                "inside": counter.inside(feet.now),
            },
        )
        yield packet
        if events:
            for what, ident, details in changes:
                yield counting.event(packet, feet, what, ident, **details)
    summary = {"polygon": shown, **counter.summary(), "frames": counting.frames}
    yield {"kind": "summary", "zones": {name: summary}}
