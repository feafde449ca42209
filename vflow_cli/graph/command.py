"""graph.command: the `vflow graph` subcommand (options, help, exit codes)."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click

from vflow_cli.console import common_options, debugging, internal_error
from vflow_cli.stage import CONTEXT
from vflow_cli.status import Exit
from vflow_cli.web.auth import access_options


@click.command("graph", context_settings=CONTEXT)
@click.argument("spec", metavar="SPEC.toml", type=click.Path(dir_okay=False))
@click.option("--check", is_flag=True, help="Only check the spec (and GPU needs); start nothing.")
@click.option("--dot", "dot", is_flag=True, help="Print the graph in Graphviz dot and exit.")
@click.option(
    "--render",
    metavar="FILE",
    default=None,
    help="With --dot: draw the graph into FILE (format from its extension: png, svg, "
    "pdf) with Graphviz's `dot` program.",
)
@click.option(
    "--stats",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Print packets in/out, rates, queue fill and drops every "
    "SECONDS on stderr (this relays every edge so that each one is counted). "
    "SIGUSR1 prints them once at any time.",
)
@click.option(
    "--gpus",
    metavar="LIST",
    default=None,
    help="The GPUs nodes may use, e.g. 0,1 (default: VFLOW_GPUS, else "
    "CUDA_VISIBLE_DEVICES, else the GPUs nvidia-smi lists).",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="After a stop, how long the nodes may drain before SIGTERM (default: the "
    "spec's [graph] grace, else 10).",
)
@click.option(
    "--serve",
    "serve_port",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="PORT",
    help="Serve a live page of the running graph on PORT (0: a free one; the address is "
    "printed): the drawing, each node's state and rates, how busy its stages are and "
    "which one the others wait on (the bottleneck), queue fill and drops, a failed "
    "node's last stderr lines; /metrics for Prometheus, /status.json, /events. Like "
    "--stats, it relays every edge so that each one is counted.",
)
@click.option(
    "--linger",
    type=click.FloatRange(min=0),
    default=0,
    metavar="SECONDS",
    help="With --serve: keep the page up this long after the graph has ended, showing how "
    "it ended (Ctrl-C ends the wait).",
)
@access_options
@common_options
def graph(
    spec: str,
    check: bool,
    dot: bool,
    render: str | None,
    stats: float | None,
    gpus: str | None,
    grace: float | None,
    serve_port: int | None,
    linger: float,
    bind: str,
    token: str | None,
    token_file: str | None,
    no_token: bool,
    allow_host: tuple[str, ...],
    verbose: int,
    quiet: int,
    debug: bool,
) -> None:
    """Run a graph of stages described in SPEC.toml: each node a process, wired by pipes.

    A node runs a vflow stage (`run = ["sum"]`), any program that speaks the packet format
    (`command = [...]`) or a Python script (`python = [...]`), and reads from the nodes named
    in `from`. One output may feed several nodes (each through its own bounded queue, which
    blocks or drops: `queue = { size = 8, leaky = "old" }`); several inputs are merged as
    packets arrive or zipped by frame number (`join = "zip"`); `workers = N` runs N copies
    of a slow stage and keeps the packets in order. The format is in vflow-graph(5).

    \b
      [nodes.src]
      run = ["int", "0", "40"]
      [nodes.total]
      run = ["sum"]
      from = ["src"]
      [nodes.out]
      run = ["print"]
      from = ["total"]

    Ctrl-C stops the producers and lets the rest drain (a second one stops everything);
    SIGTERM does the same. Every node's stderr is shown prefixed with its name.

    Exit status: 0 done; 1 a bad spec, or a node failed (the first failed node's own status
    when it has one: 70, 137 for SIGKILL, ...); 130 interrupted; 143 terminated.
    """
    import signal

    from vflow_cli.graph import devices
    from vflow_cli.graph import spec as specs
    from vflow_cli.graph.plan import make_plan

    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # until the runner shows statistics on it

    if render is not None and not dot:
        raise click.UsageError("--render goes with --dot (vflow graph --dot --render out.png)")
    try:
        loaded = specs.load(spec)
        wanted = any(node.device in ("gpu", "prefer-gpu") for node in loaded.nodes.values())
        # a drawing starts nothing, so it needs no GPU: it shows what could not be placed
        placed = devices.allocate_gpus(
            loaded, devices.visible_gpus(gpus, probe=wanted), strict=not dot
        )
    except specs.SpecError as exc:
        for line in exc.lines:
            click.echo(f"vflow graph: {line}", err=True)
        sys.exit(Exit.ERROR)
    plan = make_plan(loaded, placed, relay_all=stats is not None or serve_port is not None)
    if dot:
        from vflow_cli.graph.dot import RenderError, to_dot
        from vflow_cli.graph.dot import render as draw

        if render is None:
            click.echo(to_dot(plan), nl=False)
            return
        try:
            draw(plan, render)
        except RenderError as exc:
            click.echo(f"vflow graph: {exc}", err=True)
            sys.exit(Exit.ERROR)
        return
    verbosity = verbose - quiet
    if check:
        if verbosity >= 0:
            for warning in plan.warnings:
                click.echo(f"vflow graph: warning: {warning}", err=True)
            n = len(loaded.nodes)
            click.echo(f"vflow graph: {spec}: {n} node{'s' * (n != 1)}, ok", err=True)
        return
    from vflow_cli.graph.run import Graph

    runner = Graph(plan, verbosity=verbosity, grace=grace, stats=stats)
    page = None
    if serve_port is not None:
        access = {"no_token": no_token, "allow_hosts": allow_host}
        page = _live_page(runner, plan, serve_port, bind, token, token_file, verbosity, access)
    try:
        code = runner.run()
    except Exception as exc:  # a bug in the runner: one line, unless asked for more
        if debugging(debug):
            raise
        internal_error(exc, "vflow graph")
        sys.exit(Exit.BUG)
    finally:
        if page is not None:
            page.refresh()  # the final states, for anyone still looking
            if linger:
                _wait(linger)
            page.close()
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    sys.exit(code)


def _wait(seconds: float) -> None:
    """Sleep, until Ctrl-C or SIGTERM: they end the wait, not the status of the graph."""
    import signal
    import threading

    done = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.signal(s, lambda *_: done.set()) for s in signals}
    try:
        done.wait(seconds)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _live_page(
    runner: Any,
    plan: Any,
    port: int,
    bind: str,
    token: str | None,
    token_file: str | None,
    verbosity: int,
    access: dict[str, Any],
) -> Any:
    """Start the graph's live page (vflow_cli.web.graph_page); one line and exit 1 if it
    cannot listen or its token is unusable."""
    from vflow_cli.console import configure_logging
    from vflow_cli.graph.dot import to_dot
    from vflow_cli.stage import StageError
    from vflow_cli.web.auth import read_token
    from vflow_cli.web.graph_page import serve_graph

    configure_logging(verbosity)  # the page's own lines (a refused token) name the graph
    try:
        page = serve_graph(
            runner.stats.snapshot,
            to_dot(plan),
            bind=bind,
            port=port,
            token=read_token(token, token_file, access["no_token"]),
            **access,
        )
    except StageError as exc:
        click.echo(f"vflow graph: {exc}", err=True)
        sys.exit(Exit.ERROR)
    click.echo(f"vflow graph: live page on {page.url}", err=True)
    return page
