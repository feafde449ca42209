"""net.ours: proof that a folder, a process or a listening socket is ours, for the local
server's records (net.server). A record outlives what it describes: after a crash or a
reboot, its pid may be any process and its port anyone's listener, so nothing recorded is
trusted before it is proven (Linux: /proc).

    folder(path)           ours (owner), 0700, a real folder: else StageError
    open_file(path, ...)   os.open without following a symbolic link
    identity(pid)          {"pid", "uid", "start", "exe"} of a running process, or None
    proven(record)         the process is the one recorded: same uid, start time, program
    listens(pid, port)     that process holds the socket listening on 127.0.0.1:port
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vflow_cli.errors import StageError


def folder(path: Path) -> Path:
    """Make (0700) or check the folder that holds the server's token: it must be a real
    folder, not a symbolic link, owned by us and closed to everyone else."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise StageError(
            f"{path} is a symbolic link; the local server keeps its token only in a real "
            "folder of yours (remove the link)"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise StageError(f"{path} is not a folder (remove it)")
    if info.st_uid != os.getuid():
        raise StageError(f"{path} belongs to user {info.st_uid}, not to you (uid {os.getuid()})")
    if info.st_mode & 0o077:
        raise StageError(
            f"{path} is open to other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"`chmod 700 {path}` if that was a mistake"
        )
    return path


def open_file(path: Path, flags: int, mode: int = 0o600) -> int:
    """os.open that refuses a symbolic link (ELOOP) instead of following it."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StageError(f"{path} is a symbolic link; not followed (remove it)") from None
        raise


def read_text(path: Path) -> str:
    with os.fdopen(open_file(path, os.O_RDONLY)) as f:
        return f.read()


def write_text(path: Path, text: str) -> None:
    """Replace PATH with TEXT (mode 0600) in one step: readers see the old or the new."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    with os.fdopen(open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "w") as f:
        f.write(text)
    os.replace(tmp, path)


def identity(pid: Any) -> dict[str, Any] | None:
    """Who a running process is: uid, start time (clock ticks after boot: a reused pid has
    another) and program; None if it is gone, a zombie or unreadable."""
    if type(pid) is not int or pid <= 0:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        uid = Path(f"/proc/{pid}").stat().st_uid
        exe = os.readlink(f"/proc/{pid}/exe")
    except (OSError, IndexError):
        return None
    if fields[0] == "Z":
        return None
    return {"pid": pid, "uid": uid, "start": int(fields[19]), "exe": exe}


def proven(record: Any) -> bool:
    """The process a record describes is running, ours, and the very one recorded."""
    if not isinstance(record, dict):
        return False
    now = identity(record.get("pid"))
    return now is not None and now["uid"] == os.getuid() and now == record


def _sockets(state: str, port: int) -> Iterator[list[str]]:
    """The kernel's TCP sockets in STATE (0A: listening, 01: established) on local PORT, as
    the columns of /proc/net/tcp and tcp6 (local address HEXIP:HEXPORT; column 9 the inode)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == state and int(cols[1].rsplit(":", 1)[1], 16) == port:
                yield cols


def listens(pid: int, port: int) -> bool:
    """Process PID holds the socket that listens on PORT (so whoever answers there is it)."""
    inodes = {f"socket:[{cols[9]}]" for cols in _sockets("0A", port)}
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            continue
    return False


def connections(port: int) -> int:
    """How many TCP connections are established to PORT on this machine (the server's
    ends), read from the kernel: no monitoring port needed."""
    return sum(1 for _ in _sockets("01", port))
