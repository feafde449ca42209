"""cli: the `vflow` click group. Each module under stages/ registers its commands."""

from __future__ import annotations

import importlib
import pkgutil

import click
import vflow_stages

from vflow_cli import __version__
from vflow_cli.graph.command import graph
from vflow_cli.stage import CONTEXT, REGISTRY


def _load_stages() -> None:
    for module in pkgutil.iter_modules(vflow_stages.__path__):
        importlib.import_module(f"vflow_stages.{module.name}")


@click.group(context_settings=CONTEXT)
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


_load_stages()
for _name, _command in sorted(REGISTRY.items()):
    cli.add_command(_command, _name)
cli.add_command(graph, "graph")


def main() -> None:
    cli(prog_name="vflow")
