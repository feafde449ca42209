"""send: publish the stream on a NATS subject (live or stored in JetStream). Streaming."""

from __future__ import annotations

from collections.abc import Iterator

import click

from vflow_cli.net.options import credential_options, key_option, limit_options
from vflow_cli.stage import Packet, consumer


@consumer
@click.argument("url")
@click.option(
    "--durable",
    is_flag=True,
    help="Store the stream in JetStream (created if missing): receivers may come later, "
    "resume after a restart, and workers share it as a work queue. Default: live.",
)
@click.option(
    "--quality",
    type=click.IntRange(1, 100),
    default=90,
    show_default=True,
    help="JPEG quality of frames on the wire.",
)
@click.option(
    "--raw", is_flag=True, help="Send frames uncompressed (exact pixels, 10-20x more bytes)."
)
@limit_options
@click.option(
    "--replicas",
    type=click.IntRange(min=0, max=5),
    default=0,
    help="With --durable, for a new stream: the copies a NATS cluster keeps (0: 3 on a "
    "cluster, fewer on a smaller one, 1 on a single server).  [default: 0]",
)
@click.option(
    "--queue",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Packets waiting to be sent. Live: when full, the oldest is dropped (counted); "
    "durable: the input waits.",
)
@key_option(sign=True)
@credential_options
def send(
    packets: Iterator[Packet],
    url: str,
    durable: bool,
    quality: int,
    raw: bool,
    max_bytes: int,
    max_age: float,
    replicas: int,
    queue: int,
    key: str | None,
    **credentials: str | None,
) -> None:
    """Send the stream to a NATS subject; `vflow recv URL` on any machine receives it.

    URL is nats://[USER[:PASSWORD]@]HOST[:PORT]/SUBJECT (tls://... for TLS), or
    nats:///SUBJECT for the local server, which vflow starts by itself and shares
    (`vflow nats` shows it). Frames travel as JPEG unless --raw; a packet larger than the
    server's max_payload goes in chunks. When the input ends, receivers end after the
    last packet; when it is cut, or send is killed, they end with an error.

    \b
      vflow testcard --fps 30 | vflow send nats:///demo
      vflow camera 0 | vflow send --durable nats://hub:4222/cam1
      VFLOW_NATS_TOKEN=... vflow read clip.mp4 | vflow send --raw tls://hub/clip

    Live (default): nothing is stored, a slow receiver misses packets, a late one starts
    now. Credentials: USER:PASSWORD or a TOKEN in the URL, or (kept out of `ps`)
    VFLOW_NATS_USER, VFLOW_NATS_PASSWORD, VFLOW_NATS_TOKEN, --creds, --nkey. -v reports
    packets, bytes and bytes/s.

    Security: receivers treat everything from the network as hostile (sizes checked before
    anything is allocated, memory bounded, numbers and ends far beyond what the stream has
    shown refused, control characters escaped). With --key FILE every message is signed
    (HMAC-SHA256, vflow-packet(5)), and recv and worker with --key refuse what their key
    did not sign: a forged packet, end or cut is ignored. Who may connect, publish and
    subscribe is NATS's job (users, per-subject permissions: a camera may publish only its
    subject, a viewer may only subscribe), and secrecy on the wire is TLS's (tls://): a
    signed stream is not encrypted.
    """
    from vflow_cli.net import signing
    from vflow_cli.net.connection import Limits
    from vflow_cli.net.options import address_from
    from vflow_cli.net.sender import Sender

    address = address_from(url, credentials)
    out = Sender(
        address,
        durable=durable,
        quality=None if raw else quality,
        queue=queue,
        limits=Limits(max_bytes, max_age, replicas=replicas),
        keys=signing.load(key),
    )
    try:
        for packet in packets:
            out.write(packet)
    except BaseException as exc:  # tell receivers the stream did not finish, then go on
        out.cut(_why(exc))
        raise
    out.end()


def _why(exc: BaseException) -> str:
    from vflow_cli.framing import StreamCut

    if isinstance(exc, StreamCut):
        return f"the sender's input was cut ({exc})"
    if isinstance(exc, KeyboardInterrupt):
        return "the sender was interrupted"
    if type(exc).__name__ == "Terminated":
        return "the sender was terminated"
    return f"the sender failed: {exc}"
