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

from tests.helpers import ENV, ROOT, pack, wait_for

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
        self.netns = netns
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

    def monitor_json(self, path: str) -> dict[str, Any]:
        """What the server's monitoring endpoint says ({} when it does not answer)."""
        import urllib.request

        url = f"http://127.0.0.1:{self.monitor}/{path}"
        if self.netns:  # the monitor listens in the server's namespace: ask from there
            code = (
                "import sys, urllib.request; "
                f"sys.stdout.buffer.write(urllib.request.urlopen({url!r}, timeout=2).read())"
            )
            done = subprocess.run(
                ["ip", "netns", "exec", self.netns, sys.executable, "-c", code],
                capture_output=True,
                timeout=20,
            )
            return json.loads(done.stdout) if done.returncode == 0 else {}
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return json.loads(reply.read())
        except OSError:
            return {}

    def messages_in(self) -> int:
        """Messages the server has received from clients so far."""
        return int(self.monitor_json("varz").get("in_msgs", 0))

    def subscribers(self, subject: str) -> int:
        """How many subscriptions the server has on exactly this subject (queue or not)."""
        data = self.monitor_json("connz?subs=1")
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


class Watched:
    """A vflow process whose stdout and stderr are read as they come (threads), so that a
    test can wait for a line; finish() gives its output and its resource usage (CPU time,
    peak memory) from wait4."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, **kw: Any) -> None:
        import threading

        self.proc = start(*args, env=env, **kw)
        self.out = bytearray()
        self.err = bytearray()
        self._threads = []
        for pipe, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            if pipe is not None:
                thread = threading.Thread(target=_drain, args=(pipe, into), daemon=True)
                thread.start()
                self._threads.append(thread)
        self.usage: Any = None

    def wait_err(self, text: str, timeout: float = 30) -> None:
        if not wait_for(lambda: text.encode() in self.err or self.proc.poll() is not None, timeout):
            raise AssertionError(f"no {text!r} on stderr within {timeout} s: {bytes(self.err)!r}")
        assert text.encode() in self.err, bytes(self.err)

    def finish(self, timeout: float = 60) -> int:
        """Wait for the process (killed, and the test failed, after `timeout` s)."""
        if not wait_for(lambda: _exited(self.proc.pid), timeout):
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"still running after {timeout} s: {bytes(self.err)!r}")
        _, status, self.usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        for thread in self._threads:
            thread.join(10)
        for pipe in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
            if pipe is not None:
                pipe.close()
        return self.proc.returncode

    @property
    def cpu(self) -> float:
        return self.usage.ru_utime + self.usage.ru_stime

    @property
    def peak(self) -> int:
        """Peak resident memory in bytes."""
        return self.usage.ru_maxrss * 1024


def _drain(pipe: Any, into: bytearray) -> None:
    while chunk := pipe.read1(65536):
        into.extend(chunk)


def _exited(pid: int) -> bool:
    """Whether pid is a zombie (exited, not yet waited for): wait4 can then take it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def nats(server: Server, body, auth: str = "", errors: list[str] | None = None) -> Any:
    """Run body(client, js) with a plain nats-py client of the server (an attacker, or a
    program that is not vflow), as user:password `auth`; returns what it returns. The
    errors the server sends go to `errors`."""
    import asyncio

    import nats as nats_py

    async def on_error(exc: Exception) -> None:
        if errors is not None:
            errors.append(str(exc))

    async def run() -> Any:
        at = f"{auth}@" if auth else ""
        client = await nats_py.connect(
            f"nats://{at}127.0.0.1:{server.port}", error_cb=on_error, allow_reconnect=False
        )
        try:
            return await body(client, client.jetstream())
        finally:
            await client.drain()

    return asyncio.run(run())


def stream_id(server: Server, subject: str, timeout: float = 20, auth: str = "") -> str:
    """The id of the stream on subject, as anyone may read it: from its heartbeats."""

    async def body(client, js) -> str:
        sub = await client.subscribe("_VFLOW.beat." + subject)
        msg = await sub.next_msg(timeout=timeout)
        return msg.headers["Vflow-Stream"]

    return nats(server, body, auth)


def publish(
    server: Server,
    subject: str,
    headers: dict[str, str],
    data: bytes = b"",
    auth: str = "",
    errors: list[str] | None = None,
) -> None:
    async def body(client, js) -> None:
        await client.publish(subject, data, headers=headers)
        await client.flush()

    nats(server, body, auth, errors)


class Beats:
    """The heartbeats on _VFLOW.beat.SUBJECT, collected in a thread: (stream id, headers)."""

    def __init__(self, server: Server, subject: str) -> None:
        import asyncio
        import threading

        import nats as nats_py

        self.seen: list[tuple[str, dict[str, str]]] = []
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def run() -> None:
            self._client = await nats_py.connect(f"nats://127.0.0.1:{server.port}")

            async def on(msg: Any) -> None:
                headers = dict(msg.headers or {})
                self.seen.append((headers.get("Vflow-Stream", ""), headers))

            await self._client.subscribe("_VFLOW.beat." + subject, cb=on)
            await self._client.flush()
            ready.set()

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(run(), self._loop)
        if not ready.wait(20):
            raise AssertionError("could not subscribe to the heartbeats")

    def of(self, stream: str) -> int:
        return sum(s == stream for s, _ in list(self.seen))

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


# -- a stream of 10 packets fed in two halves, so that something can happen in between --

WHOLE = pack([{"kind": "data", "seq": i} for i in range(10)])  # with its trailer
HALF = pack([{"kind": "data", "seq": i} for i in range(5)], end=False)
assert WHOLE.startswith(HALF)


def first_half(send: subprocess.Popen) -> None:
    assert send.stdin is not None
    send.stdin.write(HALF)
    send.stdin.flush()


def second_half(send: subprocess.Popen) -> None:
    assert send.stdin is not None
    send.stdin.write(WHOLE[len(HALF) :])
    send.stdin.close()


def finish_send(recv: Watched, send: subprocess.Popen) -> Watched:
    second_half(send)
    assert send.stderr is not None and send.stdout is not None
    err = send.stderr.read()
    assert send.wait(60) == 0, err
    send.stderr.close()
    send.stdout.close()
    recv.finish()
    return recv
