"""net.connection: one NATS connection (credentials, TLS, errors in one line) and the
JetStream objects vflow keeps there (a stream per stored subject, the recv bookmarks).

Everything here runs in the loop thread (net.loop), except local_address() which may
start the local server and so runs first, in the stage thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

from vflow_cli.console import log
from vflow_cli.errors import StageError
from vflow_cli.net.url import Address

CONNECT_TIMEOUT = 5.0
RECONNECT_WAIT = 1.0
RECONNECT_TRIES = 60  # about a minute of retrying a lost server before giving up
PENDING = 64 << 20  # the client's own outgoing buffer (a few raw frames)
BOOKMARKS = "vflow-recv"  # KV bucket: durable receivers' delivered-up-to marks
DUPLICATE_WINDOW = 120.0  # seconds a message id is remembered (JetStream dedup)


@dataclass(frozen=True)
class Limits:
    """A stored stream's retention: the oldest messages go past these (or, discard="new",
    the sender waits: back-pressure)."""

    max_bytes: int = 1 << 30
    max_age: float = 3600.0
    discard: str = "new"
    replicas: int = 0  # copies on a cluster; 0: as many as it has, up to 3


def servers_and_token(address: Address) -> tuple[list[str], str | None]:
    """The servers to dial; for the local server, start it if needed (blocking)."""
    if not address.local:
        return list(address.servers), None
    from vflow_cli.net import server

    url, token = server.ensure()
    return [url], token


def _tls(address: Address) -> ssl.SSLContext | None:
    creds = address.credentials
    if not address.tls:
        return None
    try:
        context = ssl.create_default_context(cafile=creds.tls_ca)
        if creds.tls_cert:
            context.load_cert_chain(creds.tls_cert, creds.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise StageError(f"TLS files: {exc}") from None
    return context


class State:
    """What the connection callbacks need to know: are we connected yet, closing already?"""

    connected = False
    closing = False
    client: Any = None


async def connect(
    address: Address, servers: list[str], token: str | None, name: str, state: State
) -> Any:
    """A connected nats-py client; StageError (one line) when the server can't be reached
    or refuses us."""
    import nats
    from nats import errors

    creds = address.credentials
    problems: list[BaseException] = []

    async def on_error(exc: BaseException) -> None:
        problems.append(exc)
        if isinstance(exc, errors.SlowConsumerError):
            return  # counted where it matters (recv), not worth a line per message
        if state.connected and not state.closing:
            log.warning("NATS: %s", _describe(exc))

    async def on_disconnect() -> None:
        if state.connected and not state.closing:
            log.warning("NATS: lost the connection to %s; reconnecting", address.shown())

    async def on_reconnect() -> None:
        now = getattr(state.client, "connected_url", None)  # which server of a cluster
        through = f" (server {now.netloc})" if now is not None and len(servers) > 1 else ""
        log.warning("NATS: reconnected to %s%s", address.shown(), through)

    options: dict[str, Any] = {
        "servers": servers,
        "name": f"vflow {name} {socket.gethostname()}:{os.getpid()}",
        "connect_timeout": CONNECT_TIMEOUT,
        "reconnect_time_wait": RECONNECT_WAIT,
        # a refused first connection is final (a wrong password stays wrong); once
        # connected, a lost server is tried again for a while (set below)
        "max_reconnect_attempts": 0,
        "allow_reconnect": False,  # nats-py retries a refused first connect forever
        "pending_size": PENDING,
        "error_cb": on_error,
        "disconnected_cb": on_disconnect,
        "reconnected_cb": on_reconnect,
        "tls": _tls(address),
    }
    if token or creds.token:
        options["token"] = token or creds.token
    if creds.user:
        options["user"], options["password"] = creds.user, creds.password or ""
    if creds.creds:
        options["user_credentials"] = creds.creds
    if creds.nkey:
        options["nkeys_seed"] = creds.nkey
    # bounded here, inside the loop, before the caller's own deadline: a server that never
    # answers ends in one line, with no half-cancelled task left to complain
    deadline = CONNECT_TIMEOUT * (len(servers) + 0.5)
    connecting = _connect_tls_only(address, options, problems) if address.tls else None
    try:
        client = await _bounded(connecting or nats.connect(**options), deadline)
    except StageError:
        raise
    except Exception as exc:
        raise refused(address, creds.shown(), [*problems, exc]) from None
    state.connected = True
    state.client = client
    client.options["max_reconnect_attempts"] = RECONNECT_TRIES
    client.options["allow_reconnect"] = True
    return client


# TLS or nothing. nats-py's classic client sends CONNECT (and the password or token in it)
# in plain text when the server's INFO does not ask for TLS, so a man in the middle that
# answers in plain text would read the credentials and every packet. So:
# - TLS first by default (nats-server 2.10.4+ with `handshake_first` in its tls block):
#   the handshake precedes any byte of the NATS protocol;
# - --tls-upgrade, for a server that speaks first (older, or without handshake_first): TLS
#   after its INFO, whether that INFO demands TLS or only offers it; an INFO that offers
#   no TLS gets no CONNECT;
# - whatever the style, CONNECT is never written on a connection TLS does not protect.
# (The NATS Go client makes the same choice explicit: TLSHandshakeFirst.)

# what OpenSSL says when the first bytes are "INFO {...": a server that spoke first
_PLAIN_ANSWER = ("wrong version number", "record layer failure", "packet length too long")
PLAIN_TEXT = "the server offers no TLS (it answered in plain text); nothing was sent to it"


async def _connect_tls_only(
    address: Address, options: dict[str, Any], problems: list[BaseException]
) -> Any:
    """A client whose every connection, reconnections included, is TLS."""
    # asyncio warns at every TLS close because nats-py's reader protocol keeps a
    # half-closed socket open; that says nothing to a user
    logging.getLogger("asyncio").addFilter(_quiet_tls_eof)
    creds = address.credentials
    first = not creds.tls_upgrade
    client = _tls_only_client()
    try:
        await client.connect(**options, tls_handshake_first=first)
        return client
    except Exception as exc:
        with contextlib.suppress(Exception):  # (client.close() waits for a flush here)
            client._transport.close()
        texts = [_describe(p) for p in [*problems, exc]]
        where = address.shown()
        if any(PLAIN_TEXT in t for t in texts):
            raise StageError(
                f"refused {where}: {PLAIN_TEXT} (TLS was asked for: is the server set up for "
                "TLS, or is someone in the way?)"
            ) from None
        plain = any(w in " ".join(texts).lower() for w in _PLAIN_ANSWER)
        if first and (plain or isinstance(exc, asyncio.TimeoutError | TimeoutError)):
            raise StageError(
                f"no TLS handshake with {where} (it answered in plain text, or not within "
                f"{CONNECT_TIMEOUT:g} s); a server older than nats-server 2.10.4, or without "
                "handshake_first in its tls block, wants --tls-upgrade"
            ) from None
        raise refused(address, creds.shown(), [*problems, exc]) from None


def _quiet_tls_eof(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("returning true from eof_received()")


def _tls_only_client() -> Any:
    from nats import errors
    from nats.aio.client import Client

    class TlsOnly(Client):  # type: ignore[misc]
        async def _process_info(self, info: Any, initial_connection: bool = False) -> None:
            if initial_connection and not self.options.get("tls_handshake_first"):
                if not (info.get("tls_required") or info.get("tls_available")):
                    raise errors.Error(PLAIN_TEXT)
                info["tls_required"] = True  # upgrade now, before CONNECT
            await super()._process_info(info, initial_connection)

        def _connect_command(self) -> bytes:
            writer = getattr(self._transport, "_io_writer", None)
            if writer is None or writer.get_extra_info("ssl_object") is None:
                raise errors.Error(PLAIN_TEXT)
            return super()._connect_command()

    return TlsOnly()


async def _bounded(coro: Any, seconds: float) -> Any:
    try:
        return await asyncio.wait_for(coro, seconds)
    except TimeoutError:
        raise ConnectionError("no answer") from None


def refused(address: Address, how: str, problems: list[BaseException]) -> StageError:
    """One line for a connection that failed, naming the likeliest cause first."""
    texts = [_describe(p) for p in problems]
    where = "the local NATS server" if address.local else address.shown()
    joined = " ".join(texts).lower()
    if "authorization" in joined or "authentication" in joined or "user credentials" in joined:
        return StageError(
            f"{where} refused our credentials ({how}): {texts[0]}; check the user/password, "
            "token, --creds or --nkey"
        )
    tls = [t for t in texts if any(w in t.lower() for w in ("cert", "ssl", "tls"))]
    if tls:
        return StageError(
            f"TLS with {where} failed: {tls[0]}; "
            "check --tls-ca (the CA that signed the server) and --tls-cert/--tls-key"
        )
    reason = texts[0] if texts else "no answer"
    return StageError(f"cannot reach {where}: {reason} (is a NATS server running there?)")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.removeprefix("nats: ")


# -- JetStream ---------------------------------------------------------------------------------

FAILOVER = 60.0  # seconds a stored publish is tried again while a cluster fails over
ATTEMPT = 2.0  # seconds one try waits for its acknowledgement (a late one is a duplicate)
NOT_CLUSTERED, TOO_FEW_SERVERS = 10074, 10023  # JetStream's error codes


def jetstream(client: Any, timeout: float) -> Any:
    """The JetStream context, whose publish survives a server of a cluster going down: a
    message with an id (every vflow message has one) or a bookmark is published again,
    after a lost acknowledgement or while the stream elects a new leader, until it is
    stored. The stream drops the second copy of an id it already has, so nothing is
    stored twice."""
    from nats import errors
    from nats.js import JetStreamContext
    from nats.js import errors as js_errors

    from vflow_cli.net.messages import MSG_ID

    again = (errors.TimeoutError, js_errors.NoStreamResponseError, errors.NoRespondersError)

    class Failover(JetStreamContext):  # type: ignore[misc]
        async def publish(self, subject: str, payload: bytes = b"", **kw: Any) -> Any:  # type: ignore[override]
            # an id: a second copy is dropped; a KV key: written again, the same value
            if MSG_ID not in (kw.get("headers") or {}) and not subject.startswith("$KV."):
                return await super().publish(subject, payload, **kw)
            deadline = time.monotonic() + FAILOVER
            attempt = min(ATTEMPT, kw.pop("timeout", None) or timeout)
            while True:
                try:
                    return await super().publish(subject, payload, timeout=attempt, **kw)
                except again:
                    if client.is_closed or time.monotonic() > deadline:
                        raise
                    attempt = min(attempt * 2, timeout)  # a slow server: wait longer
                await asyncio.sleep(0.1)

    return Failover(client, timeout=timeout)


async def _replicated(create: Any, wanted: int = 0) -> Any:
    """create(replicas): `wanted` replicas, or by default, on a cluster, 3 (the stream
    survives a server going down), fewer on a smaller cluster, 1 on a single server."""
    from nats.js import errors

    if wanted:
        return await create(wanted)
    for replicas in (3, 2, 1):
        try:
            return await create(replicas)
        except errors.APIError as exc:
            if replicas == 1 or exc.err_code not in (NOT_CLUSTERED, TOO_FEW_SERVERS):
                raise
            if exc.err_code == NOT_CLUSTERED:
                return await create(1)
    raise AssertionError("unreachable")


def stream_name(subject: str) -> str:
    """The JetStream stream that stores SUBJECT: VFLOW_ + the subject, with characters a
    stream name can't have written as _XX (hex), and _ itself as __."""
    out = []
    for ch in subject:
        if ch.isalnum() or ch == "-":
            out.append(ch)
        elif ch == "_":
            out.append("__")
        else:
            out.append(f"_{ord(ch):02X}")
    return "VFLOW_" + "".join(out)


