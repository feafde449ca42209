"""net.sender: what `vflow send` does with the packets it reads.

    packets ─> encode (JPEG unless --raw) ─> Publisher ─> SUBJECT
                                              heartbeats ─> _VFLOW.beat.SUBJECT

At the end of its input the sender publishes an end message that carries the number of
packets; receivers end their output after the last of them, with the stream's trailer.
When its input was cut, or it is stopped by SIGTERM or a second Ctrl-C, it publishes a
cut message instead: receivers end without the trailer and say why. A sender that dies
without a word (SIGKILL, a power cut, a lost network) stops its heartbeats; receivers
give up after --idle seconds of silence, also without the trailer.
"""

from __future__ import annotations

import time
from typing import Any

from vflow_cli.console import log
from vflow_cli.net import connection, messages
from vflow_cli.net.publisher import Outgoing, Publisher
from vflow_cli.net.session import Session
from vflow_cli.net.signing import Keys
from vflow_cli.net.url import Address

CLOSE_LIVE = 10.0  # seconds a live sender waits to send what is left at its end
REPORT_DROPS_EVERY = 5.0  # seconds between warnings about live drops


class Sender:
    def __init__(
        self,
        address: Address,
        *,
        durable: bool,
        quality: int | None,
        queue: int,
        limits: connection.Limits,
        keys: Keys | None = None,
    ) -> None:
        self.address = address
        self.quality = quality
        self.stream = messages.new_stream_id()
        self.session = Session(address, "send")
        self.session.keys = keys
        try:
            if durable:
                self.session.call(
                    connection.ensure_stream(
                        self.session.js,
                        address.subject,
                        limits,
                        change=limits != connection.Limits(),
                    )
                )
            self.out = Publisher(
                self.session,
                address.subject,
                durable=durable,
                stream=self.stream,
                size=queue,
                leaky=not durable,
            )
            self.session.beat(address.subject, lambda: [(self.stream, self.out.sent)])
        except BaseException:
            self.session.close()
            raise
        self.durable = durable
        self._warned_drops = 0
        self._warned_at = 0.0
        self.finished = False

    def write(self, packet: dict[str, Any]) -> None:
        data, wire = messages.body(packet, self.quality)
        headers = {messages.PARTS: "1"}
        if wire:
            headers[messages.WIRE] = "jpeg"
        self.out.put(Outgoing(data, headers))
        dropped = self.out.dropped
        if dropped > self._warned_drops and time.monotonic() - self._warned_at > REPORT_DROPS_EVERY:
            log.warning(
                "dropped %d packets so far (the oldest waiting): the network or the NATS "
                "server is slower than the input",
                dropped,
            )
            self._warned_drops, self._warned_at = dropped, time.monotonic()

    def end(self) -> None:
        """The input ended cleanly: tell receivers how many packets there were."""
        self._control(messages.END, "")

    def cut(self, reason: str) -> None:
        """The input was cut or we were stopped: receivers end without the trailer."""
        self._control(messages.CUT, reason)

    def _control(self, kind: str, reason: str) -> None:
        if self.finished:
            return
        self.finished = True
        try:

            async def final() -> None:
                headers = {
                    messages.KIND: kind,
                    messages.PACKETS: str(self.out.sent),
                }
                if reason:
                    headers[messages.REASON] = reason[:300]
                headers[messages.STREAM] = self.stream
                headers[messages.MSG_ID] = f"{self.stream}.{kind}"
                self.session.signed(self.address.subject, headers)
                if self.durable:
                    await self.session.js.publish(self.address.subject, b"", headers=headers)
                else:
                    await self.session.client.publish(self.address.subject, b"", headers=headers)
                # and a last heartbeat saying so, for workers that did not get the message
                beat = {k: v for k, v in headers.items() if k != messages.MSG_ID}
                beat[messages.SENDER] = self.session.sender
                target = messages.beat_subject(self.address.subject)
                await self.session.client.publish(
                    target, b"", headers=self.session.signed(target, beat)
                )

            try:  # everything before it has left (and, durable, is stored)
                self.out.close(timeout=None if self.durable else CLOSE_LIVE)
            except TimeoutError:
                log.warning("gave up sending what was left after %g s", CLOSE_LIVE)
            except Exception:
                if kind == messages.END:
                    raise
            self.session.call(final(), timeout=30)
        finally:
            self.report()
            self.session.close()

    def report(self) -> None:
        dropped = self.out.dropped
        if dropped:
            log.warning(
                "dropped %d of %d packets (live: the oldest waiting)",
                dropped,
                self.out.sent + dropped,
            )
        log.info("sent %d packets to %s: %s", self.out.sent, self.address.shown(), self.out.rate())

    def close(self) -> None:
        """Close without a word (after a failure that left nothing to say)."""
        if not self.finished:
            self.finished = True
            self.session.close()
