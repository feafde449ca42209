"""stage: @producer, @processor and @consumer turn plain functions into vflow subcommands.

A stage is a plain function over an iterator of packets; it never touches stdin, stdout,
signals or exit codes. The decorator registers a click command that runs the function
through vflow_cli.runner, and gives back the function itself, so tests can call it on lists.

    @processor(stateful=True)          what the graph must know about a stage is declared
    def track(packets, ...): ...       here: its kind, whether it looks at pixels, whether
                                       it keeps state across packets (no workers = N then)

A Python file becomes a stage of its own with `main()` at its bottom; a pip-installed
package adds stages through the `vflow.stages` entry-point group (see vflow-stage(7)).
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from vflow_cli.console import common_options
from vflow_cli.framing import Encoded, Packet
from vflow_cli.runner import Progress, Sink, StageError, log, output_buffer, run_stage

__all__ = [
    "CONTEXT",
    "INFO",
    "REGISTRY",
    "Encoded",
    "Packet",
    "Progress",
    "StageError",
    "StageInfo",
    "consumer",
    "log",
    "main",
    "output_buffer",
    "processor",
    "producer",
]

F = TypeVar("F", bound=Callable[..., Any])
Pixels = bool | Callable[[dict[str, Any]], bool]
Stateful = bool | Callable[[dict[str, Any]], bool]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
COMMON = ("verbose", "quiet", "debug")
NUMBER = re.compile(r"-\d+(\.\d*)?$")


class StageCommand(click.Command):
    """A stage's command: a negative number is a value, not an option (`vflow int -5 5`,
    `vflow rotate -90`, and `vflow head -3` is told that N must be at least 0)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if any(NUMBER.match(arg) for arg in args):
            ctx.ignore_unknown_options = True
        return super().parse_args(ctx, args)


class StageInfo:
    """What vflow knows about a stage: the graph, `--check` and the network worker read it.
    (A plain class, not a dataclass: importing dataclasses costs every stage's start-up.)"""

    __slots__ = ("command", "function", "kind", "name", "passes", "pixels", "stateful")

    def __init__(
        self,
        name: str,
        kind: str,  # producer | processor | consumer
        function: Callable[..., Any],
        command: click.Command,
        pixels: Pixels,  # False: it never looks at pixels (images may pass it by splice(2))
        stateful: Stateful,  # it keeps state across packets (a tracker, a counter); or a
        # function of its options (detect keeps a background model only with --model motion)
        passes: str | None = None,  # a consumer's option that makes it pass packets on
    ) -> None:
        self.name = name
        self.kind = kind
        self.function = function
        self.command = command
        self.pixels = pixels
        self.stateful = stateful
        self.passes = passes

    def kind_for(self, options: dict[str, Any]) -> str:
        """The kind with these options: a consumer with its `passes` option set (mot
        --pass) is a processor."""
        if self.passes is not None and options.get(self.passes):
            return "processor"
        return self.kind

    def parse(self, args: list[str]) -> dict[str, Any]:
        """The function's options from a command line, as `vflow NAME ARGS` would parse
        them (click.UsageError if they are wrong); -v, -q and --debug are not among them."""
        with self.command.make_context(self.name, list(args)) as ctx:
            params = dict(ctx.params)
        for key in COMMON:
            params.pop(key, None)
        return params

    def with_function(self, function: Callable[..., Any]) -> StageInfo:
        """The same stage running another function (a wrapper of its own)."""
        return StageInfo(
            self.name, self.kind, function, self.command, self.pixels, self.stateful, self.passes
        )

    def looks_at_pixels(self, options: dict[str, Any]) -> bool:
        return bool(self.pixels(options) if callable(self.pixels) else self.pixels)

    def keeps_state(self, options: dict[str, Any]) -> bool:
        return bool(self.stateful(options) if callable(self.stateful) else self.stateful)

    def run(
        self,
        options: dict[str, Any],
        *,
        source: Iterable[Packet] | None = None,
        sink: Sink | None = None,
        verbosity: int = 0,
        debug: bool = False,
    ) -> None:
        """Run the stage with the runner: signals, errors and exit codes as on a pipe, over
        any packet source and sink (stdin and stdout by default). Exits the process."""
        lazy = source is None and not self.looks_at_pixels(options)
        run_stage(
            self.kind_for(options),
            self.function,
            options,
            verbosity=verbosity,
            debug=debug,
            lazy=lazy,
            source=source,
            sink=sink,
        )


