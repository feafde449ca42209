"""annotate: draw objects, track ids, trails, lines and zones on each frame. Streaming, stateful."""

from __future__ import annotations

from collections.abc import Iterator

import click

from vflow_cli.stage import Packet, processor


def _parts(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> frozenset[str]:
    from vflow_cli.vision.draw import PARTS

    parts = {p.strip() for text in value for p in text.split(",") if p.strip()}
    unknown = sorted(parts - set(PARTS))
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not one of {', '.join(PARTS)}")
    return frozenset(parts)


@processor(stateful=True)
@click.option(
    "--grid",
    type=click.IntRange(min=4),
    default=None,
    metavar="N",
    help="Draw a coordinate grid every N pixels, labelled, under everything else: where to "
    "put a line's or a zone's points.",
)
@click.option(
    "--hide",
    multiple=True,
    metavar="PARTS",
    callback=_parts,
    help="Leave out these parts, comma-separated or repeated: boxes, labels (class names), "
    "scores, ids, trails, lines, zones, counts (the text of lines and zones).",
)
@click.option(
    "--trail",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    metavar="FRAMES",
    help="Draw each track's foot point over its last FRAMES frames (0: no trails).",
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0.1),
    default=None,
    metavar="FACTOR",
    help="Size of text and strokes (1.0 suits 720 lines). Default: follows the frame height.",
)
@click.option(
    "--heatmap",
    is_flag=True,
    help="Also draw where the objects' foot points have been, as colours under the rest, "
    "with a colour scale in seconds (see `vflow heatmap`).",
)
@click.option(
    "--decay",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="With --heatmap: let old heat fade, keeping 1/e of it each SECONDS of media time "
    "(a live view of about the last SECONDS). Default: all of it.",
)
def annotate(
    packets: Iterator[Packet],
    hide: frozenset[str],
    trail: int,
    scale: float | None,
    grid: int | None = None,
    heatmap: bool = False,
    decay: float | None = None,
) -> Iterator[Packet]:
    """Draw boxes, labels, scores, track ids, trails, lines and zones with their counts.

    Reads what `detect`, `track`, `line` and `zone` put in each frame packet (its "objects",
    "lines" and "zones"; see vflow-packet(5)) and draws it on the frame: a box and a label
    ("#7 person 0.91") per object, in a colour that stays with its track id; the path of
    each track's foot point; each counting line with an arrow towards its "in" side and its
    counts; each zone's outline with its occupancy, entries and exits. Text and strokes
    follow the frame's height, so 768x576 and 1080p read alike. Grey frames are drawn on in
    colour (they leave as BGR). Trails need the frames in order: run it as one process.

    \b
      vflow camera 0 | vflow detect | vflow track | vflow annotate | vflow show
      ... | vflow line door 400,0,400,576 | vflow annotate --hide scores | vflow write out.mp4
      vflow read hall.mp4 --frames 1 | vflow annotate --grid 50 | vflow save . --name grid.png
      vflow camera 0 | vflow detect | vflow track | vflow annotate --heatmap --decay 30 | ...
    """
    from vflow_cli.colors import viewable
    from vflow_cli.images import VIEWS, pixels
    from vflow_cli.vision.draw import Painter
    from vflow_cli.vision.objects import objects_of

    painter = Painter(hide=hide, trail=trail, scale=scale)
    if decay is not None and not heatmap:
        raise click.UsageError("--decay is for --heatmap")
    heat = clock = None
    if heatmap:
        from vflow_cli.packets import Clock
        from vflow_cli.vision.heatmap import Heat

        heat, clock = Heat(decay), Clock()
    for packet in packets:
        if clock is not None and packet.get("kind") == "stream":
            clock.announce(packet)
        image = packet.get("image")
        if image is None or packet.get("kind") != "frame":
            yield packet
            continue
        objects = objects_of(packet)
        picture = pixels(image)
        VIEWS.check(picture, packet)
        picture = viewable(packet, picture)
        if not picture.flags.writeable:
            picture = picture.copy()
        if "colorspace" in packet:
            packet["colorspace"] = "bgr"
        if grid:
            from vflow_cli.vision.grid import draw_grid

            style = painter.style(picture.shape[0])
            draw_grid(picture, grid, style.font * 0.8, style.text)
        if heat is not None and clock is not None:
            heat.add(objects, clock.now(packet), (picture.shape[1], picture.shape[0]))
            heat.draw(picture, scale)
        painter.paint(picture, packet, objects)
        packet["image"] = picture
        yield packet
