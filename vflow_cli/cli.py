"""cli: the `vflow` click group. A stage's module is imported only when that stage runs.

`vflow int 0 9` imports click, the runner and stages/integers.py, not the other stages
(click's "lazily loading subcommands" pattern): start-up time is paid by every process of
every pipeline and every graph node.

Stages of other packages: a package that declares entry points in the group `vflow.stages`
(name = the stage's name, value = the module that defines it, or module:function) adds
`vflow NAME` once it is installed; it is imported only when NAME runs, like a built-in.
"""

from __future__ import annotations

import functools
import importlib
import signal
import sys
from typing import TYPE_CHECKING, Any

import click

from vflow_cli import __version__
from vflow_cli.stage import CONTEXT, INFO, REGISTRY, StageInfo
from vflow_cli.status import Exit

if TYPE_CHECKING:
    from importlib import metadata

PLUGIN_GROUP = "vflow.stages"

# stage name -> module under stages/ (tests/test_docs.py checks this against the modules)
STAGES = {
    "annotate": "annotate",
    "blur": "blur",
    "camera": "camera",
    "convert": "convert",
    "count": "aggregate",
    "crop": "crop",
    "detect": "detect",
    "every": "every",
    "flip": "flip",
    "fps": "fps",
    "gray": "gray",
    "head": "head",
    "identity": "identity",
    "images": "images",
    "int": "integers",
    "jpeg": "jpeg",
    "line": "line",
    "max": "aggregate",
    "mean": "aggregate",
    "min": "aggregate",
    "mot": "mot",
    "mul": "aggregate",
    "null": "null",
    "print": "print",
    "rate": "rate",
    "read": "read",
    "recv": "recv",
    "resize": "resize",
    "rotate": "rotate",
    "save": "save",
    "send": "send",
    "serve": "serve",
    "serve-pass": "serve",
    "show": "show",
    "stamp": "stamp",
    "sum": "aggregate",
    "testcard": "testcard",
    "track": "track",
    "unjpeg": "jpeg",
    "write": "write",
    "zone": "zone",
    # deployments: clips of incidents, events out to home automation and web hooks
    "clip": "clip",
    "mqtt": "mqtt",
    "post": "post",
}
RUNNERS = {
    "graph": ("vflow_cli.graph.command", "graph"),
    "nats": ("vflow_cli.net.command", "nats"),
    "worker": ("vflow_cli.net.worker", "worker"),
}


@functools.cache
def plugins() -> dict[str, metadata.EntryPoint]:
    """Stage name -> entry point, for the installed packages that add stages (not imported).
    A name a built-in stage already has stays the built-in's."""
    from importlib import metadata  # 40 ms: only when a name is not built in

    found: dict[str, metadata.EntryPoint] = {}
    for entry in metadata.entry_points(group=PLUGIN_GROUP):
        if entry.name not in STAGES and entry.name not in RUNNERS:
            found.setdefault(entry.name, entry)
    return found


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*STAGES, *RUNNERS, *plugins(), *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in STAGES:
            importlib.import_module(f"vflow_stages.{STAGES[name]}")
            return REGISTRY.get(name)
        if name in RUNNERS:
            module, attribute = RUNNERS[name]
            command: Any = getattr(importlib.import_module(module), attribute)
            return command
        entry = plugins().get(name)
        if entry is not None:
            return _load_plugin(name, entry)
        return super().get_command(ctx, name)  # one added with add_command

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            import difflib

            near = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
            ctx.fail(f"no stage or command {name!r}{hint} (`vflow --help` lists them all)")
        return super().resolve_command(ctx, args)


def _load_plugin(name: str, entry: metadata.EntryPoint) -> click.Command | None:
    """Import a package's stage; a plugin that fails to load is reported, not fatal to vflow."""
    try:
        entry.load()
    except Exception as exc:
        click.echo(
            f"vflow: the stage {name!r} of {entry.value} failed to load: "
            f"{type(exc).__name__}: {exc}",
            err=True,
        )
        return None
    command = REGISTRY.get(name)
    if command is None:
        click.echo(
            f"vflow: {entry.value} declares the stage {name!r} but defines no stage of that "
            "name (decorate a function with @processor etc., or name=...)",
            err=True,
        )
    return command


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="vflow")
def cli() -> None:
    """Unix-style video stream processing: small stages that pass frames and metadata as
    msgpack packets over pipes.

    \b
      vflow testcard --frames 100 | vflow fps | vflow print
      vflow int 0 40 | vflow sum | vflow print

    Every stage reads packets on stdin and/or writes them on stdout (see vflow-packet(5)).
    Exit status: 0 done, 1 error, 2 usage, 70 internal error, 130 interrupted,
    141 downstream closed, 143 terminated.
    """


def all_commands() -> dict[str, click.Command]:
    """Every command, each module imported (for documentation and tests)."""
    ctx = click.Context(cli, info_name="vflow")
    commands = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    return {name: command for name, command in commands.items() if command is not None}


def stage_info(name: str) -> StageInfo | None:
    """What vflow knows about the stage NAME (built in or from a package), importing it."""
    ctx = click.Context(cli, info_name="vflow")
    if name in RUNNERS or cli.get_command(ctx, name) is None:
        return None
    return INFO.get(name)


class _EarlyInterrupt(BaseException):
    """Ctrl-C before a stage's runner took over signals (while Python imports it)."""


def _interrupted(signum: int, frame: Any) -> None:
    raise _EarlyInterrupt


def main() -> None:
    # Ctrl-C during start-up is a stop like any other (130, quietly), not click's "Aborted!"
    signal.signal(signal.SIGINT, _interrupted)
    try:
        cli(prog_name="vflow")
    except _EarlyInterrupt:
        sys.exit(Exit.INTERRUPTED)
