"""net.command: `vflow nats`: the local NATS server (status, start, stop), stream lists, and
removing a stored stream."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from vflow_cli.net.options import address_from, credential_options
from vflow_cli.stage import CONTEXT


@click.command("nats", context_settings=CONTEXT)
@click.argument(
    "action", type=click.Choice(["status", "start", "stop", "list", "rm"]), default="status"
)
@click.argument("url", required=False, default="nats:///")
@click.option(
    "--force",
    is_flag=True,
    help="stop: even while clients are connected. rm: even a stream vflow did not make.",
)
@click.option("--json", "as_json", is_flag=True, help="status: print it as JSON.")
@credential_options
def nats(action: str, url: str, force: bool, as_json: bool, **credentials: Any) -> None:
    """Show, start or stop the local NATS server; list or remove the streams on a server.

    `nats:///SUBJECT` (no host) means the local server: the first vflow process that needs
    it starts nats-server with JetStream, listening on 127.0.0.1 only (a random free port,
    a new random token at every start that only your user can read, no monitoring port),
    data under $XDG_STATE_HOME/vflow/nats (else ~/.local/state/vflow/nats), a folder that
    must be yours, mode 0700 and not a symbolic link. A record of a server that is gone
    is never trusted: stop signals only a process proven to be it. Every vflow process of
    yours on this machine shares it; it stops by itself after VFLOW_NATS_IDLE seconds
    (default 120) without clients, and its stored streams wait on disk for the next start.
    VFLOW_NATS_PORT sets its port (when it starts), for another program that must know it.

    \b
      vflow nats                  status: running?, URL, clients, streams, data folder
      vflow nats start            start it now (e.g. before the nats CLI uses it)
      vflow nats stop [--force]   stop it (refused while clients are connected)
      vflow nats list [URL]       streams: stored ones and live senders heard now
      vflow nats rm SUBJECT|URL   remove a stored stream (send --durable) and its
                                  messages; SUBJECT alone: on the local server
    """
    from vflow_cli.errors import StageError
    from vflow_cli.net import server

    try:
        if action == "stop":
            click.echo(server.stop(force=force))
        elif action == "start":
            url_, _ = server.ensure()
            click.echo(f"the local NATS server listens on {url_}")
            wanted = server.port()
            if wanted and server.port_of(url_) != wanted:
                click.echo(
                    f"vflow nats: it was running already; VFLOW_NATS_PORT={wanted} takes effect "
                    "when it starts (vflow nats stop first)",
                    err=True,
                )
        elif action == "list":
            print_streams(url, click.get_current_context(), credentials)
        elif action == "rm":
            click.echo(_remove(url, force, credentials))
        else:
            _status(as_json)
    except StageError as exc:
        click.echo(f"vflow nats: {exc}", err=True)
        raise SystemExit(1) from None


def _status(as_json: bool) -> None:
    from vflow_cli.net import server

    info = server.status()
    if as_json:
        if info is not None:
            info.update(_stored())
        click.echo(json.dumps(info or {"running": False}))
        return
    if info is None:
        click.echo(
            f"the local NATS server is not running (it starts when a vflow stage uses "
            f"nats:///SUBJECT; data in {server.state_dir()})"
        )
        return
    info.update(_stored())
    up = time.time() - float(info.get("started", time.time()))
    click.echo(
        f"the local NATS server is running: {info['url']} (pid {info['server_pid']}, up "
        f"{up:.0f} s)\n"
        f"  clients: {info.get('connections')}; stored streams: {info.get('streams')} "
        f"({info.get('messages')} messages, {info.get('bytes')} bytes)\n"
        f"  data and log: {info['folder']}\n"
        f"  stops after {info['idle']:g} s without clients (VFLOW_NATS_IDLE)"
    )


def _remove(url: str, force: bool, credentials: dict[str, Any]) -> str:
    """Delete the JetStream stream that stores the subject of URL (a bare SUBJECT: the
    local server's); a stream vflow did not make (it may store other subjects too) only
    with --force."""
    from vflow_cli.errors import StageError
    from vflow_cli.net import connection
    from vflow_cli.net.session import Session

    if url == "nats:///":
        raise click.UsageError("rm needs the stream's SUBJECT (or nats://HOST/SUBJECT)")
    if "://" not in url:
        url = f"nats:///{url}"
    address = address_from(url, dict(credentials))
    where = "the local server" if address.local else address.shown().rsplit("/", 1)[0]
    subject = address.subject

    async def remove(js: Any) -> str:
        name = await connection.find_stream(js, subject)
        if name is None:
            raise StageError(f"no stored stream for {subject!r} on {where}")
        info = await js.stream_info(name)
        if name != connection.stream_name(subject) and not force:
            raise StageError(
                f"{subject!r} is stored in the stream {name!r}, which vflow did not make "
                f"(subjects: {', '.join(info.config.subjects or [])}); --force removes it"
            )
        await js.delete_stream(name)
        state = info.state
        return (
            f"removed the stored stream of {subject} from {where} ({state.messages} messages, "
            f"{state.bytes} bytes)"
        )

    session = Session(address, "rm")
    try:
        return str(session.call(remove(session.js), timeout=30))
    finally:
        session.close()


def _stored() -> dict[str, Any]:
    """The local server's stored streams, asked as a client (the server has no monitoring
    port: it would answer anyone)."""
    from vflow_cli.errors import StageError
    from vflow_cli.net.session import Session
    from vflow_cli.net.url import parse

    async def count(js: Any) -> dict[str, Any]:
        streams = await js.streams_info()
        return {
            "streams": len(streams),
            "messages": sum(s.state.messages for s in streams),
            "bytes": sum(s.state.bytes for s in streams),
        }

    try:
        session = Session(parse("nats:///"), "status")
    except StageError:
        return {}
    try:
        return session.call(count(session.js), timeout=10)
    except Exception:
        return {}
    finally:
        session.close()


def print_streams(url: str, ctx: click.Context, credentials: dict[str, Any] | None = None) -> None:
    """Print the streams on the server of URL: stored (JetStream) and live (heard now)."""
    from vflow_cli.errors import StageError
    from vflow_cli.net.connection import list_streams
    from vflow_cli.net.session import Session

    credentials = credentials or {}  # a command's options: the credential ones are used
    try:
        address = address_from(url, dict(credentials), subject=False)
        session = Session(address, "list")
        try:
            streams = session.call(list_streams(session.client), timeout=30)
        finally:
            session.close()
    except StageError as exc:
        click.echo(f"{ctx.command_path}: {exc}", err=True)
        raise SystemExit(1) from None
    if not streams:
        click.echo(f"no streams on {address.shown()}")
        return
    for entry in streams:
        stored = (
            f"stored ({entry['messages']} messages, {entry['bytes']} bytes, "
            f"{entry.get('consumers', 0)} consumers)"
            if entry.get("stored")
            else "not stored"
        )
        live = entry.get("live") or []
        sending = f"live senders: {', '.join(live)}" if live else "no sender now"
        click.echo(f"{entry['subject']}\t{stored}\t{sending}")
