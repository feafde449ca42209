"""stamp: draw text made from each packet's fields (time, frame number) on its frame. Streaming."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.options import checked
from vflow_cli.stage import Packet, log, processor
from vflow_cli.template import check_template, render

PLACES = ("tl", "tr", "bl", "br")


def parse_place(text: str) -> tuple[str, int, int]:
    if text in PLACES:
        return text, 0, 0
    try:
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not one of {', '.join(PLACES)} or X,Y") from None
    return "xy", x, y


def draw(image: Any, text: str, place: tuple[str, int, int], scale: float | None) -> Any:
    from vflow_cli.vision.draw import draw_text

    if not image.flags.writeable:
        image = image.copy()
    where, x, y = place
    draw_text(image, text, (x, y) if where == "xy" else where, scale)
    return image


@processor
@click.argument("template", metavar="TEXT", callback=checked(check_template))
@click.option(
    "--at",
    "place",
    default="bl",
    show_default=True,
    metavar="WHERE",
    callback=checked(parse_place),
    help="tl, tr, bl or br (a corner), or X,Y in pixels.",
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Text size (1.0 is about 34 px a line). Default: follows the frame height.",
)
def stamp(
    packets: Iterator[Packet], template: str, place: str, scale: float | None
) -> Iterator[Packet]:
    """Draw TEXT on every frame, filled in from the packet's fields ({seq}, {t:.2f}, ...).

    TEXT is a Python format string over the packet's fields, plus {time} and {date} (the
    frame's wall clock), {timecode} (media time as HH:MM:SS.mmm) and {n} (frames seen). A
    field the packet lacks shows as '-' (and is named once on stderr); \\n starts a new line.

    \b
      vflow camera 0 | vflow stamp '{date} {time}' | vflow write cam.mkv
      vflow read in.mp4 | vflow stamp '#{frame} {timecode}' --at tr | vflow show
    """
    from vflow_cli.images import DRAWS, frame_name, pixels

    where = parse_place(place)
    count = 0
    missing: set[str] = set()
    warned: set[str] = set()
    for packet in packets:
        image = packet.get("image")
        if image is not None:
            text = render(template, packet, count, missing)
            for key in missing - warned:  # once per name: a later packet may have it
                log.warning("%s has no field %r; it shows as '-'", frame_name(packet), key)
                warned.add(key)
            missing.clear()
            picture = pixels(image)
            DRAWS.check(picture, packet)
            packet["image"] = draw(picture, text, where, scale)
            count += 1
        yield packet
