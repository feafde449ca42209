"""net.subscription: one stage's input from a subject, live or from a JetStream consumer.

    live:    a core NATS subscription (a queue group when several workers share it)
    durable: a JetStream pull consumer, fetched only when the stage's inbox has room
    both:    the subject's heartbeats (_VFLOW.beat.SUBJECT) to on_beat

    NATS ──> loop: on_msg(msg) ──> (the owner turns it into units, puts them in its Inbox)
    stage thread: answer(msgs, ack | nak | term), pending(), give_back()

recv and worker differ in what a message means to them, not in how messages come: this
module is the second half alone. With keep_alive, the messages on_msg kept (it returned
True) are reported in progress until answered, so a slow stage is not taken for a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats import errors

from vflow_cli.console import log
from vflow_cli.errors import StageError
from vflow_cli.net import messages, signing
from vflow_cli.net.loop import Inbox
from vflow_cli.net.session import Session
from vflow_cli.net.signing import Keys

OnMsg = Callable[[Any], Awaitable[Any]]  # True: the owner keeps msg (keep it alive)


@dataclass
class Pull:
    """A durable input: the JetStream consumer `name` of `stream`, created with `config`
    (or, when it exists with other settings, used as it is)."""

    name: str
    stream: str
    config: Any  # nats.js.api.ConsumerConfig
    batch: int = 1  # messages asked for at once, at most
    batch_bytes: int = 0  # and bytes (estimated from the sizes seen), 0: no limit
    wait: float = 1.0  # seconds one pull request waits for messages
    keep_alive: float | None = None  # seconds between "in progress" for held messages


class Subscription:
    def __init__(
        self,
        session: Session,
        subject: str,
        inbox: Inbox[Any],
        on_msg: OnMsg,
        *,
        on_beat: OnMsg | None = None,
        queue: str | None = None,
        pull: Pull | None = None,
        pending_msgs: int = 64,
        pending_bytes: int = 64 << 20,
        keys: Keys | None = None,
    ) -> None:
        self.session = session
        self.subject = subject
        self.inbox = inbox
        self.pull = pull
        self.keys = keys
        self.unsigned = 0  # messages refused: not signed by one of our keys
        self._on_msg = self._checked(on_msg) if keys is not None else on_msg
        if on_beat is not None and keys is not None:
            on_beat = self._checked(on_beat)
        self._on_beat = on_beat
        self._held: list[Any] = []
        self._msg_size = pull.batch_bytes if pull is not None else 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._subs: list[Any] = []
        self._psub: Any = None
        self._stopping = False  # stop_fetching(): the fetch under way is the last
        session.call(self._open(on_beat, queue, pending_msgs, pending_bytes))

    # -- loop thread -------------------------------------------------------------------------

    async def _open(
        self, on_beat: OnMsg | None, queue: str | None, pending_msgs: int, pending_bytes: int
    ) -> None:
        client = self.session.client
        self._room = asyncio.Event()
        if on_beat is not None:
            self._subs.append(
                await client.subscribe(messages.beat_subject(self.subject), cb=on_beat)
            )
        if self.pull is None:
            self._live = await client.subscribe(
                self.subject,
                queue=queue or "",
                cb=self._on_msg,
                pending_msgs_limit=pending_msgs,
                pending_bytes_limit=pending_bytes,
            )
            self._subs.append(self._live)
            return
        pull, js = self.pull, self.session.js
        try:
            self._psub = await js.pull_subscribe(
                self.subject, durable=pull.name, stream=pull.stream, config=pull.config
            )
        except Exception:  # it exists with other settings: use it as it is
            try:
                self._psub = await js.pull_subscribe_bind(durable=pull.name, stream=pull.stream)
            except Exception as exc:
                raise StageError(f"cannot use the durable consumer {pull.name!r}: {exc}") from None
        self.inbox.on_room(lambda: self.session.bridge.soon(self._room.set))
        self._fetcher = self.session.start(self._fetch())
        if pull.keep_alive:
            self.session.start(self._keep_alive(pull.keep_alive))

    async def _fetch(self) -> None:
        assert self.pull is not None
        pull = self.pull
        while not self._stopping:
            room = self.inbox.room()
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            count = max(1, min(room, pull.batch))
            if pull.batch_bytes:
                # a batch of large frames must stay under what the server lets a client lag
                # behind (64 MB by default) or it cuts the connection as a slow consumer
                count = max(1, min(count, pull.batch_bytes // max(self._msg_size, 1)))
            try:
                batch = await self._psub.fetch(count, timeout=pull.wait)
            except errors.TimeoutError:
                continue
            except errors.ConnectionClosedError:
                return  # closing
            except Exception as exc:  # reconnecting: try again soon
                log.debug("fetch: %s", exc)
                await asyncio.sleep(0.5)
                continue
            for msg in batch:
                size = len(msg.data)
                self._msg_size = max(size, (self._msg_size * 7 + size) // 8)
                if await self._on_msg(msg) and self.pull.keep_alive:
                    self._held.append(msg)

    async def _keep_alive(self, every: float) -> None:
        """Tell the server we are still working on what we hold (no redelivery)."""
        while True:
            await asyncio.sleep(every)
            for msg in list(self._held):
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def stop_fetching(self) -> None:
        """No more fetches; messages already on their way go back to the server at once."""
        if self.pull is None:
            return
        # the fetch under way ends on its own (within pull.wait) and hands its batch to
        # on_msg whole: cancelled mid-batch, the messages it had taken would be nobody's,
        # and the server would give them to the next receiver only after its ack wait
        self._stopping = True
        self._room.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._fetcher), self.pull.wait + 1)
        except BaseException:
            self._fetcher.cancel()
        # the last pull request may linger on the server until it expires (nats-py returns
        # a short batch before then): what the server sends it meanwhile is taken back below
        await asyncio.sleep(self.pull.wait + 0.2)
        queue = self._psub._sub._pending_queue  # what a cancelled fetch left behind
        while not queue.empty():
            msg = queue.get_nowait()
            if msg.reply and msg.headers and messages.STREAM in msg.headers:
                with contextlib.suppress(Exception):
                    await msg.nak()

    def _checked(self, on_msg: OnMsg) -> OnMsg:
        """on_msg for the messages signed by one of our keys; the others are refused."""
        keys = self.keys
        assert keys is not None

        async def checked(msg: Any) -> Any:
            if keys.check(msg.subject, msg.headers, msg.data):
                return await on_msg(msg)
            self.unsigned += 1
            if self.unsigned == 1:
                headers = msg.headers or {}
                log.warning(
                    "refused a message on %s that is %s (someone else publishes there; counted)",
                    messages.printable(msg.subject, 200),
                    "signed with another key" if headers.get(signing.SIG) else "not signed",
                )
            await messages.settle(msg, "term")
            return False

        return checked

    async def feed(self, msgs: list[Any]) -> None:
        """Messages that came another way (a probe before we listened), taken as ours."""
        beats = messages.beat_subject(self.subject)
        for msg in msgs:
            if msg.subject == beats:
                if self._on_beat is not None:
                    await self._on_beat(msg)
            else:
                await self._on_msg(msg)

    # -- either thread -----------------------------------------------------------------------

    def answer(self, msgs: list[Any], how: str = "ack", delay: float | None = None) -> Any:
        """A coroutine that acknowledges (ack), gives back (nak) or gives up (term) msgs."""

        async def run() -> None:
            for msg in msgs:
                with contextlib.suppress(ValueError):
                    self._held.remove(msg)
                await messages.settle(msg, how, delay)

        return run()

    def send_answer(self, msgs: list[Any], how: str = "ack", delay: float | None = None) -> None:
        """answer(), without waiting (from the stage thread)."""
        if msgs:
            self.session.bridge.soon(lambda: asyncio.ensure_future(self.answer(msgs, how, delay)))

    def backlog(self) -> int:
        """Live: messages the client holds that on_msg has not seen yet."""
        return int(self._live.pending_msgs) if self.pull is None else 0

    def pending(self) -> Any:
        """The consumer's info (num_pending, num_ack_pending), or None when live."""
        if self.pull is None:
            return None
        return self.session.call(self._psub.consumer_info(), timeout=5)

    def give_back(self) -> None:
        """Closing: what we hold goes back to the server at once, for the others."""
        held, self._held = list(self._held), []
        if held:
            with contextlib.suppress(BaseException):
                self.session.call(self.answer(held, "nak"), timeout=10)
