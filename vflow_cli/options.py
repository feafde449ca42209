"""options: option bundles shared by several stages, defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from vflow_cli.stage import Packet, is_control

F = TypeVar("F", bound=Callable[..., Any])


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


def rate_option(help: str, default: float | None = None) -> Callable[[F], F]:
    """--fps RATE: a frame rate (what it paces, stamps or asks for is the stage's to say)."""
    return click.option(
        "--fps",
        type=click.FloatRange(min=0, min_open=True),
        default=default,
        show_default=default is not None,
        metavar="RATE",
        help=help,
    )


def name_option(default: str | None, says: str | None = None) -> Callable[[F], F]:
    """--name NAME: the stream's source name, which announcements carry and windows show."""
    return click.option(
        "--name",
        default=default,
        show_default=default is not None,
        help="The stream's source name." + (f" Default: {says}." if says else ""),
    )


def quality_option(default: int, help: str = "JPEG quality") -> Callable[[F], F]:
    """--quality 1-100: JPEG quality, where a stage compresses."""
    return click.option(
        "--quality",
        type=click.IntRange(1, 100),
        default=default,
        show_default=True,
        help=f"{help}: lower is smaller and blurrier.",
    )


def counts(kinds: tuple[str, ...]) -> Callable[[Packet], bool]:
    """The predicate behind --kind."""
    if not kinds:
        return lambda packet: not is_control(packet)
    wanted = frozenset(kinds)
    return lambda packet: packet.get("kind") in wanted


def parse_frame_size(text: str, names: dict[str, tuple[int, int]] | None = None) -> tuple[int, int]:
    """'640x480' (or a name from `names`) -> (width, height)."""
    if names and text.lower() in names:
        return names[text.lower()]
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
        known = f" or one of {', '.join(names)}" if names else ""
        raise click.BadParameter(f"{text!r} is not WIDTHxHEIGHT (e.g. 640x480){known}")
    check_frame_size(int(width), int(height), 3)
    return int(width), int(height)


def check_frame_size(width: int, height: int, pixel_bytes: int = 1) -> None:
    """Refuse, before anything is allocated, a frame size that no stage could pass on: over
    the packet limit (VFLOW_MAX_PACKET, 1 GiB by default)."""
    from vflow_cli.console import human_bytes
    from vflow_cli.framing import max_packet_size

    limit = max_packet_size()
    if width * height * pixel_bytes > limit:
        raise click.BadParameter(
            f"{width}x{height} frames would be "
            f"{human_bytes(width * height * pixel_bytes, binary=True)}, "
            f"over the {human_bytes(limit, binary=True)} packet limit (VFLOW_MAX_PACKET)"
        )


def checked(parse: Callable[[str], Any]) -> Callable[[Any, Any, Any], Any]:
    """A click callback that checks an argument with `parse` at parse time (so the usage
    error names the parameter) and hands the stage the text unchanged."""

    def callback(ctx: Any, param: Any, value: Any) -> Any:
        if value is not None:
            parse(value)
        return value

    return callback
