"""template: text filled in from a packet's fields, as `stamp` draws and `save --name` names
files: a Python format string over the fields ({seq}, {t:.2f}, {lines[door][in]}), plus
{time} and {date} (the frame's wall clock), {timecode} and {n} (frames so far)."""

from __future__ import annotations

import string
import time
from typing import Any

import click

from vflow_cli.clock import timecode
from vflow_cli.errors import StageError
from vflow_cli.framing import Packet


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
