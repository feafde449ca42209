"""stamp: draw text made from each packet's fields (time, frame number) on its frame. Streaming."""

from __future__ import annotations

import string
import time
from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.clock import timecode
from vflow_cli.options import checked
from vflow_cli.stage import Packet, StageError, log, processor

PLACES = ("tl", "tr", "bl", "br")


def check_template(text: str) -> str:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not a format string ({exc}); use {{field}}"
        ) from None
    if any(f == "" or f.isdigit() for f in fields):
        raise click.BadParameter(
            f"{text!r}: name each field, e.g. '{{seq}}' or '{{t:.2f}}', not '{{}}'"
        )
    return text


def parse_place(text: str) -> tuple[str, int, int]:
    if text in PLACES:
        return text, 0, 0
    try:
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not one of {', '.join(PLACES)} or X,Y") from None
    return "xy", x, y


class _Missing:
    """A field the packet does not have: shown as '-', whatever its format spec."""

    def __format__(self, spec: str) -> str:
        return "-"

    def __getattr__(self, name: str) -> _Missing:
        return self

    def __getitem__(self, key: Any) -> _Missing:
        return self


class _Fields(dict):
    """A packet's fields; a name it lacks is noted in `missing` and shows as '-'."""

    missing: set[str]

    def __missing__(self, key: str) -> Any:
        self.missing.add(key)
        return _Missing()


def render(template: str, packet: Packet, count: int, missing: set[str] | None = None) -> str:
    wall = packet.get("wall")
    try:
        local = time.localtime(wall if isinstance(wall, (int, float)) else time.time())
    except (OverflowError, OSError, ValueError):  # a wall clock no calendar holds
        local = time.localtime()
    fields = _Fields({k: v for k, v in packet.items() if k != "image"})
    fields.missing = missing if missing is not None else set()
    fields.setdefault("n", count)
    fields.setdefault("time", time.strftime("%H:%M:%S", local))
    fields.setdefault("date", time.strftime("%Y-%m-%d", local))
    fields.setdefault("timecode", timecode(packet.get("t")))
    try:
        return template.format_map(fields).replace("\\n", "\n")
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise StageError(
            f"cannot fill {template!r} from packet {packet.get('seq', count)}: {exc}; "
            "check each field's format (e.g. {t:.2f} needs a number)"
        ) from None


def draw(image: Any, text: str, place: tuple[str, int, int], scale: float | None) -> Any:
    from vflow_cli.images import draw_text

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