REGISTRY: dict[str, click.Command] = {}
INFO: dict[str, StageInfo] = {}


def _register(
    fn: F,
    kind: str,
    name: str | None,
    pixels: Pixels,
    stateful: Stateful,
    passes: str | None = None,
) -> F:
    name = name or fn.__name__.strip("_").replace("_", "-")
    info: StageInfo

    @functools.wraps(fn)
    def callback(verbose: int, quiet: int, debug: bool, **options: Any) -> None:
        lazy = not info.looks_at_pixels(options)
        run_stage(
            info.kind_for(options), fn, options, verbosity=verbose - quiet, debug=debug, lazy=lazy
        )

    callback.__click_params__ = list(getattr(fn, "__click_params__", []))  # type: ignore[attr-defined]
    command = click.command(name, cls=StageCommand, context_settings=CONTEXT)(
        common_options(callback)
    )
    info = StageInfo(name, kind, fn, command, pixels, stateful, passes)
    REGISTRY[name] = command
    INFO[name] = info
    return fn


def _decorator(kind: str):
    def decorate(
        fn: F | None = None,
        *,
        name: str | None = None,
        pixels: Pixels = True,
        stateful: Stateful = False,
        passes: str | None = None,
    ) -> Any:
        """name: the command's name (default: the function's).

        pixels=False: the stage never looks at an image's pixels; it passes each packet on
        or drops it before it reads the next one (it may read metadata and change it). Its
        images then go from stdin to stdout without entering the process (framing.Pending),
        and the images of dropped packets are skipped. A stage that holds packets back
        (a buffer, a reorder) must keep pixels=True. A function of the options may decide
        per run (fps looks at pixels only with --draw).

        stateful=True: what the stage does with a packet depends on the packets before it
        (a tracker, a counter, a running sum). Spread over workers it would be wrong, so
        `vflow graph` refuses `workers = N` on it, and so does `vflow worker`. A function
        of the options may decide per run.

        passes="OPTION" (consumers): with that option set, the stage passes its packets on
        and is a processor (`mot --pass`); its function then returns their iterator."""
        if fn is None:
            return lambda f: _register(f, kind, name, pixels, stateful, passes)
        return _register(fn, kind, name, pixels, stateful, passes)

    return decorate


producer = _decorator("producer")
processor = _decorator("processor")
consumer = _decorator("consumer")


def is_control(packet: Packet) -> bool:
    """Stream announcements describe the stream; counting stages skip them."""
    return packet.get("kind") == "stream"


def main(name: str | None = None, argv: list[str] | None = None) -> None:
    """Run the stage this script defines as a command, with vflow's options, signals,
    framing and errors: `main()` at the bottom of a file that decorates one function.

    \b
      # burn.py
      from vflow_cli.stage import processor, main
      @processor
      def burn(packets): ...
      if __name__ == "__main__":
          main()

    `python burn.py --help`, `... | python burn.py | ...`, and in a graph
    `python = ["burn.py"]`."""
    if name is None:
        mine = [n for n, info in INFO.items() if info.function.__module__ == "__main__"]
        if len(mine) != 1:
            found = ", ".join(mine) or "none"
            raise SystemExit(
                f"vflow_cli.stage.main(): this script defines {len(mine)} stages ({found}); "
                "decorate one function, or name it: main('NAME')"
            )
        name = mine[0]
    if name not in REGISTRY:
        raise SystemExit(f"vflow_cli.stage.main(): no stage named {name!r}")
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else name
    REGISTRY[name].main(args=argv, prog_name=program)
