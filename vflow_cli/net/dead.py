"""net.dead: the dead letters of a worked subject (SUBJECT.dead): stored, read, replayed.

Workers store a packet that failed --max-deliver times in SUBJECT.dead, with its original
headers, the reason (Vflow-Reason) and the number of tries (Vflow-Deliveries). `vflow recv
--dead URL` hands each one on with a "dead" field ({"reason", "tries", "seq"}), in the
order they died, and ends. With --replay it also publishes each back on SUBJECT (same
stream id and sequence number, a new message id) for the workers to try again, and deletes
it from the dead letters. A receiver that already passed that number drops the late result
(it can't go back in a pipe); one started afterwards on a stored output gets it in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

from vflow_cli.console import log
from vflow_cli.errors import StageError
from vflow_cli.framing import Packet, StreamError
from vflow_cli.net import connection, messages
from vflow_cli.net.session import Session
from vflow_cli.net.url import Address


def read_dead(address: Address, *, replay: bool) -> Iterator[Packet]:
    subject = messages.dead_subject(address.subject)
    session = Session(address, "recv")
    try:
        stream = session.call(connection.find_stream(session.js, subject))
        if stream is None:
            log.info("no dead letters for %s (nothing stores %s)", address.subject, subject)
            return
        info = session.call(session.js.stream_info(stream))
        first, last = info.state.first_seq, info.state.last_seq
        count = 0
        for sequence in range(first, last + 1):
            msg = session.call(_get(session, stream, sequence), timeout=30)
            if msg is None:
                continue  # deleted (replayed before)
            headers = dict(msg.headers or {})
            try:
                packet = messages.packet_of(
                    msg.data, headers.get(messages.WIRE) == "jpeg", pixels=True
                )
            except StreamError as exc:
                packet = {"kind": "undecodable", "error": str(exc)}
            packet["dead"] = {
                "reason": messages.printable(headers.get(messages.REASON, ""), 500),
                "tries": _number(headers.get(messages.DELIVERIES), 0),
                "seq": _number(headers.get(messages.SEQ), -1),
                "stream": messages.printable(headers.get(messages.STREAM, ""), 40),
            }
            if replay:
                session.call(_replay(session, address.subject, stream, sequence, msg), timeout=30)
            count += 1
            yield packet
        what = "replayed" if replay else "read"
        log.info("%s %d dead letters of %s", what, count, address.subject)
    finally:
        session.close()


def _number(text: str | None, default: int) -> int:
    """A number from a header (anyone may publish on SUBJECT.dead): default if it is none."""
    return int(text) if text is not None and text.isdigit() else default


async def _get(session: Session, stream: str, sequence: int) -> Any:
    from nats.js import errors

    try:
        return await session.js.get_msg(stream, sequence)
    except errors.NotFoundError:
        return None


async def _replay(session: Session, subject: str, stream: str, sequence: int, msg: Any) -> None:
    headers = {
        k: v
        for k, v in (msg.headers or {}).items()
        if k.startswith("Vflow-") and k not in (messages.REASON, messages.DELIVERIES)
    }
    seq = headers.get(messages.SEQ, "?")
    headers[messages.MSG_ID] = f"{headers.get(messages.STREAM, '-')}.{seq}.replay.{time.time_ns()}"
    target = await connection.find_stream(session.js, subject)
    try:
        if target is not None:
            await session.js.publish(subject, msg.data, headers=headers)
        else:
            await session.client.publish(subject, msg.data, headers=headers)
    except Exception as exc:
        raise StageError(f"could not put packet {seq} back on {subject}: {exc}") from None
    with contextlib.suppress(Exception):
        await session.js.delete_msg(stream, sequence)


class DeadLetters:
    """Where a worker stores the packets it gives up on: SUBJECT.dead, a JetStream stream
    of bounded size and age (or, without JetStream, plain messages nobody keeps)."""

    def __init__(self, session: Session, subject: str, limits: Any) -> None:
        self.session = session
        self.subject = messages.dead_subject(subject)
        try:
            session.call(
                connection.ensure_stream(
                    session.js,
                    self.subject,
                    dataclasses.replace(
                        limits, discard="old", max_age=7 * 86400, max_bytes=256 << 20
                    ),
                )
            )
            self.stored = True
        except Exception:
            self.stored = False  # no JetStream: dead letters are published, not stored

    def store(self, unit: Any, reason: str, deliveries: int) -> None:
        """The packet of `unit` with its original headers, the reason and the tries."""
        headers = {
            **{k: v for k, v in (unit.headers or {}).items() if k.startswith("Vflow-")},
            messages.REASON: reason[:500],
            messages.DELIVERIES: str(deliveries),
            messages.MSG_ID: f"{unit.stream}.{unit.seq}.dead.{time.time_ns()}",
        }
        body = bytes(unit.body) if unit.body is not None else b""

        async def store() -> None:
            if self.stored:
                await self.session.js.publish(self.subject, body, headers=headers)
            else:
                await self.session.client.publish(self.subject, body, headers=headers)

        try:
            self.session.call(store(), timeout=30)
        except Exception as exc:
            log.warning("could not store packet %s in %s: %s", unit.seq, self.subject, exc)
        log.warning("packet %s went to %s: %s", unit.seq, self.subject, reason)
