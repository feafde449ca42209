"""framing.shm: images that do not cross the pipe (shared memory between two vflow stages).

    writer ──pipe: header {"vflow": 1, "shm": "@ADDRESS"}, packets ...──> reader
       │                                                                    │
       └──── Unix socket at ADDRESS: ring (memfd, SCM_RIGHTS) ───────────>──┘
             <── yes (A), then releases (ring, slot, generation) ────────────

A writer whose output is a pipe offers shared memory in its stream header: the address of
a Unix socket (abstract namespace: no file). A vflow reader whose stdin is that pipe may
connect. Each end checks the other with SO_PEERCRED: the same user, and (writer) the
peer's stdin is the very pipe it writes to, (reader) the peer holds the very pipe it reads.
A foreign program never connects, so it only ever sees inline bytes. A reader that has
checked the writer says yes (message A); until then every image goes inline, so a reader
whose check failed (a short stream's writer may close the pipe before it is checked) is
never sent a reference.

The writer then owns a ring: one sealed memfd of SLOTS slots, sent once over the socket.
An image goes into a free slot, and its packet carries {"shm": [ring, slot, generation]}
in place of the bin payload. The reader maps the ring read-only, checks the reference
(a ring it was given, a slot in range, the generation and length the slot's header
holds) and hands the stage a read-only array over the slot. When nothing holds that
array any more it sends the slot back. A writer without a free slot waits for one, as it
would wait on a full pipe. memfd has no name in any file system: the memory is gone when
the last process holding it exits, SIGKILL included.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import socket
import stat
import struct
import sys
from typing import Any

from vflow_cli.framing.wire import DTYPES, Packet, StreamError

SLOTS = 6  # slots per ring: one the reader's stage holds, some in flight, one being filled
MIN_SLOTS = 3  # fewer fit under VFLOW_MAX_PACKET: images go inline
HOLD = SLOTS - 3  # slots a reader's stage may keep; beyond that, images are copied out
SHARE_AT = 1 << 16  # smaller images go inline (a copy costs less than the bookkeeping)
HEAD = 64  # each slot starts with a header: generation (u64), length (u64), padding
SLOT_HEAD = struct.Struct("<QQ")
RING = struct.Struct("<cIIQ")  # b"R", ring, slots, slot bytes (with the ring's fd)
RELEASE = struct.Struct("<cIIQ")  # b"F", ring, slot, generation
SEALS = ("F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_SEAL")


def enabled() -> bool:
    """VFLOW_SHM=0 turns shared memory off (every image crosses the pipe)."""
    return os.environ.get("VFLOW_SHM", "1") != "0" and hasattr(os, "memfd_create")


def _is_pipe(fd: int | None) -> bool:
    try:
        return fd is not None and stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _peer(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a Unix socket."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", creds)
    return pid, uid


def _seals() -> int:
    import fcntl

    value = 0
    for name in SEALS:
        value |= getattr(fcntl, name)
    return value


class Ring:
    """The writer's ring: one sealed memfd of `slots` slots of `size` bytes each."""

    def __init__(self, number: int, size: int, slots: int) -> None:
        import fcntl

        self.number, self.size, self.slots = number, size, slots
        flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
        self.fd = os.memfd_create(f"vflow-ring-{os.getpid()}", flags)
        os.ftruncate(self.fd, size * slots)
        # sealed: nobody can shrink it under the reader's mapping (a SIGBUS)
        fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, _seals())
        self.map = mmap.mmap(self.fd, size * slots)
        self.view = memoryview(self.map)
        self.generations = [0] * slots
        self.free = list(range(slots))

    def data(self, slot: int, nbytes: int) -> memoryview:
        start = slot * self.size + HEAD
        return self.view[start : start + nbytes]

    def address(self, slot: int) -> int:
        import ctypes

        return ctypes.addressof(ctypes.c_char.from_buffer(self.map)) + slot * self.size + HEAD

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with contextlib.suppress(BufferError):  # an array over a slot still lives: the
            self.view.release()  # mapping goes when it does
            self.map.close()


