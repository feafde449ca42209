"""zone: occupancy, entries, exits and dwell of tracked ids in a polygon. Streaming, stateful."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.stage import Packet, processor
from vflow_cli.vision.counting import classes_option, name_argument, report_option


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
@report_option
def zone(
    packets: Iterator[Packet],
    name: str,
    corners: tuple[str, ...],
    band: float,
    timeout: float,
    classes: str | None,
    events: bool,
    report: float | None,
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

    With --report 60s, one {"kind": "report", "zone": NAME, "t0", "t1", "entries", "exits",
    "peak", "mean", "frames"} per minute of media time (t0 <= t < t1, from t = 0): entries
    and exits in it, the highest occupancy and the mean over its frames (an interval
    without frames: the occupancy it began with), intervals without a visit included, sent
    before the first frame after the interval (the last one at end of input).

    \b
      vflow camera 0 | vflow detect | vflow track \\
          | vflow zone till 100,300 400,300 400,560 100,560 | vflow annotate | vflow show
      ... | vflow zone till 100,300 400,300 400,560 100,560 | vflow print --kind summary
      ... | vflow zone till 100,300 400,300 400,560 100,560 --report 5m \\
          | vflow print --kind report --format csv
    """
    from vflow_cli.vision.counting import Counting, Intervals
    from vflow_cli.vision.geometry import Polygon, parse_polygon, plain
    from vflow_cli.vision.zones import ZoneCounter

    points = parse_polygon(corners)
    polygon = Polygon(points)
    shown = [[plain(x), plain(y)] for x, y in points]
    counter = ZoneCounter(polygon, band=band, timeout=timeout)
    counting = Counting("zone", name, "zones", classes, polygon.meets_rect)

    def fresh() -> dict[str, Any]:
        occupancy = counter.occupancy
        return {"entries": 0, "exits": 0, "peak": occupancy, "sum": 0, "frames": 0, "at": occupancy}

    def close(tally: dict[str, Any]) -> dict[str, Any]:
        frames = tally["frames"]
        mean = tally["sum"] / frames if frames else tally["at"]
        return {
            "entries": tally["entries"],
            "exits": tally["exits"],
            "peak": tally["peak"],
            "mean": round(float(mean), 3),
            "frames": frames,
        }

    intervals = Intervals("zone", name, report or 0.0, fresh, close)
    for packet, feet in counting.frames_of(packets):
        if feet is None:
            yield packet
            continue
        if report:
            yield from intervals.tick(feet.now)
        changes = counter.update(feet.points, feet.now)
        if report:
            tally = intervals.tally
            tally["entries"] += sum(what == "enter" for what, _, _ in changes)
            tally["exits"] += sum(what == "exit" for what, _, _ in changes)
            tally["peak"] = max(tally["peak"], counter.occupancy)
            tally["sum"] += counter.occupancy
            tally["frames"] += 1
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
    if report:
        yield from intervals.finish()
    summary = {"polygon": shown, **counter.summary(), "frames": counting.frames}
    yield {"kind": "summary", "zones": {name: summary}}
