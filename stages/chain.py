"""chain: run several stages in one process, joined by iterators. Streaming, as its stages."""

from __future__ import annotations

from typing import Any

import click

from vflow_cli import chain as chains
from vflow_cli.console import common_options
from vflow_cli.runner import run_stage
from vflow_cli.stage import CONTEXT, INFO, REGISTRY, StageInfo


def _members(options: dict[str, Any]) -> list[chains.Member]:
    return chains.members(chains.split(options["stages"]))


@click.command(
    "chain",
    context_settings={**CONTEXT, "ignore_unknown_options": True},
    # `vflow chain -v resize 640x360 --mode fit , flip`: options after the first stage's
    # name are that stage's
)
@click.argument("stages", nargs=-1, required=True, type=click.UNPROCESSED, metavar="STAGE , ...")
@common_options
def chain(verbose: int, quiet: int, debug: bool, stages: tuple[str, ...]) -> None:
    """Run several stages in one process: 'resize 640x360' , 'flip'.

    Each STAGE is a stage with its arguments, as one quoted word or as words; a lone comma
    separates them. Packets go from one stage to the next as objects, with no pipe, no copy
    and no parsing; each stage keeps its own state, and sees every packet in order, exactly
    as on a pipe. The first stage may be a producer, the last a consumer. -v reports how
    busy each stage was. In a graph, `group = "NAME"` on nodes does the same (vflow-graph(5)).

    \b
      vflow read in.mp4 | vflow chain 'resize 640x360' , 'flip' | vflow write out.mp4
      vflow chain testcard --frames 100 , flip , 'stamp {seq}' | vflow show
    """
    found = _members({"stages": stages})
    kind = chains.kind_of(found)
    clock = chains.Clock([m.name for m in found])
    run_stage(
        kind,
        chains.compose(found, clock),
        {},
        verbosity=verbose - quiet,
        debug=debug,
        lazy=not chains.looks_at_pixels(found),
        clock=clock,
    )


chain.params.reverse()  # the stage words last: -v and friends come first in --help
REGISTRY["chain"] = chain
INFO["chain"] = StageInfo(
    "chain",
    "processor",
    lambda packets, stages: chains.compose(_members({"stages": stages}))(packets),
    chain,
    lambda options: chains.looks_at_pixels(_members(options)),
    lambda options: chains.keeps_state(_members(options)),
)