class Offer:
    """The writer's end: a listening socket, the one verified reader, and the ring."""

    def __init__(self, pipe_fd: int, max_bytes: int) -> None:
        self._pipe = os.fstat(pipe_fd)
        self._max = max_bytes
        name = f"vflow-{os.getpid()}-{os.urandom(8).hex()}"
        self._listen: socket.socket | None = socket.socket(
            socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        self._listen.bind("\0" + name)
        self._listen.listen(4)
        self.address = "@" + name
        self._conn: socket.socket | None = None
        self._candidate: socket.socket | None = None  # verified, the reader's yes to come
        self._ring: Ring | None = None
        self._rings = 0
        self._lent: tuple[int, int, int] | None = None  # (ring, slot, address) given by slot()
        self.shared = 0  # images sent by reference

    @classmethod
    def create(cls, pipe_fd: int | None, max_bytes: int) -> Offer | None:
        """An offer for a writer on a pipe, or None (not a pipe, VFLOW_SHM=0, no memfd)."""
        if not enabled() or not _is_pipe(pipe_fd):
            return None
        assert pipe_fd is not None
        try:
            return cls(pipe_fd, max_bytes)
        except OSError:
            return None

    def ready(self) -> bool:
        """Whether a verified reader has taken up the offer (accepts one, without waiting).

        A reader checks the writer too, and says yes (message A) only once it has: until
        then images go inline, so a reader that turned the offer down is never sent a
        reference (its check can fail late, e.g. when a short stream's writer has already
        closed the pipe)."""
        if self._conn is not None:
            return True
        while True:
            if self._candidate is not None:
                answer = self._answer(self._candidate)
                if answer is None:
                    return False  # not yet
                if answer:
                    self._conn, self._candidate = self._candidate, None
                    self._stop_listening()
                    return True
                self._candidate.close()  # the reader turned the offer down
                self._candidate = None
            if self._listen is None:
                return False
            try:
                conn, _ = self._listen.accept()
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                self._stop_listening()
                return False
            if self._verify(conn):
                conn.setblocking(False)
                self._candidate = conn
                continue
            from vflow_cli.console import log

            log.debug("shared memory: a process that does not read this pipe was turned away")
            conn.close()  # not our reader: it gets nothing, and the offer stays open

    @staticmethod
    def _answer(conn: socket.socket) -> bool | None:
        """The reader's answer to the offer: True (A), False (it left), None (not yet)."""
        try:
            message = conn.recv(RELEASE.size)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return False
        return len(message) == RELEASE.size and message[:1] == b"A"

    def _verify(self, conn: socket.socket) -> bool:
        try:
            pid, uid = _peer(conn)
            stdin = os.stat(f"/proc/{pid}/fd/0")
        except OSError:
            return False
        return uid == os.getuid() and stat.S_ISFIFO(stdin.st_mode) and _same(stdin, self._pipe)

    def _stop_listening(self) -> None:
        if self._listen is not None:
            self._listen.close()
            self._listen = None

    # -- slots ------------------------------------------------------------------------------

    def _ring_for(self, nbytes: int) -> Ring | None:
        ring = self._ring
        if ring is not None and nbytes + HEAD <= ring.size:
            return ring
        size = -(-(nbytes + HEAD) // mmap.PAGESIZE) * mmap.PAGESIZE
        slots = min(SLOTS, self._max // size)
        if slots < MIN_SLOTS:
            return None
        assert self._conn is not None
        self._rings += 1
        ring = Ring(self._rings, size, slots)
        socket.send_fds(self._conn, [RING.pack(b"R", ring.number, slots, size)], [ring.fd])
        if self._ring is not None:
            self._ring.close()
        self._ring = ring
        self._lent = None
        return ring

    def _collect(self, wait: bool) -> None:
        """Take the releases that arrived; with `wait`, wait for at least one."""
        conn = self._conn
        assert conn is not None
        while True:
            try:
                message = conn.recv(RELEASE.size)
            except (BlockingIOError, InterruptedError):
                if not wait:
                    return
                import select

                select.select([conn], [], [])
                continue
            except ConnectionResetError:
                message = b""
            if not message:
                raise BrokenPipeError(errno.EPIPE, "the reader closed its shared memory")
            kind, number, slot, generation = RELEASE.unpack(message)
            ring = self._ring
            if (
                kind == b"F"
                and ring is not None
                and number == ring.number
                and slot < ring.slots
                and ring.generations[slot] == generation
                and slot not in ring.free
            ):
                ring.free.append(slot)
                wait = False

    def _take(self, ring: Ring, before_wait: Any) -> int:
        self._collect(wait=False)
        if not ring.free:
            before_wait()  # the references the reader needs to release anything leave now
            while not ring.free:
                self._collect(wait=True)
        return ring.free.pop(0)

    def slot(self, shape: tuple[int, ...], dtype: Any, before_wait: Any) -> Any:
        """A writable array in a free slot, or None; place() then sends it without a copy."""
        import numpy as np

        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if dtype.name not in DTYPES or nbytes < SHARE_AT or not self.ready():
            return None
        ring = self._ring_for(nbytes)
        if ring is None:
            return None
        if self._lent is not None and self._lent[0] == ring.number:
            slot = self._lent[1]  # lent before and never sent: lend it again
        else:
            slot = self._take(ring, before_wait)
        SLOT_HEAD.pack_into(ring.map, slot * ring.size, ring.generations[slot] | 1, 0)
        self._lent = (ring.number, slot, ring.address(slot))
        return np.frombuffer(ring.data(slot, nbytes), dtype).reshape(shape)

    def place(self, image: Any, before_wait: Any) -> Packet | None:
        """The image's reference once it is in a slot, or None to send it inline."""
        import numpy as np

        if (
            type(image) is not np.ndarray
            or image.nbytes < SHARE_AT
            or image.dtype.name not in DTYPES
            or image.dtype.byteorder == ">"
            or not self.ready()
        ):
            return None
        ring = self._ring_for(image.nbytes)
        if ring is None:
            return None
        lent = self._lent
        if (
            lent is not None
            and lent[0] == ring.number
            and image.flags.c_contiguous
            and image.__array_interface__["data"][0] == lent[2]
        ):
            slot = lent[1]  # the stage wrote its result straight into the slot
            self._lent = None
        else:
            slot = self._take(ring, before_wait)
            # an odd generation: being written
            SLOT_HEAD.pack_into(ring.map, slot * ring.size, ring.generations[slot] | 1, 0)
            target = np.frombuffer(ring.data(slot, image.nbytes), image.dtype)
            np.copyto(target.reshape(image.shape), image, casting="no")
        generation = ring.generations[slot] = (ring.generations[slot] | 1) + 1  # even: whole
        SLOT_HEAD.pack_into(ring.map, slot * ring.size, generation, image.nbytes)
        self.shared += 1
        return {
            "format": "raw",
            "dtype": image.dtype.name,
            "shape": list(image.shape),
            "shm": [ring.number, slot, generation],
        }

    def close(self) -> None:
        self._stop_listening()
        for conn in (self._conn, self._candidate):
            if conn is not None:
                conn.close()
        self._conn = self._candidate = None
        if self._ring is not None:
            self._ring.close()
            self._ring = None


class Rings:
    """The reader's end: the writer's rings, mapped read-only, and the slots its stage holds."""

    def __init__(self, conn: socket.socket, max_bytes: int) -> None:
        self._conn = conn
        self._max = max_bytes
        self._rings: dict[int, tuple[int, int, mmap.mmap, memoryview]] = {}
        self._held: list[tuple[int, int, int, Any]] = []  # ring, slot, generation, array
        self._free = self._count_when_free()
        self.shared = 0  # images received by reference

    @classmethod
    def connect(cls, address: Any, fd: int | None, max_bytes: int) -> Rings | None:
        """Take up a writer's offer if this reader's input is stdin, a pipe, and the
        process at `address` is this user's and holds that pipe; else None (inline bytes)."""
        if not enabled() or type(address) is not str or not address.startswith("@"):
            return None
        try:
            if fd is None or not _is_pipe(fd) or not _same(os.fstat(fd), os.fstat(0)):
                return None
            mine = os.fstat(fd)
            conn = socket.socket(
                socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
            )
        except OSError:
            return None
        from vflow_cli.console import log

        try:
            conn.connect("\0" + address[1:256])
            pid, uid = _peer(conn)
            if uid != os.getuid() or not _holds(pid, mine):
                log.debug("shared memory: the offer is not from the writer of this pipe")
                conn.close()
                return None
            conn.send(RELEASE.pack(b"A", 0, 0, 0))  # yes: the writer may send references
        except (OSError, ValueError) as exc:
            log.debug("shared memory: the offer cannot be taken up (%s)", exc)
            conn.close()
            return None
        conn.setblocking(True)
        return cls(conn, max_bytes)

    @staticmethod
    def _count_when_free() -> int:
        probe: list[tuple[int, int, int, Any]] = [(0, 0, 0, object())]
        for entry in probe:
            return sys.getrefcount(entry[3])
        raise AssertionError("unreachable")

    def _receive(self, number: int, where: str) -> None:
        """Read rings from the socket until ring `number` is known."""
        while number not in self._rings:
            try:  # the writer sends a ring before any packet that refers to it: never wait
                message, fds = _receive_fds(self._conn, RING.size)
            except BlockingIOError:
                message, fds = b"", []
            except OSError as exc:
                raise StreamError(f"{where}: shared memory failed ({exc})") from None
            if not message:
                raise StreamError(f"{where} refers to shared memory this reader was not given")
            try:
                kind, got, slots, size = RING.unpack(message)
                if kind != b"R" or len(fds) != 1 or not 1 <= slots <= SLOTS:
                    raise StreamError(f"{where}: a malformed shared-memory ring")
                if size <= HEAD or size > self._max + mmap.PAGESIZE:
                    raise StreamError(f"{where}: a shared-memory ring over VFLOW_MAX_PACKET")
                self._map(got, slots, size, fds[0], where)
            finally:
                for fd in fds:
                    os.close(fd)

    def _map(self, number: int, slots: int, size: int, fd: int, where: str) -> None:
        import fcntl

        try:
            sealed = fcntl.fcntl(fd, fcntl.F_GET_SEALS) & _seals() == _seals()
            length = os.fstat(fd).st_size
        except OSError:
            sealed, length = False, -1
        if not sealed or length != slots * size:
            raise StreamError(f"{where}: a shared-memory ring that is not a sealed memfd")
        mapped = mmap.mmap(fd, length, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        old = [n for n in self._rings if n != number]
        for n in old:  # a new ring replaces the old (the image size changed)
            del self._rings[n]
        self._rings[number] = (slots, size, mapped, memoryview(mapped))

    def image(self, ref: Any, desc: Packet, nbytes: int, where: str) -> Any:
        """The read-only array a reference points to, after checking it (StreamError)."""
        import numpy as np

        if type(ref) is not list or len(ref) != 3 or not all(type(n) is int for n in ref):
            raise StreamError(f"{where}: a malformed shared-memory reference")
        number, slot, generation = ref
        self._receive(number, where)
        slots, size, mapped, view = self._rings[number]
        if not 0 <= slot < slots or nbytes + HEAD > size:
            raise StreamError(f"{where}: a shared-memory reference out of its ring")
        got, length = SLOT_HEAD.unpack_from(mapped, slot * size)
        if got != generation or generation & 1 or length != nbytes:
            raise StreamError(
                f"{where}: its shared-memory slot holds another frame (generation {got}, "
                f"not {generation}): the stage before this one broke off mid-frame"
            )
        start = slot * size + HEAD
        dtype = np.dtype(desc.get("dtype", "uint8")).newbyteorder("<")
        flat = np.frombuffer(view[start : start + nbytes], dtype)
        self.shared += 1
        if len(self._held) >= HOLD:  # the stage keeps frames: copy, or the writer would stall
            array = flat.reshape(desc["shape"]).copy()
            self._send(number, slot, generation)
            return array
        self._held.append((number, slot, generation, flat))
        return flat.reshape(desc["shape"])

    def release(self) -> None:
        """Give back the slots nothing holds any more (called before every read)."""
        held = self._held
        if not held:
            return
        keep = []
        for entry in held:
            if sys.getrefcount(entry[3]) == self._free:
                self._send(*entry[:3])
            else:
                keep.append(entry)
        self._held = keep

    def _send(self, number: int, slot: int, generation: int) -> None:
        with contextlib.suppress(OSError):  # a writer that left needs nothing back
            self._conn.send(RELEASE.pack(b"F", number, slot, generation))

    def close(self) -> None:
        self._conn.close()


def _receive_fds(sock: socket.socket, size: int) -> tuple[bytes, list[int]]:
    """One message and the descriptors it carries, without waiting (socket.recv_fds of
    Python 3.11 drops its flags)."""
    import array

    fds = array.array("i")
    message, ancillary, _, _ = sock.recvmsg(
        size, socket.CMSG_LEN(4 * fds.itemsize), socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC
    )
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return message, list(fds)


def _holds(pid: int, pipe: os.stat_result) -> bool:
    """Whether process `pid` has `pipe` open (the writer of our stdin)."""
    folder = f"/proc/{pid}/fd"
    for name in os.listdir(folder):
        with contextlib.suppress(OSError):
            if _same(os.stat(f"{folder}/{name}"), pipe):
                return True
    return False
