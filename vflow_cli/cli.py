"""cli: the `vflow` click group. What exists, and loading it, is vflow_cli.catalogue's.

`vflow int 0 9` imports click, the runner and stages/integers.py, not the other stages
(click's "lazily loading subcommands" pattern): start-up time is paid by every process of
every pipeline and every graph node.
"""

from __future__ import annotations

from typing import Any

import click

from vflow_cli import __version__, catalogue
from vflow_cli.stage import CONTEXT


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*catalogue.names(), *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        found = catalogue.command(name)
        return found if found is not None else super().get_command(ctx, name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            import difflib

            near = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
            ctx.fail(f"no stage or command {name!r}{hint} (`vflow --help` lists them all)")
        return super().resolve_command(ctx, args)


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


def main() -> None:
    """The command line; `vflow_cli.__main__` takes Ctrl-C during start-up before this."""
    cli(prog_name="vflow")