async def find_stream(js: Any, subject: str) -> str | None:
    """The stream that stores SUBJECT (vflow's or one the user made), or None."""
    from nats.js import errors

    try:
        return await js.find_stream_name_by_subject(subject)
    except errors.NotFoundError:
        return None
    except errors.ServiceUnavailableError:
        return None  # JetStream is not enabled on that server


async def ensure_stream(js: Any, subject: str, limits: Limits, *, change: bool = False) -> str:
    """The stream that stores SUBJECT, created with `limits` when there is none (or,
    change=True, given those limits when it exists)."""
    from nats.js import api, errors

    name = await find_stream(js, subject)
    config = api.StreamConfig(
        name=name or stream_name(subject),
        subjects=[subject],
        retention=api.RetentionPolicy.LIMITS,
        max_bytes=limits.max_bytes,
        max_age=limits.max_age,
        discard=api.DiscardPolicy.NEW if limits.discard == "new" else api.DiscardPolicy.OLD,
        storage=api.StorageType.FILE,
        duplicate_window=min(DUPLICATE_WINDOW, limits.max_age or DUPLICATE_WINDOW),
        description="a vflow stream (vflow send --durable)",
    )
    try:
        if name is None:
            await _replicated(
                lambda n: js.add_stream(config.evolve(num_replicas=n)), limits.replicas
            )
            return config.name  # type: ignore[return-value]
        if change:
            info = await js.stream_info(name)
            await js.update_stream(
                info.config.evolve(
                    max_bytes=limits.max_bytes, max_age=limits.max_age, discard=config.discard
                )
            )
        return name
    except errors.ServiceUnavailableError:
        raise StageError(
            "JetStream is not enabled on this NATS server (start it with -js), so it cannot "
            "store streams; without --durable, streams are live"
        ) from None
    except errors.APIError as exc:
        raise StageError(
            f"JetStream refused the stream for {subject!r}: {exc.description}"
        ) from None


