"""objects: reading a frame's detections ("objects": [{"box", "score", "class", "label", "id"}]).

The schema is in vflow-packet(5). Boxes are x1, y1, x2, y2 in pixels of the packet's own
picture; "id" (an int >= 1) is present once `vflow track` has run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

from vflow_cli.errors import StageError
from vflow_cli.framing import Packet


def objects_of(packet: Packet) -> list[dict[str, Any]]:
    """The packet's objects, each with a checked box; [] when it has none."""
    found = packet.get("objects")
    if found is None:
        return []
    if not isinstance(found, list):
        raise StageError(f"packet {packet.get('seq', '?')}: 'objects' is not a list")
    for obj in found:
        box = obj.get("box") if isinstance(obj, dict) else None
        if not (
            isinstance(box, (list, tuple))
            and len(box) == 4
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in box)
        ):
            raise StageError(
                f"packet {packet.get('seq', '?')}: an object without a box [x1, y1, x2, y2] "
                f"({obj!r:.80}); see vflow-packet(5)"
            )
    return found


def track_id(obj: dict[str, Any]) -> int | None:
    """The object's track id, or None before `vflow track`."""
    value = obj.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def parse_classes(text: str | None) -> frozenset[str] | None:
    """'person,car' -> the labels (or class numbers, as text) to keep; None keeps all."""
    if text is None:
        return None
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise click.BadParameter(f"{text!r} names no class; e.g. person or person,car")
    return names


def _check_classes(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is not None and value.strip() != "*":
        parse_classes(value)  # a usage error now, before any packet is read
    return value


def classes_option(
    verb: str, *, default: str | None = None, everything: str = "every object"
) -> Callable[[Any], Any]:
    """--classes LABELS, declared once for every stage that picks objects by label or class
    number (line, zone, blur, mot, heatmap); `detect --classes` chooses a model's classes."""
    shown = f"Default: {everything}." if default is None else "'*' means every object."
    return click.option(
        "--classes",
        metavar="LABELS",
        default=default,
        show_default=default is not None,
        callback=_check_classes,
        help=f"{verb} only objects with these labels or class numbers, comma-separated "
        f"(person,car). {shown}",
    )


def wanted(obj: dict[str, Any], classes: frozenset[str] | None) -> bool:
    """Is the object of one of the classes (by label, or by class number)?"""
    if classes is None:
        return True
    return str(obj.get("label")) in classes or str(obj.get("class")) in classes


def stamp_of(packet: Packet) -> dict[str, Any]:
    """The fields an event copies from its frame: seq, frame, t, wall (those present)."""
    return {k: packet[k] for k in ("seq", "frame", "t", "wall") if k in packet}
