"""tile: put N frames side by side in one, a contact sheet. Buffers COLSxROWS frames."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.stage import Packet, processor

MAX_TILES = 400
SHEET_WIDTH = 1920  # default: tiles shrink until the sheet is at most this wide


def parse_grid(text: str) -> tuple[int, int]:
    """'5x2' -> (5 columns, 2 rows)."""
    cols, sep, rows = text.lower().partition("x")
    if not sep or not cols.isdigit() or not rows.isdigit() or int(cols) < 1 or int(rows) < 1:
        raise click.BadParameter(f"{text!r} is not COLSxROWS (e.g. 5x2)")
    if int(cols) * int(rows) > MAX_TILES:
        raise click.BadParameter(f"{text!r}: at most {MAX_TILES} tiles a sheet")
    return int(cols), int(rows)


def _grid(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    return parse_grid(value)


def _tile(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    from vflow_cli.options import parse_frame_size

    return None if value is None else parse_frame_size(value)


@processor(stateful=True)
@click.argument("grid", metavar="COLSxROWS", callback=_grid)
@click.option(
    "--tile",
    "tile_size",
    metavar="WxH",
    default=None,
    callback=_tile,
    help=f"Size of each tile. Default: the first frame's, halved until the sheet is at "
    f"most {SHEET_WIDTH} pixels wide.",
)
@click.option(
    "--partial/--no-partial",
    default=True,
    show_default=True,
    help="At end of input, send the last sheet even if it is not full (black tiles).",
)
def tile(
    packets: Iterator[Packet],
    grid: tuple[int, int],
    tile_size: tuple[int, int] | None,
    partial: bool,
) -> Iterator[Packet]:
    """Put COLSxROWS frames side by side in one frame, a contact sheet (buffers them).

    Frames fill the sheet left to right, then top to bottom, each scaled to the tile size;
    a sheet leaves when it is full. It is a frame packet {"kind": "frame", "seq" (the
    sheet's number), "t" and "wall" (its first tile's), "tiles", "image"}, where "tiles"
    lists each tile's metadata as it came (its seq, frame, t, objects, ...; boxes in that
    frame's own pixels), with "at": [x, y, width, height], where it sits on the sheet.
    Other packets pass on at once; the stream announcement gets the sheet's size, its rate
    and length divided by the number of tiles.

    \b
      vflow read walk.mp4 | vflow select 'frame % 30 == 0' | vflow tile 5x2 | vflow save sheets/
      vflow read talk.mp4 | vflow every 100 | vflow tile 4x4 --tile 320x180 | vflow show
    """
    from vflow_cli.images import viewable_picture

    cols, rows = grid
    per_sheet = cols * rows
    size = tile_size
    sheets = 0
    held: list[tuple[Packet, Any]] = []
    for packet in packets:
        kind = packet.get("kind")
        if kind == "stream":
            yield _announce(packet, grid, size)
            continue
        if kind != "frame" or packet.get("image") is None:
            yield packet
            continue
        picture = viewable_picture(packet)
        if size is None:
            size = _default_size(picture.shape[1], picture.shape[0], cols)
        held.append((packet, _fit(picture, size)))
        if len(held) == per_sheet:
            yield _sheet(held, grid, size, sheets)
            sheets += 1
            held = []
    if held and partial and size is not None:
        yield _sheet(held, grid, size, sheets)


def _default_size(width: int, height: int, cols: int) -> tuple[int, int]:
    scale = 1.0
    while cols * width * scale > SHEET_WIDTH and width * scale > 16:
        scale /= 2
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fit(picture: Any, size: tuple[int, int]) -> Any:
    import cv2

    if (picture.shape[1], picture.shape[0]) == size:
        return picture
    return cv2.resize(picture, size, interpolation=cv2.INTER_AREA)


def _announce(packet: Packet, grid: tuple[int, int], size: tuple[int, int] | None) -> Packet:
    cols, rows = grid
    out = dict(packet)
    width, height = packet.get("width"), packet.get("height")
    if size is None and isinstance(width, int) and isinstance(height, int) and width > 0:
        size = _default_size(width, height, cols)
    if size is not None:
        out["width"], out["height"] = size[0] * cols, size[1] * rows
    fps, length = packet.get("fps"), packet.get("length")
    if isinstance(fps, (int, float)) and fps > 0:
        out["fps"] = fps / (cols * rows)
    if isinstance(length, int) and length >= 0:
        out["length"] = -(-length // (cols * rows))
    return out


def _sheet(
    held: list[tuple[Packet, Any]], grid: tuple[int, int], size: tuple[int, int], number: int
) -> Packet:
    import numpy as np

    cols, rows = grid
    width, height = size
    sheet = np.zeros((rows * height, cols * width, 3), np.uint8)
    tiles = []
    for i, (packet, picture) in enumerate(held):
        x, y = (i % cols) * width, (i // cols) * height
        sheet[y : y + height, x : x + width] = picture
        meta = {k: v for k, v in packet.items() if k != "image"}
        meta["at"] = [x, y, width, height]
        tiles.append(meta)
    first = held[0][0]
    out: Packet = {"kind": "frame", "seq": number}
    for key in ("t", "wall"):
        if key in first:
            out[key] = first[key]
    out["tiles"] = tiles
    out["image"] = sheet
    return out
