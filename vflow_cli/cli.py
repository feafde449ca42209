"""cli: the `vflow` click group. A stage's module is imported only when that stage runs.

`vflow int 0 9` imports click, the runner and stages/integers.py, not the other stages
(click's "lazily loading subcommands" pattern): start-up time is paid by every process of
every pipeline and every graph node.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from vflow_cli import __version__
from vflow_cli.stage import CONTEXT, REGISTRY

# stage name -> module under stages/ (tests/test_docs.py checks this against the modules)
STAGES = {
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
    "max": "aggregate",
    "mean": "aggregate",
    "min": "aggregate",
    "mul": "aggregate",
    "null": "null",
    "print": "print",
    "rate": "rate",
    "read": "read",
    "resize": "resize",
    "rotate": "rotate",
    "save": "save",
    "show": "show",
    "stamp": "stamp",
    "sum": "aggregate",
    "testcard": "testcard",
    "track": "track",
    "unjpeg": "jpeg",
    "write": "write",
}
RUNNERS = {"graph": ("vflow_cli.graph.command", "graph")}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*STAGES, *RUNNERS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in STAGES:
            importlib.import_module(f"vflow_stages.{STAGES[name]}")
            return REGISTRY.get(name)
        if name in RUNNERS:
            module, attribute = RUNNERS[name]
            command: Any = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, name)  # one added with add_command (a plugin)


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


def main() -> None:
    cli(prog_name="vflow")
