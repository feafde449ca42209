"""net.options: the click options send, recv, worker and `vflow nats` share, defined once.

Importing this module imports neither nats-py nor asyncio: `vflow --help` stays fast.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import click

from vflow_cli.net.url import Address, Credentials, parse

F = Callable[..., Any]
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str) -> float:
    """'90s', '15m', '1h', '2d', '0.5' (seconds) -> seconds."""
    match = DURATION.match(str(text))
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration (e.g. 30s, 15m, 1h, 2d)")
    return float(match.group(1)) * SECONDS[match.group(2)]


class Duration(click.ParamType):
    name = "DURATION"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(value)
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


class Size(click.ParamType):
    name = "SIZE"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        from vflow_cli.framing import parse_bytes

        if isinstance(value, int):
            return value
        try:
            return parse_bytes(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _file(name: str, help: str, envvar: str) -> F:
    return click.option(
        name,
        type=click.Path(exists=True, dir_okay=False),
        envvar=envvar,
        show_envvar=True,
        default=None,
        metavar="FILE",
        help=help,
    )


def credential_options(fn: F) -> F:
    """--server, --creds, --nkey, --tls-ca, --tls-cert, --tls-key, --tls-upgrade (and
    VFLOW_NATS_* variables)."""
    for option in reversed(
        (
            click.option(
                "--server",
                "servers",
                multiple=True,
                metavar="HOST[:PORT]",
                help="Another server of the same NATS cluster, to fail over to (repeat it; "
                "the same as nats://HOST1,HOST2,HOST3/SUBJECT).",
            ),
            _file("--creds", "NATS credentials file (user JWT and nkey seed).", "VFLOW_NATS_CREDS"),
            _file("--nkey", "NATS nkey seed file (a user's private nkey).", "VFLOW_NATS_NKEY"),
            _file("--tls-ca", "Trust servers whose certificate this CA signed.", "VFLOW_NATS_CA"),
            _file("--tls-cert", "Client certificate for TLS (with --tls-key).", "VFLOW_NATS_CERT"),
            _file("--tls-key", "The client certificate's private key.", "VFLOW_NATS_KEY"),
            click.option(
                "--tls-upgrade",
                is_flag=True,
                envvar="VFLOW_NATS_TLS_UPGRADE",
                show_envvar=True,
                help="TLS after the server's first plain-text line, for a server without "
                "handshake_first in its tls block (older than nats-server 2.10.4); by "
                "default TLS comes first. Either way, no TLS: nothing sent.",
            ),
        )
    ):
        fn = option(fn)
    return fn


def limit_options(fn: F) -> F:
    """--max-bytes, --max-age: a stored stream's retention."""
    fn = click.option(
        "--max-age",
        type=Duration(),
        default="1h",
        show_default=True,
        help="With --durable: keep messages this long (30s, 15m, 1h, 2d).",
    )(fn)
    return click.option(
        "--max-bytes",
        type=Size(),
        default="1G",
        show_default=True,
        help="With --durable: the stream's size limit; when full, the sender waits "
        "(back-pressure) until old messages leave.",
    )(fn)


def key_option(sign: bool) -> Callable[[F], F]:
    """--key FILE: sign (send) or check (recv, worker) every message (net.signing)."""
    what = (
        "Sign every message with the first key of FILE (HMAC-SHA256; receivers with --key "
        "refuse what is not signed)."
        if sign
        else "Accept only messages signed with a key of FILE (see send --key); refuse and "
        "count the others, forged ends and cuts included."
    )
    return _file("--key", what, "VFLOW_STREAM_KEY")


def idle_option(fn: F) -> F:
    return click.option(
        "--idle",
        type=Duration(),
        default="10s",
        show_default=True,
        help="End with an error (no end of stream) when the stream's sender has said "
        "nothing, not even its once-a-second heartbeat, for this long; 0 waits forever.",
    )(fn)


def credentials_from(options: dict[str, Any]) -> Credentials:
    """Pop the credential options out of a stage's options; add the environment's secrets."""
    cert, key = options.pop("tls_cert", None), options.pop("tls_key", None)
    if bool(cert) != bool(key):
        raise click.UsageError("--tls-cert and --tls-key go together (a certificate and its key)")
    return Credentials(
        user=os.environ.get("VFLOW_NATS_USER") or None,
        password=os.environ.get("VFLOW_NATS_PASSWORD") or None,
        token=os.environ.get("VFLOW_NATS_TOKEN") or None,
        creds=options.pop("creds", None),
        nkey=options.pop("nkey", None),
        tls_ca=options.pop("tls_ca", None),
        tls_cert=cert,
        tls_key=key,
        tls_upgrade=bool(options.pop("tls_upgrade", False)),
    )


def address_from(url: str, options: dict[str, Any], *, subject: bool = True) -> Address:
    """The stream's address from a URL argument and the credential options (popped)."""
    servers = options.pop("servers", ())
    address = parse(url, credentials_from(options), servers)
    if subject and not address.subject:
        raise click.BadParameter(
            f"{url!r} names no subject: write nats://HOST/SUBJECT (or nats:///SUBJECT)",
            param_hint="URL",
        )
    return address
