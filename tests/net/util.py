"""Helpers for the network tests: a real nats-server per test, vflow stages as processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import ENV, ROOT, wait_for

BURN = str(ROOT / "examples" / "burn.py")


def server_binary() -> str:
    here = Path(sys.executable).parent / "nats-server"
    return str(here)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A nats-server with JetStream on 127.0.0.1 (or `host`), its own store, stopped at the end."""

    def __init__(self, folder: Path, extra: str = "", host: str = "127.0.0.1", netns: str = ""):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.monitor = free_port()
        self.host = host
        conf = folder / "nats.conf"
        conf.write_text(
            f"listen: {host}:{self.port}\n"
            f"http: 127.0.0.1:{self.monitor}\n"
            f"jetstream {{ store_dir: {json.dumps(str(folder / 'js'))} }}\n"
            f"{extra}\n"
        )
        argv = [server_binary(), "-c", str(conf)]
        if netns:
            argv = ["ip", "netns", "exec", netns, *argv]
        self.log = open(folder / "server.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while b"Server is ready" not in (folder / "server.log").read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((folder / "server.log").read_text())
            time.sleep(0.02)

    def subscribers(self, subject: str) -> int:
        """How many subscriptions the server has on exactly this subject (queue or not)."""
        import urllib.request

        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.monitor}/connz?subs=1", timeout=2
            ) as reply:
                data = json.loads(reply.read())
        except OSError:
            return 0
        return sum(
            sub == subject
            for c in data.get("connections", [])
            for sub in c.get("subscriptions_list", [])
        )

    def wait_subscribed(self, subject: str, count: int = 1, timeout: float = 20) -> None:
        if not wait_for(lambda: self.subscribers(subject) >= count, timeout):
            raise AssertionError(f"nobody subscribed to {subject} within {timeout} s")

    def url(self, subject: str = "", auth: str = "", scheme: str = "nats") -> str:
        at = f"{auth}@" if auth else ""
        return f"{scheme}://{at}{self.host}:{self.port}/{subject}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def vflow_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "vflow_cli", *args]


def start(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen:
    """A vflow command as a process (stdout and stderr piped unless given)."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(vflow_argv(*args), env=env or ENV, **kw)


def sh(command: str, env: dict[str, str] | None = None, timeout: float = 60, **kw: Any):
    """A shell pipeline with vflow on PATH; .statuses as in tests.helpers.sh."""
    from tests.helpers import sh as run

    return run(command, env=env or ENV, timeout=timeout, **kw)


def rss(pid: int) -> int:
    """Resident memory of a process in bytes (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def local_env(tmp: Path, **extra: str) -> dict[str, str]:
    """An environment whose local NATS server lives in tmp (never the user's)."""
    return {**ENV, "XDG_STATE_HOME": str(tmp / "state"), **extra}


def seqs(packets: list[dict[str, Any]]) -> list[int]:
    return [p["seq"] for p in packets if p.get("kind") == "data"]


os.environ.setdefault("VFLOW_NATS_IDLE", "30")
