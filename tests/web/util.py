"""What the web tests share: a served pipeline as real processes, HTTP by hand, MJPEG parts,
a process's memory, and Prometheus text parsed by prometheus-client."""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.helpers import ENV, wait_for  # noqa: F401 (wait_for: for the tests of this folder)

VFLOW = [sys.executable, "-m", "vflow_cli"]


class Served:
    """`vflow A | vflow B | ... | vflow serve ...` as real processes on real pipes; the
    serving stage's stderr (the last stage's unless `server` says) goes to a file, where
    its address is read."""

    def __init__(
        self, *stages: list[str], stdout: Any = subprocess.DEVNULL, server: int = -1
    ) -> None:
        self._err = tempfile.NamedTemporaryFile(prefix="vflow-serve-", suffix=".log")  # noqa: SIM115
        self.procs: list[subprocess.Popen] = []
        upstream = None
        server = server % len(stages)
        for i, argv in enumerate(stages):
            last = i == len(stages) - 1
            proc = subprocess.Popen(
                [*VFLOW, *argv],
                stdin=upstream if upstream is not None else subprocess.DEVNULL,
                stdout=stdout if last else subprocess.PIPE,
                stderr=self._err if i == server else subprocess.DEVNULL,
                env=ENV,
            )
            if upstream is not None:
                upstream.close()  # our copy: the stage before sees its reader leave
            upstream = proc.stdout
            self.procs.append(proc)
        self.server = self.procs[server]
        self.port = self._port()
        self.host = f"127.0.0.1:{self.port}"

    def _port(self, timeout: float = 30) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            match = re.search(r"serving on http://(?:127|0)\.0\.0\.[01]:(\d+)/", self.stderr())
            if match:
                return int(match.group(1))
            if self.server.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no address on stderr: {self.stderr()!r}")

    def stderr(self) -> str:
        return Path(self._err.name).read_text(errors="replace")

    def get(self, path: str, headers: dict[str, str] | None = None, timeout: float = 20):
        return get(self.port, path, headers, timeout)

    def metrics(self) -> dict[str, float]:
        status, _, body = self.get("/metrics")
        assert status == 200
        return parse_metrics(body.decode())

    def wait(self, timeout: float = 60) -> list[int]:
        return [p.wait(timeout) for p in self.procs]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._err.close()

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 20):
    """(status, headers, body) of one GET."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def raw_request(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send bytes as they are; return all that comes back until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


class MjpegReader:
    """A viewer of /stream.mjpg on a plain socket: parts() gives (headers, jpeg) in order."""

    def __init__(self, port: int, path: str = "/stream.mjpg", headers: str = "") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n"
        self.sock.sendall(request.encode())
        self.file = self.sock.makefile("rb")
        status = self.file.readline()
        assert b" 200 " in status, status
        self.headers = self._headers()
        assert self.headers["content-type"].startswith("multipart/x-mixed-replace")
        assert self.file.readline() == b"--vflowframe\r\n"

    def _headers(self) -> dict[str, str]:
        headers = {}
        while True:
            line = self.file.readline()
            if line in (b"\r\n", b""):
                return headers
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()

    def part(self) -> tuple[dict[str, str], bytes]:
        headers = self._headers()
        data = self.file.read(int(headers["content-length"]))
        assert self.file.readline() == b"\r\n"
        assert self.file.readline() == b"--vflowframe\r\n"
        return headers, data

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text as {'name{label="v",...}': value}, read by prometheus-client's own
    parser: a format error of ours fails here."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def metric(values: dict[str, float], name: str, **labels: str) -> float:
    """The one sample of `name` whose labels include these."""
    found = [
        v
        for key, v in values.items()
        if key.split("{")[0] == name and all(f'{k}="{x}"' in key for k, x in labels.items())
    ]
    assert len(found) == 1, (name, labels, [k for k in values if k.startswith(name)])
    return found[0]
