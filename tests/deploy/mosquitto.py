"""A real MQTT broker for the tests (Debian's mosquitto, with a generated configuration, on a
loopback port; never the system service), and a subscriber that records what it receives."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.net.util import free_port, wait_for

MOSQUITTO = "/usr/sbin/mosquitto"


class Mosquitto:
    """mosquitto on 127.0.0.1:PORT with persistence in `folder`; stop() and start() again
    keep the port (a broker restart). `users` {name: password} turns anonymous access off;
    `tls` (cert, key) makes the listener TLS only."""

    def __init__(self, folder: Path, users: dict[str, str] | None = None, tls=None) -> None:
        if not shutil.which(MOSQUITTO):
            pytest.skip("mosquitto is not installed (make system-deps installs it)")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        lines = [
            f"listener {self.port} 127.0.0.1",
            "user root" if os.geteuid() == 0 else "",  # or it drops to the user mosquitto
            "persistence true",
            f"persistence_location {folder}/",
            f"log_dest file {folder}/mosquitto.log",
            "log_type all",
        ]
        if users:
            passwords = folder / "passwd"
            passwords.write_text("")
            for name, password in users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwords), name, password], check=True
                )
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            lines += [f"certfile {tls[0]}", f"keyfile {tls[1]}"]
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for(self._listening, timeout=20):
            raise RuntimeError(f"mosquitto did not start: {self.log()}")

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {self.log()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def log(self) -> str:
        path = self.folder / "mosquitto.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its persistent store and exits (a clean restart)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


class Subscriber:
    """A paho client subscribed to TOPIC/# at QoS 1 in a persistent session (it gets what
    was published while it was reconnecting); .messages: (topic, payload, retained)."""

    def __init__(
        self,
        port: int,
        topic: str = "vflow/#",
        client_id: str = "test-sub",
        clean: bool = False,
        auth: tuple[str, str] | None = None,
        ca: str | None = None,
    ) -> None:
        import paho.mqtt.client as paho

        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean
        )
        if auth:
            self.client.username_pw_set(*auth)
        if ca:
            self.client.tls_set(ca_certs=ca)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(20), "the test's subscriber did not subscribe"

    def _message(self, client: Any, userdata: Any, message: Any) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
