"""post: send each event as JSON to an HTTP endpoint (a web hook), retrying. Streaming."""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.stage import Packet, StageError, consumer, log

BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0
RETRIED = {408, 425, 429, 500, 502, 503, 504}  # the server may take it later; others: never


def backoff(attempt: int) -> float:
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempt - 1))


def _header(ctx: Any, param: Any, value: tuple[str, ...]) -> dict[str, str]:
    headers = {}
    for text in value:
        name, colon, content = text.partition(":")
        if not colon or not name.strip() or any(c in text for c in "\r\n"):
            raise click.BadParameter(f"{text!r}: give NAME: VALUE, e.g. 'Authorization: Bearer T'")
        headers[name.strip()] = content.strip()
    return headers


class Endpoint:
    """Where events go: the URL without credentials, and the headers that carry them."""

    def __init__(self, url: str, headers: dict[str, str], tls_ca: str | None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise click.BadParameter(f"{url!r}: give http://HOST[:PORT]/PATH or https://...")
        self.headers = {"Content-Type": "application/json", "User-Agent": "vflow", **headers}
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers.setdefault("Authorization", f"Basic {token}")
        self.url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        self.shown = urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=""))
        self.context = None
        if tls_ca:
            import ssl

            self.context = ssl.create_default_context(cafile=tls_ca)

    def send(self, body: bytes, timeout: float) -> tuple[bool, str]:
        """(delivered, why not); a reply the server may change its mind about is retried."""
        request = urllib.request.Request(self.url, body, self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.context) as reply:
                reply.read(1 << 16)
            return True, ""
        except urllib.error.HTTPError as exc:
            why = f"HTTP {exc.code}"
            if exc.code not in RETRIED:
                raise StageError(
                    f"{self.shown} refused an event ({why}); check the URL and its "
                    "credentials (not retried)"
                ) from None
            return False, why
        except (OSError, ValueError) as exc:  # refused, reset, timed out, TLS
            reason = getattr(exc, "reason", exc)
            return False, "".join(c if c.isprintable() else "?" for c in str(reason))[:200]


@consumer(pixels=False)
@click.argument("url", metavar="URL")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help="Send packets of this kind (repeatable). Default: event.",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    callback=_header,
    help="An HTTP header for every request (repeatable), e.g. 'Authorization: Bearer T'.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Tries after the first for one event, waiting 0.5 s, 1 s, 2 s ... up to 10 s "
    "between them, before it is given up.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up one request after this many seconds (then retry).",
)
@click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    metavar="FILE",
    help="Trust https servers whose certificate this CA signed.",
)
def post(
    packets: Iterator[Packet],
    url: str,
    kinds: tuple[str, ...],
    headers: dict[str, str],
    retries: int,
    timeout: float,
    tls_ca: str | None,
) -> None:
    """POST each event to URL as JSON (a web hook), retrying with backoff.

    The body is the packet's metadata as one JSON object (as `vflow print` shows it). A
    connection refused, a timeout or a reply of 408, 429, 500, 502, 503 or 504 is tried
    again; other replies (400, 401, 404 ...) end the stage with one line. User and password
    in the URL (https://user:pass@host/hook) go as HTTP basic authentication. Events are
    sent one at a time, in order: while one is retried, the input waits (in a graph, a
    leaky queue before this node keeps the rest of the graph going). An event still not
    taken after --retries is dropped with one line, and the stage exits 1 at the end.

    \b
      vflow camera 0 | vflow detect | vflow track | vflow line door 0,300 640,300 \\
        | vflow post https://hooks.example/door --header 'Authorization: Bearer T0K3N'
    """
    from vflow_cli.packets import to_json

    endpoint = Endpoint(url, headers, tls_ca)
    wanted = set(kinds or ("event",))
    sent = failed = 0
    for packet in packets:
        if packet.get("kind") not in wanted:
            continue
        body = to_json(packet).encode()
        number = packet.get("seq")
        if not isinstance(number, int):  # its own number, else its place in the input
            number = sent + failed
        attempt = 0
        while True:
            ok, why = endpoint.send(body, timeout)
            if ok:
                sent += 1
                break
            attempt += 1
            if attempt > retries:
                failed += 1
                log.warning(
                    "%s did not take event %s after %d tries (%s); dropped",
                    endpoint.shown,
                    number,
                    attempt,
                    why,
                )
                break
            log.info("%s: %s; try %d in %.1f s", endpoint.shown, why, attempt + 1, backoff(attempt))
            time.sleep(backoff(attempt))
    if failed:
        raise StageError(f"{failed} events were not delivered to {endpoint.shown}")
    log.info("%d events sent to %s", sent, endpoint.shown)
