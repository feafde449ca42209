"""recv: receive a stream from a NATS subject, in order, ending when its sender ends. Streaming."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import click

from vflow_cli.net.options import Duration, credential_options, idle_option, key_option
from vflow_cli.stage import REGISTRY, Packet, producer


@producer
@click.argument("url")
@click.option(
    "--durable",
    metavar="NAME",
    default=None,
    help="Read the stored stream (see send --durable; created if missing) through the "
    "JetStream consumer NAME: started again with the same NAME, recv goes on where it stopped.",
)
@click.option(
    "--reorder",
    type=Duration(),
    default=None,
    metavar="SECONDS",
    help="Wait at most this long for a late packet before skipping it (counted). "
    "Default: 1s live, 60s durable.",
)
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Packets held for reordering at most; beyond, the missing one is skipped.",
)
@idle_option
@click.option(
    "--start",
    type=click.Choice(["all", "new"]),
    default="all",
    show_default=True,
    help="With --durable, for a new NAME: from the oldest stored message, or from now.",
)
@click.option(
    "--compressed",
    is_flag=True,
    help="Hand on frames that travelled as JPEG still compressed (for a stage that stores "
    "them); by default they are decoded back to pixels.",
)
@click.option(
    "--dead",
    is_flag=True,
    help="Read the packets the workers of SUBJECT gave up on (SUBJECT.dead), each with a "
    "'dead' field saying why, then end.",
)
@click.option(
    "--replay",
    is_flag=True,
    help="With --dead: also put them back on SUBJECT for the workers, and remove them "
    "from the dead letters.",
)
@key_option(sign=False)
@credential_options
def recv(
    url: str,
    durable: str | None,
    reorder: float | None,
    window: int,
    idle: float,
    start: str,
    compressed: bool,
    dead: bool,
    replay: bool,
    key: str | None,
    **credentials: Any,
) -> Iterator[Packet]:
    """Receive a stream from a NATS subject (see `vflow send`), in order, until it ends.

    recv follows the first stream it hears on the subject and restores the order of its
    packets (workers finish them out of order), waiting --reorder seconds at most for a
    late one. It ends after the stream's last packet, like a pipe; when the stream was
    cut, or went silent for --idle seconds (its sender died), it ends with an error and
    no end of stream, so the stages after it know. A packet that came twice (a
    redelivery) is handed on once.

    \b
      vflow recv nats:///demo | vflow print
      vflow recv --durable rec nats://hub/cam1 | vflow write cam1.mkv
      vflow recv --reorder 2 nats://hub/cam1.dets | vflow track | vflow show
      vflow recv nats://hub/            # list the streams on that server
      vflow recv --dead nats://hub/cam1 | vflow print

    Ctrl-C stops it cleanly (a durable receiver keeps its place).

    Memory is bounded whatever the network claims: recv holds at most 576 MiB of packets
    (128 MiB waiting in the client, 64 MiB for the next stage, 128 MiB held for
    reordering, 256 MiB of unfinished chunked packets) and stays within that plus 64 MiB
    under forged messages. A number or an end more than 65536 packets beyond what the
    stream has shown is refused and counted (a forgery); a gap is skipped in one step.
    Text from the network (reasons, ids) is printed with control characters escaped.
    """
    from vflow_cli.net.options import address_from

    address = address_from(url, credentials)
    if replay and not dead:
        raise click.UsageError("--replay goes with --dead")
    if dead:
        from vflow_cli.net.dead import read_dead

        yield from read_dead(address, replay=replay)
        return
    from vflow_cli.net import signing
    from vflow_cli.net.receiver import Receiver

    yield from Receiver(
        address,
        durable=durable,
        reorder=reorder,
        window=window,
        idle=idle,
        pixels=not compressed,
        start=start,
        keys=signing.load(key),
    )


def _listing(run: Callable[..., None]) -> Callable[..., None]:
    """`vflow recv nats://hub/` (no subject) prints the streams there instead. Done when
    the command runs, not in a callback of its URL: parsing the arguments (as `vflow graph
    --check` and `--dot` do) must never connect anywhere."""

    @functools.wraps(run)
    def callback(**options: Any) -> None:
        url = options["url"]
        if url and url.rstrip("/").count("/") == 2:
            from vflow_cli.net.command import print_streams

            print_streams(url, click.get_current_context(), options)
            return
        run(**options)

    return callback


REGISTRY["recv"].callback = _listing(REGISTRY["recv"].callback)  # type: ignore[arg-type]
