"""A NATS cluster of three nats-server processes with JetStream on loopback, for the
failover test and its benchmark: each server can be SIGKILLed and started again."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.net.util import free_port, server_binary, wait_for


class Cluster:
    def __init__(self, folder: Path, size: int = 3) -> None:
        self.procs: list[subprocess.Popen | None] = [None] * size
        for attempt in range(3):
            self.folder = folder if attempt == 0 else folder / f"again{attempt}"
            # free ports are only free when asked: another test may take one before a
            # server binds it, and that server exits; then the cluster starts again
            self.ports = [free_port() for _ in range(size)]
            self.routes = [free_port() for _ in range(size)]
            self.monitors = [free_port() for _ in range(size)]  # the test's view, not vflow's
            for i in range(size):
                self.start(i)
            try:
                wait_for(self.ready, 60, "a JetStream leader that all servers see", every=0.1)
                return
            except (RuntimeError, AssertionError):
                self.stop()
                if attempt == 2:
                    raise

    def _conf(self, i: int) -> Path:
        node = self.folder / f"n{i}"
        node.mkdir(parents=True, exist_ok=True)
        others = [p for j, p in enumerate(self.routes) if j != i]
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in others)
        conf = node / "nats.conf"
        conf.write_text(
            f"server_name: n{i}\n"
            f"listen: 127.0.0.1:{self.ports[i]}\n"
            f"http: 127.0.0.1:{self.monitors[i]}\n"
            f"jetstream {{ store_dir: {json.dumps(str(node / 'js'))} }}\n"
            f"cluster {{ name: vflow, listen: 127.0.0.1:{self.routes[i]}, routes: [{routes}] }}\n"
        )
        return conf

    def start(self, i: int) -> None:
        conf = self._conf(i)
        log = open(self.folder / f"n{i}.log", "ab")  # noqa: SIM115 (the server keeps it)
        self.procs[i] = subprocess.Popen(
            [server_binary(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.procs[i] = None

    def url(self, subject: str) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"nats://{hosts}/{subject}"

    def _jsz(self, i: int) -> dict[str, Any] | None:
        try:
            page = "jsz?accounts=true&streams=true&consumers=true&config=true"
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.monitors[i]}/{page}", timeout=2
            ) as reply:
                return json.loads(reply.read())
        except (OSError, ValueError):
            return None

    def ready(self) -> bool:
        """Every running server sees a JetStream meta leader and all its peers."""
        for i, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"n{i} exited:\n" + self.logs())
        for i, proc in enumerate(self.procs):
            if proc is None:
                continue
            jsz = self._jsz(i) or {}
            meta = jsz.get("meta_cluster") or {}
            if not meta.get("leader") or len(meta.get("replicas") or []) < len(self.procs) - 1:
                return False
        return True

    def leader(self, stream: str) -> int | None:
        """Which server leads STREAM now (its index), or None."""
        for i, proc in enumerate(self.procs):
            if proc is None:
                continue
            for account in (self._jsz(i) or {}).get("account_details") or []:
                for detail in account.get("stream_detail") or []:
                    if detail.get("name") == stream:
                        name = (detail.get("cluster") or {}).get("leader")
                        if name:
                            return int(name.removeprefix("n"))
        return None

    def replicas(self, stream: str) -> int:
        for i, proc in enumerate(self.procs):
            if proc is None:
                continue
            for account in (self._jsz(i) or {}).get("account_details") or []:
                for detail in account.get("stream_detail") or []:
                    if detail.get("name") == stream:
                        return int((detail.get("config") or {}).get("num_replicas") or 1)
        return 0

    def logs(self) -> str:
        return "\n".join(
            (self.folder / f"n{i}.log").read_text(errors="replace")[-1500:]
            for i in range(len(self.procs))
            if (self.folder / f"n{i}.log").exists()
        )

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
