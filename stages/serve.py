"""serve, serve-pass: watch the stream in a browser (a live picture, its metadata, /metrics).
Streaming: frames are read and JPEG-encoded only while someone watches.

`serve` ends a pipeline; `serve-pass` sits in the middle and passes every packet on
unchanged. They are two stages, not one with a flag, because a stage's kind decides how it
is run and wired (a consumer has no output; `vflow graph` reads the kind from the stage's
name); in a graph, a serve node on a fan-out branch with a leaky queue is the usual shape.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

from vflow_cli.stage import Packet, consumer, log, processor
from vflow_cli.web.auth import access_options


def _options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options serve and serve-pass share."""
    options: list[Callable[[Any], Any]] = [
        click.option(
            "-p",
            "--port",
            type=click.IntRange(0, 65535),
            default=8080,
            show_default=True,
            help="TCP port to listen on; 0 picks a free one (the address is printed).",
        ),
        access_options,
        click.option(
            "--name",
            default=None,
            help="The page's title and the `stream` label of /metrics. Default: the "
            "stream's source name.",
        ),
        click.option(
            "--quality",
            type=click.IntRange(1, 100),
            default=80,
            show_default=True,
            help="JPEG quality of the picture viewers get.",
        ),
        click.option(
            "--max-fps",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            metavar="RATE",
            help="Encode at most RATE frames a second for viewers (the stream itself is "
            "untouched). Default: every frame, while someone watches.",
        ),
        click.option(
            "--max-clients",
            type=click.IntRange(1, 10000),
            default=64,
            show_default=True,
            help="Connections at once; more get 503.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0.1),
            default=10.0,
            show_default=True,
            metavar="SECONDS",
            help="Drop a client that sends no request, or takes no frame, for SECONDS; "
            "/frame.jpg waits this long for a frame.",
        ),
        click.option(
            "--wait",
            is_flag=True,
            help="At end of input keep serving the last frame and packet until Ctrl-C "
            "(every frame is then read, though encoded only for viewers).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@contextlib.contextmanager
def _server(**opts: Any) -> Iterator[Any]:
    """The stream's server, for the time of the stage; at end of input, with --wait, it
    stays up until Ctrl-C."""
    from vflow_cli.runner import interrupted
    from vflow_cli.web.auth import read_token
    from vflow_cli.web.stream import StreamServer

    token = read_token(opts["token"], opts["token_file"], opts["no_token"])
    server = StreamServer(
        name=opts["name"],
        bind=opts["bind"],
        port=opts["port"],
        token=token,
        no_token=opts["no_token"],
        allow_hosts=opts["allow_host"],
        quality=opts["quality"],
        max_fps=opts["max_fps"],
        max_clients=opts["max_clients"],
        timeout=opts["timeout"],
        keep_last=opts["wait"],
        log=log,
    )
    # the address is what a person starting a server needs, so it shows without -v
    log.warning("serving on %s%s", server.url, _reach(server.url, token))
    try:
        yield server
        server.end()
        if opts["wait"]:
            log.warning("the input ended; serving the last frame until Ctrl-C")
            while not interrupted():
                time.sleep(0.2)
    finally:
        server.close()


def _reach(url: str, token: str | None) -> str:
    """What follows the address: how others reach a server on every address, the token."""
    import socket

    notes = []
    if url.startswith(("http://0.0.0.0:", "http://[::]:")):
        notes.append(f"from elsewhere: http://{socket.gethostname()}:{url.rsplit(':', 1)[1]}")
    notes.append("a token is needed" if token else "")
    text = "; ".join(n for n in notes if n)
    return f" ({text})" if text else ""


def _refuse_pass(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        raise click.UsageError(
            "serve ends a pipeline; to serve the stream and pass it on, use "
            "`vflow serve-pass` (same options)"
        )


@consumer(pixels=False)
@_options
@click.option(
    "--pass",
    "pass_",
    is_flag=True,
    hidden=True,
    expose_value=False,
    is_eager=True,
    callback=_refuse_pass,
)
def serve(packets: Iterator[Packet], **options: Any) -> None:
    """Serve the stream over HTTP: a live picture for browsers, its metadata, /metrics.

    \b
      /             a page: the live picture and the newest packet's fields; it shows
                    the pixel under the cursor (in the frame's own coordinates), and
                    clicks on the picture make a `vflow line` or `vflow zone` argument
      /stream.mjpg  the picture as MJPEG (an <img>, VLC, ffplay, OpenCV read it)
      /frame.jpg    the newest frame as one JPEG (for curl in a cron job)
      /meta         the newest packet's metadata as JSON (?kind=K: of kind K)
      /events       Server-Sent Events: each packet's metadata, the status
      /metrics      Prometheus text: frames, encodes, viewers, requests

    A frame is JPEG-encoded once, whatever the number of viewers, and only while someone
    watches; a slow viewer skips frames, one that takes nothing for --timeout is dropped.
    The pipeline never waits for a viewer. One server serves one stream: run one per
    stream, each on its own --port. `vflow serve-pass` serves and passes the stream on.

    \b
      vflow camera 0 | vflow stamp '{time}' | vflow serve --port 8080
      vflow read a.mp4 --realtime | vflow serve --bind 0.0.0.0 --token-file key
      curl -s localhost:8080/frame.jpg -o now.jpg
      curl -s localhost:8080/meta | jq .seq
    """
    with _server(**options) as server:
        take = server.packet
        for packet in packets:
            take(packet)


@processor(name="serve-pass", pixels=False)
@_options
def serve_pass(packets: Iterator[Packet], **options: Any) -> Iterator[Packet]:
    """Serve the stream over HTTP as `serve` does, and pass every packet on unchanged.

    The pages, options and limits are those of `vflow serve`. No viewer costs the stream
    nothing: its frames then go on without being read into this process.

    \b
      vflow camera 0 | vflow serve-pass --port 8080 | vflow write cam.mkv
    """
    with _server(**options) as server:
        take = server.packet
        for packet in packets:
            take(packet)
            yield packet
