"""stage: @producer, @processor and @consumer turn plain functions into vflow subcommands.

A stage is a plain function over an iterator of packets; it never touches stdin, stdout,
signals or exit codes. The decorator registers a click command that runs the function
through vflow_cli.runner, and gives back the function itself, so tests can call it on lists.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from vflow_cli.framing import Encoded, Packet
from vflow_cli.runner import Progress, StageError, log, run_stage

__all__ = [
    "CONTEXT",
    "REGISTRY",
    "Encoded",
    "Packet",
    "Progress",
    "StageError",
    "consumer",
    "log",
    "processor",
    "producer",
]

F = TypeVar("F", bound=Callable[..., Any])
Pixels = bool | Callable[[dict[str, Any]], bool]

REGISTRY: dict[str, click.Command] = {}
KINDS: dict[str, str] = {}  # stage name -> "producer" | "processor" | "consumer"
# stage name -> True (or a function of the options) when the stage keeps state across
# packets: a graph must not split it over several workers
STATEFUL: dict[str, bool | Callable[[dict[str, Any]], bool]] = {}
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _common_options(callback: Callable[..., Any]) -> Callable[..., Any]:
    """-v, -q and --debug on every stage (csvkit's common flags)."""
    callback = click.option(
        "--debug", is_flag=True, help="Show a Python traceback on an internal error."
    )(callback)
    callback = click.option(
        "-q", "--quiet", count=True, help="Only report errors on stderr; no progress bar."
    )(callback)
    callback = click.option(
        "-v", "--verbose", count=True, help="Report more on stderr (-vv: debugging detail)."
    )(callback)
    return callback


def _register(
    fn: F,
    kind: str,
    name: str | None,
    pixels: Pixels,
    stateful: bool | Callable[[dict[str, Any]], bool] = False,
) -> F:
    name = name or fn.__name__.strip("_").replace("_", "-")

    @functools.wraps(fn)
    def callback(verbose: int, quiet: int, debug: bool, **options: Any) -> None:
        lazy = not (pixels(options) if callable(pixels) else pixels)
        run_stage(kind, fn, options, verbosity=verbose - quiet, debug=debug, lazy=lazy)

    callback.__click_params__ = list(getattr(fn, "__click_params__", []))  # type: ignore[attr-defined]
    command = click.command(name, context_settings=CONTEXT)(_common_options(callback))
    REGISTRY[name] = command
    KINDS[name] = kind
    STATEFUL[name] = stateful
    return fn


def _decorator(kind: str):
    def decorate(
        fn: F | None = None,
        *,
        name: str | None = None,
        pixels: Pixels = True,
        stateful: bool | Callable[[dict[str, Any]], bool] = False,
    ) -> Any:
        """name: the command's name (default: the function's).

        pixels=False: the stage never looks at an image's pixels; it passes each packet on
        or drops it before it reads the next one (it may read metadata and change it). Its
        images then go from stdin to stdout without entering the process (framing.Pending),
        and the images of dropped packets are skipped. A stage that holds packets back
        (a buffer, a reorder) must keep pixels=True. A function of the options may decide
        per run (fps looks at pixels only with --draw).

        stateful=True: the stage keeps state across packets (a tracker, a background
        model); a function of the options may decide per run."""
        if fn is None:
            return lambda f: _register(f, kind, name, pixels, stateful)
        return _register(fn, kind, name, pixels, stateful)

    return decorate


producer = _decorator("producer")
processor = _decorator("processor")
consumer = _decorator("consumer")


def is_control(packet: Packet) -> bool:
    """Stream announcements describe the stream; counting stages skip them."""
    return packet.get("kind") == "stream"