async def bookmarks(js: Any) -> Any:
    """The KV bucket where durable receivers keep how far they delivered."""
    from nats.js import errors

    try:
        return await js.key_value(BOOKMARKS)
    except errors.BucketNotFoundError:
        return await _replicated(
            lambda n: js.create_key_value(
                bucket=BOOKMARKS, history=1, description="vflow recv", replicas=n
            )
        )


async def list_streams(client: Any, listen: float = 1.2) -> list[dict[str, Any]]:
    """Stored streams (JetStream) and live senders heard within `listen` seconds."""
    from vflow_cli.net import messages

    found: dict[str, dict[str, Any]] = {}
    js = client.jetstream()
    try:
        for info in await js.streams_info():
            for subject in info.config.subjects or []:
                found[subject] = {
                    "subject": subject,
                    "stored": info.config.name,
                    "messages": info.state.messages,
                    "bytes": info.state.bytes,
                    "consumers": info.state.consumer_count,
                    "live": [],
                }
    except Exception:  # no JetStream there: live streams only
        pass

    async def heard(msg: Any) -> None:
        subject = msg.subject.removeprefix(messages.BEAT_PREFIX)
        entry = found.setdefault(
            subject, {"subject": subject, "stored": None, "messages": None, "bytes": None}
        )
        sender = (msg.headers or {}).get(messages.SENDER, "?")
        entry.setdefault("live", [])
        if sender not in entry["live"]:
            entry["live"].append(sender)

    sub = await client.subscribe(messages.BEAT_PREFIX + ">", cb=heard)
    await asyncio.sleep(listen)
    await sub.unsubscribe()
    return sorted(found.values(), key=lambda e: e["subject"])
