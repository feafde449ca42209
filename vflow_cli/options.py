"""options: option bundles shared by several stages, defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from vflow_cli.stage import Packet, is_control


def kind_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--kind K: which packets a counting stage counts (default: all but stream announcements)."""
    return click.option(
        "--kind",
        "kinds",
        multiple=True,
        metavar="KIND",
        help="Count only packets of this kind (repeatable). Default: every packet except "
        "'stream' announcements. Others pass through untouched.",
    )(fn)


def frames_option(default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """-n/--frames N for producers; `default` says what happens without it."""
    return click.option(
        "-n",
        "--frames",
        type=click.IntRange(min=0),
        default=None,
        help=f"Stop after N frames. Default: {default}.",
    )


def counts(kinds: tuple[str, ...]) -> Callable[[Packet], bool]:
    """The predicate behind --kind."""
    if not kinds:
        return lambda packet: not is_control(packet)
    wanted = frozenset(kinds)
    return lambda packet: packet.get("kind") in wanted


def parse_size(text: str, names: dict[str, tuple[int, int]] | None = None) -> tuple[int, int]:
    """'640x480' (or a name from `names`) -> (width, height)."""
    if names and text.lower() in names:
        return names[text.lower()]
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
        known = f" or one of {', '.join(names)}" if names else ""
        raise click.BadParameter(f"{text!r} is not WIDTHxHEIGHT (e.g. 640x480){known}")
    return int(width), int(height)
