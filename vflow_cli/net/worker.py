"""net.worker: `vflow worker`: run any stage as one of many competing consumers of a stream.

    sender ──> IN ──┬──> worker 1: stage ──┐
                    ├──> worker 2: stage ──┼──> OUT ──> vflow recv (puts them in order)
                    └──> worker N: stage ──┘
                          failed --max-deliver times ──> IN.dead (+ a tombstone on OUT)

Each input goes to one worker: a JetStream pull consumer (durable: the input stream
exists) or a core NATS queue group (live). The stage runs as it does on a pipe, through
the standard runner, over a source and a sink that are the network. When the stage asks
for its next input, everything it made from the previous one is published, numbered with
that input's sequence number (part i of k; k = 0 says "nothing came of it"), and only
after the output is stored (durable) is the input acknowledged: a worker killed half-way
loses nothing, its input is redelivered (after --ack-wait) to another worker, and the
outputs it may publish twice carry the same message ids, which JetStream and recv drop.

A stage that raises on a packet does not stop the worker: the stage starts again for the
next packet, and the failed one is retried by any worker (nak) until it has failed
--max-deliver times; then it goes to IN.dead with the reason, and a tombstone tells recv
not to wait for it. A packet redelivered more often than that (workers died on it) goes
there without being tried again.

A worker ends when the stream(s) it served ended and nothing is left to do (--keep: it
stays for the next stream), or with an error when their sender went silent.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from vflow_cli.console import common_options
from vflow_cli.net.options import (
    Duration,
    address_from,
    credential_options,
    idle_option,
    key_option,
    limit_options,
)
from vflow_cli.stage import CONTEXT


@click.command(
    "worker",
    context_settings={**CONTEXT, "allow_interspersed_args": False},
)
@click.option("--from", "source", required=True, metavar="URL", help="The input stream.")
@click.option(
    "--to",
    "target",
    default=None,
    metavar="URL",
    help="Where the stage's output goes (not for a consumer stage).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run this many competing workers (processes) here.",
)
@click.option(
    "--group",
    default="workers",
    show_default=True,
    help="Workers of one group share the input (the JetStream consumer or queue group name).",
)
@click.option(
    "--mode",
    type=click.Choice(["auto", "live", "durable"]),
    default="auto",
    show_default=True,
    help="durable: a JetStream work queue with acknowledgements (the input stream is "
    "created if missing); live: a core NATS queue group; auto: durable if the input is "
    "stored, decided when it shows up (a worker may start first). A live worker says how "
    "many packets it missed.",
)
@click.option(
    "--max-deliver",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Tries of a packet that fails before it goes to the dead letters (SUBJECT.dead).",
)
@click.option(
    "--ack-wait",
    type=Duration(),
    default="30s",
    show_default=True,
    help="Durable: a packet whose worker said nothing for this long (it died) goes to "
    "another worker. A working worker tells the server so, however long the stage takes.",
)
@click.option("--keep", is_flag=True, help="Stay for the next stream when one ends.")
@click.option(
    "--quality",
    type=click.IntRange(1, 100),
    default=90,
    show_default=True,
    help="JPEG quality of output frames on the wire.",
)
@click.option("--raw", is_flag=True, help="Send output frames uncompressed.")
@idle_option
@key_option(sign=False)
@limit_options
@credential_options
@common_options
@click.argument("stage", metavar="STAGE")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[ARGS]...")
def worker(
    source: str,
    target: str | None,
    workers: int,
    stage: str,
    args: tuple[str, ...],
    verbose: int,
    quiet: int,
    debug: bool,
    **settings: Any,
) -> None:
    """Run a stage as a competing worker: inputs from --from, outputs to --to.

    STAGE is any vflow stage (built in, from an installed package, or a Python file that
    defines one) with its ARGS. Start as many workers as you like, on any machines, while
    the stream runs; `vflow recv` on the --to URL puts their output back in order. A stage that
    keeps state across packets (a tracker) is refused: each worker sees only some packets.

    \b
      vflow worker --from nats://hub/cam1 --to nats://hub/cam1.dets -- detect
      vflow worker --workers 2 --from nats:///in --to nats:///out -- ./burn.py --work 9000
      vflow recv --dead nats://hub/cam1 | vflow print     # what failed, and why

    Durable inputs (send --durable, or --mode durable) are acknowledged only after their
    output is stored: nothing is lost when a worker dies, and recv drops duplicates.
    Packets larger than the server's max_payload travel in chunks, which workers cannot
    share: send them as JPEG (the default) or raise max_payload on the server.

    Memory: a worker holds at most 128 MiB of input from the network (64 MiB waiting in
    the client, 64 MiB for its stage), plus its stage and 8 outputs waiting to be sent.
    An end more than 65536 packets beyond what the stream has shown is refused and
    counted, and heartbeats are relayed only for streams the worker had a message of.
    """
    if workers > 1:
        sys.exit(_supervise(workers))
    from vflow_cli.console import configure_logging
    from vflow_cli.errors import StageError
    from vflow_cli.net.options import credentials_from

    configure_logging(verbose - quiet)
    info = _stage(stage)
    options = info.parse(list(args))
    _refuse_state(info, options)
    if info.kind == "processor" and target is None:
        raise click.UsageError(f"{info.name} is a processor: give --to URL for its output")
    if info.kind == "consumer" and target is not None:
        raise click.UsageError(f"{info.name} is a consumer and writes nothing: drop --to")
    creds = {
        k: settings.pop(k)
        for k in ("creds", "nkey", "tls_ca", "tls_cert", "tls_key", "tls_upgrade", "servers")
    }
    try:
        from vflow_cli.net import signing
        from vflow_cli.net.connection import Limits
        from vflow_cli.net.job import Job  # nats-py: not for --help

        src = address_from(source, dict(creds))
        dst = address_from(target, dict(creds)) if target else None
        credentials_from(dict(creds))  # bad credentials are one line now, not at connect
        job = Job(
            src,
            dst,
            info,
            options,
            group=settings["group"],
            mode=settings["mode"],
            max_deliver=settings["max_deliver"],
            ack_wait=settings["ack_wait"],
            keep=settings["keep"],
            quality=None if settings["raw"] else settings["quality"],
            idle=settings["idle"],
            limits=Limits(settings["max_bytes"], settings["max_age"]),
            keys=signing.load(settings["key"]),
        )
    except StageError as exc:
        click.echo(f"vflow worker: {exc}", err=True)
        sys.exit(1)
    resilient = info.with_function(job.wrap(info.function))
    try:
        resilient.run(
            options, source=job.packets(), sink=job.sink, verbosity=verbose - quiet, debug=debug
        )
    finally:
        job.close()


def _stage(name: str) -> Any:
    """The StageInfo of a stage name or of a Python file that defines one stage."""
    from vflow_cli.catalogue import stage_info
    from vflow_cli.stage import INFO

    if name.endswith(".py") or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise click.UsageError(f"no Python file {name!r}")
        before = set(INFO)
        spec = importlib.util.spec_from_file_location(f"vflow_worker_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        found = [n for n in INFO if n not in before or INFO[n].function.__module__ == spec.name]
        if len(found) != 1:
            raise click.UsageError(f"{name} defines {len(found)} stages; a worker runs one")
        info = INFO[found[0]]
    else:
        found_info = stage_info(name)
        if found_info is None:
            raise click.UsageError(f"no stage {name!r} (`vflow --help` lists them)")
        info = found_info
    if info.kind == "producer":
        raise click.UsageError(
            f"{info.name} is a producer: it makes a stream rather than working on one "
            f"(run `vflow {info.name} | vflow send URL` instead)"
        )
    return info


def _refuse_state(info: Any, options: dict[str, Any]) -> None:
    """A stage that keeps state cannot be one of several workers."""
    if info.keeps_state(options):
        raise click.UsageError(
            f"{info.name} keeps state from one packet to the next (stateful=True), so it "
            "cannot be one of several competing workers: each would see only some packets. "
            f"Run it after the receiver: vflow recv URL | vflow {info.name}"
        )


def _supervise(count: int) -> int:
    """--workers N: N worker processes; signals go to each; the worst exit status wins."""
    argv = _without_workers(list(sys.argv[1:]))
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "vflow_cli", *argv],
            env={**os.environ, "VFLOW_WORKER_INDEX": str(i)},
        )
        for i in range(count)
    ]

    def forward(signum: int, frame: Any) -> None:
        for child in children:
            with contextlib.suppress(OSError):
                child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    codes = [child.wait() for child in children]
    bad = [c for c in codes if c != 0]
    if not bad:
        return 0
    return bad[0] if bad[0] > 0 else 128 - bad[0]


def _without_workers(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "worker" and not out:
            out.append(arg)
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        if arg == "--" or (out and not arg.startswith("-") and argv[i - 1] not in _VALUED):
            out.extend(argv[i:])
            break
        out.append(arg)
    return out


_VALUED = {
    "--from",
    "--to",
    "--group",
    "--mode",
    "--max-deliver",
    "--ack-wait",
    "--quality",
    "--idle",
    "--max-bytes",
    "--max-age",
    "--creds",
    "--nkey",
    "--tls-ca",
    "--tls-cert",
    "--tls-key",
    "--key",
}
