"""net.url: where a stream lives (`nats://[user[:password]@]host[:port]/SUBJECT`) and the
credentials to reach it (user/password, token, nkey seed, .creds file, TLS).

    nats://hub:4222/cam1          a server, subject cam1 (port 4222 by default)
    nats://alice:s3cret@hub/cam1  user and password
    nats://TOKEN@hub/cam1         a user without a password is a token (the NATS convention)
    tls://hub/cam1                TLS required (as nats:// with --tls-ca or a client cert)
    nats://h1,h2:4223/cam1        several servers of one cluster (or --server, repeated):
                                  the client fails over from one to the next
    nats:///cam1                  no host: the local server vflow starts itself (net.server)
    nats://hub/                   no subject: list the streams (recv, `vflow nats list`)

Secrets in a URL show in `ps`; the environment (VFLOW_NATS_USER, VFLOW_NATS_PASSWORD,
VFLOW_NATS_TOKEN) and files (--creds, --nkey) keep them out of it.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field, replace

import click

DEFAULT_PORT = 4222
SCHEMES = ("nats", "tls")
# a subject: dot-separated tokens of printable characters, no wildcards (vflow follows one
# stream), no leading `_VFLOW.` (vflow's own heartbeats live there)
_TOKEN = re.compile(r"[^\s.*>]+")


class AddressError(click.BadParameter):
    pass


@dataclass(frozen=True)
class Credentials:
    """How to prove who we are, and how to check who the server is."""

    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None  # a .creds file: user JWT + nkey seed (NATS accounts)
    nkey: str | None = None  # an nkey seed file
    tls_ca: str | None = None  # CA bundle that signed the server's certificate
    tls_cert: str | None = None  # client certificate (the server may require one)
    tls_key: str | None = None
    tls_upgrade: bool = False  # TLS after the server's INFO (servers without handshake_first)

    def shown(self) -> str:
        """How we authenticate, for messages (never the secret itself)."""
        for what, value in (
            ("creds file", self.creds),
            ("nkey", self.nkey),
            ("token", self.token),
            ("user " + (self.user or ""), self.user),
        ):
            if value:
                return what
        return "no credentials"


@dataclass(frozen=True)
class Address:
    servers: tuple[str, ...]  # empty: the local server
    subject: str  # empty: no subject (listing)
    tls: bool = False  # tls:// or a TLS option given
    credentials: Credentials = field(default_factory=Credentials)

    @property
    def local(self) -> bool:
        return not self.servers

    def shown(self) -> str:
        """The URL without secrets, for messages."""
        scheme = "tls" if self.tls else "nats"
        hosts = ",".join(s.split("://", 1)[-1] for s in self.servers)
        return f"{scheme}://{hosts}/{self.subject}"


def parse(url: str, credentials: Credentials | None = None, more: tuple[str, ...] = ()) -> Address:
    """Parse a stream URL (AddressError, a click.BadParameter, on a bad one); `more`: the
    other servers of its cluster (--server HOST[:PORT])."""
    credentials = credentials or Credentials()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise AddressError(
            f"{url!r} is not a NATS URL; write nats://HOST[:PORT]/SUBJECT, or nats:///SUBJECT "
            "for the local server"
        )
    if parts.query or parts.fragment:
        raise AddressError(f"{url!r}: a stream URL has no ?query or #fragment")
    subject = urllib.parse.unquote(parts.path.lstrip("/"))
    check_subject(subject, url)
    netloc = parts.netloc
    user = password = None
    if "@" in netloc:
        secret, netloc = netloc.rsplit("@", 1)
        if ":" in secret:
            user, password = (urllib.parse.unquote(s) for s in secret.split(":", 1))
        else:
            user = urllib.parse.unquote(secret)
    servers = []
    hosts = [h for h in netloc.split(",") if h]
    for host in more:
        host = host.split("://", 1)[-1].strip("/")
        if not host or "@" in host or "/" in host:
            raise AddressError(f"--server {host!r}: write HOST or HOST:PORT (no user, no path)")
        hosts.append(host)
    for host in hosts:
        name, port = _host_port(host, url)
        scheme = "tls" if parts.scheme == "tls" else "nats"
        servers.append(f"{scheme}://{name}:{port}")
    if user is not None and not servers:
        raise AddressError(f"{url!r}: credentials need a host (the local server has its own)")
    if user is not None and password is None:
        credentials = replace(credentials, token=user)
    elif user is not None:
        credentials = replace(credentials, user=user, password=password)
    tls = parts.scheme == "tls" or bool(
        credentials.tls_ca or credentials.tls_cert or credentials.tls_key or credentials.tls_upgrade
    )
    return Address(tuple(servers), subject, tls, credentials)


def _host_port(text: str, url: str) -> tuple[str, int]:
    if text.startswith("["):  # [::1]:4222
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
        host = f"[{host}]"
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise AddressError(f"{url!r}: a server address has no host")
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise AddressError(f"{url!r}: port {port_text!r} is not a number") from None
    if not 0 < port < 65536:
        raise AddressError(f"{url!r}: port {port} is out of range")
    return host, port


def check_subject(subject: str, url: str = "") -> None:
    if not subject:
        return
    where = f"{url!r}: " if url else ""
    tokens = subject.split(".")
    if not all(_TOKEN.fullmatch(t) for t in tokens):
        raise AddressError(
            f"{where}subject {subject!r} must be dot-separated names without spaces or "
            "wildcards (* >), e.g. cam1 or site.cam1"
        )
    if tokens[0] in ("_VFLOW", "$JS", "$SYS", "_INBOX", "$KV"):
        raise AddressError(f"{where}subject {subject!r} is reserved (NATS or vflow use it)")
