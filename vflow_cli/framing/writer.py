"""framing.writer: write packets to one binary stream, small ones batched, images from their
own memory."""

from __future__ import annotations

import functools
import os
import queue
import threading
import time
from typing import Any, BinaryIO

import msgpack

from vflow_cli.framing import pipes
from vflow_cli.framing.wire import (
    OutputError,
    Packet,
    default,
    header,
    image_wire,
    max_packet_size,
    trailer,
)

FLUSH_AT = 1 << 16  # small packets are sent when this much is pending ...
FLUSH_AFTER = 0.02  # ... or when the oldest pending byte is this old (seconds)
BACKGROUND_AT = 1 << 18  # images this large are written by a helper thread


@functools.cache
def _pending() -> Any:
    """framing.reader.Pending, imported on the first image (a producer never reads)."""
    from vflow_cli.framing.reader import Pending

    return Pending


class PacketWriter:
    """Write packets to one binary stream: small ones batched, images from their own memory.

    A large image is handed to a helper thread that writes it while the stage reads and
    works on the next packet: a stage then streams like `cat` instead of reading a whole
    frame, then writing a whole frame, in lockstep with its neighbours. At most one such
    image is in flight; order on the wire is always the order of write() calls.

    `busy` is true while write() runs: the runner's Ctrl-C handler lets it finish the packet.
    close() ends the stream with its trailer; close(end=False) leaves it cut, so that the
    reader knows the stream did not finish (a stage that failed half-way).
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        info: Packet | None = None,
        name: str = "stdout",
        share: bool = False,
    ) -> None:
        raw = getattr(stream, "raw", None)
        if raw is not None:
            stream.flush()
            stream = raw
        self._stream = stream
        self.name = name
        self._fd = pipes.fileno(stream)
        self._pack = msgpack.Packer(default=default).pack
        self._offer: Any = None  # shared memory offered to a vflow reader (framing.shm)
        if share and pipes.is_fifo(self._fd) and os.environ.get("VFLOW_SHM") != "0":
            from vflow_cli.framing.shm import Offer  # only then: its imports cost start-up

            self._offer = Offer.create(self._fd, max_packet_size())
            if self._offer is not None:
                info = {**(info or {}), "shm": self._offer.address}
        self._buf = bytearray(self._pack(header(**(info or {}))))
        self._since = time.monotonic()
        self.packets = 0
        self.bytes = 0
        self.busy = False
        self.closed = False
        # the helper thread, started by the first large image
        self._jobs: queue.SimpleQueue | None = None
        self._done = threading.Condition()
        self._queued = 0  # jobs not yet written
        self._images = 0  # of which large images
        self._error: BaseException | None = None

    def write(self, packet: Packet) -> None:
        self.busy = True
        image: Any = packet.get("image")
        if image is None:
            self._buf += self._pack(packet)
        elif type(image) is _pending() and image.value is None:
            self._buf += self._pack({**packet, "image": image.describe()})
            self._buf += b"\xc6" + image.nbytes.to_bytes(4, "big")
            self._drain()  # what came before is written before the image moves
            try:
                # not `self.bytes += forward(...)`: forward adds what it writes itself
                moved = image.reader.forward(image, self._fd, self._write_now)
                self.bytes += moved
            except BrokenPipeError:
                raise
            except OSError as exc:
                raise self._output_error(exc) from None
        else:
            if type(image) is _pending():
                image = image.value
            if self._offer is not None:
                ref = self._offer.place(image, self._drain)
                if ref is not None:
                    self._buf += self._pack({**packet, "image": ref})
                    self.bytes += image.nbytes  # not on the wire, but through this stage
                    self._flush()  # the reader holds the slot, not the pipe: no batching
                    self.packets += 1
                    self.busy = False
                    return
            desc, payload = image_wire(image)
            self._buf += self._pack({**packet, "image": desc})
            self._buf += b"\xc6" + len(payload).to_bytes(4, "big")
            if len(payload) >= BACKGROUND_AT:
                self._write_in_background(payload)
            elif len(payload) >= FLUSH_AT:
                self._flush()
                self._write_now(payload)
            else:
                self._buf += payload  # a thumbnail or a JPEG: one small copy beats a syscall
        self.packets += 1
        if len(self._buf) >= FLUSH_AT or time.monotonic() - self._since > FLUSH_AFTER:
            self._flush()
        self.busy = False

    @property
    def shared(self) -> int:
        """Images sent by reference to shared memory."""
        return self._offer.shared if self._offer is not None else 0

    def slot(self, shape: tuple[int, ...], dtype: Any = "uint8") -> Any:
        """A writable array in the shared-memory ring for the next image, or None: a stage
        that fills it (`dst=`) and sends it saves a copy. Not to be touched once sent."""
        if self._offer is None:
            return None
        return self._offer.slot(tuple(shape), dtype, self._drain)

    def push(self) -> None:
        """Send what is batched, without waiting for an image the helper thread is writing.

        The reader calls this before it blocks (on_idle), so a lone packet leaves at once.
        """
        if self._buf:
            self.busy = True
            self._flush()
            self.busy = False

    def flush(self) -> None:
        """Send everything and wait until it is written."""
        self.busy = True
        self._drain()
        self.busy = False

    def fileno(self) -> int | None:
        """The descriptor packets go to (None for a stream without one)."""
        return self._fd

    def close_stream(self) -> None:
        """Close the stream itself, after close(): its reader sees the end of the file."""
        self._stream.close()

    def close(self, *, end: bool = True) -> None:
        """Send everything, with the trailer when `end`, and stop the helper thread."""
        if self.closed:
            return
        self.closed = True
        try:
            if end:
                self._buf += self._pack(trailer(self.packets))
            self.flush()
        finally:
            if self._offer is not None:
                self._offer.close()
            if self._jobs is not None:
                self._jobs.put(None)
                self._jobs = None

    def _drain(self) -> None:
        self._flush()
        if self._queued:
            with self._done:
                while self._queued:
                    self._done.wait()
        self._raise()

    def _flush(self) -> None:
        if self._buf:
            buf, self._buf = self._buf, bytearray()
            if self._queued:  # the helper still has bytes to write: ours go after them
                self._submit(memoryview(buf), image=False)
            else:
                self._write_now(memoryview(buf))
        self._since = time.monotonic()

    def _write_in_background(self, payload: memoryview) -> None:
        if self._jobs is None:
            self._jobs = queue.SimpleQueue()
            threading.Thread(target=self._helper, name="vflow-writer", daemon=True).start()
        with self._done:
            while self._images and self._error is None:
                self._done.wait()  # one image in flight at most: memory stays bounded
        buf, self._buf = self._buf, bytearray()
        self._submit(memoryview(buf), image=False)
        self._submit(payload, image=True)

    def _submit(self, data: memoryview, *, image: bool) -> None:
        self._raise()
        assert self._jobs is not None
        with self._done:
            self._queued += 1
            self._images += image
        self.bytes += len(data)
        self._jobs.put((data, image))

    def _helper(self) -> None:
        jobs = self._jobs
        assert jobs is not None
        while (job := jobs.get()) is not None:
            data, image = job
            try:
                if self._error is None:
                    self._write_all(data)
            except BaseException as exc:  # a closed pipe: the stage's thread raises it
                self._error = exc
            with self._done:
                self._queued -= 1
                self._images -= image
                self._done.notify_all()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _write_now(self, data: memoryview) -> None:
        self._raise()
        self.bytes += len(data)
        self._write_all(data)

    def _write_all(self, data: memoryview) -> None:
        write = self._stream.write
        total = len(data)
        try:
            done = write(data)
            while done is not None and done < total:
                done += write(data[done:])
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._output_error(exc) from None
        except ValueError as exc:  # a closed file object
            raise OutputError(f"cannot write packets to {self.name}: {exc}") from None

    def _output_error(self, exc: OSError) -> OutputError:
        return OutputError(f"cannot write packets to {self.name}: {exc.strerror or exc}")
