"""mqtt: publish events, counts and occupancy to an MQTT broker for home automation. Streaming.

packets ──> topics (QoS 1) ──> paho's queue (bounded: --queue) ──> broker
                               └ kept while the broker is away, resent until acknowledged
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.options import quality_option
from vflow_cli.stage import Packet, StageError, consumer, log

PORTS = {"mqtt": 1883, "mqtts": 8883}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def topic_part(text: Any) -> str:
    """A name that is one topic level: no '/', '+', '#', spaces or control characters."""
    return _UNSAFE.sub("_", str(text)).strip("_") or "_"


class Broker:
    """A paho client on its own network thread: connects, reconnects with backoff, keeps
    QoS 1 messages until the broker acknowledges them, and counts what it could not keep."""

    def __init__(self, url: str, options: dict[str, Any], availability: str) -> None:
        import paho.mqtt.client as paho

        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in PORTS or not parts.hostname:
            raise click.BadParameter(
                f"{url!r}: give mqtt://[USER:PASSWORD@]HOST[:PORT] or mqtts://...", param_hint="URL"
            )
        try:
            self.port = parts.port or PORTS[parts.scheme]
        except ValueError:
            raise click.BadParameter(
                f"{url!r}: the port is not a number", param_hint="URL"
            ) from None
        self.host = parts.hostname
        self.shown = f"{parts.scheme}://{self.host}:{self.port}"
        self.queue = options["queue"]
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=options["client_id"] or f"vflow-{os.getpid()}",
            protocol=paho.MQTTv311,
        )
        user = urllib.parse.unquote(parts.username or "") or os.environ.get("VFLOW_MQTT_USER")
        password = parts.password
        if password is not None:
            password = urllib.parse.unquote(password)
        password = password or os.environ.get("VFLOW_MQTT_PASSWORD")
        if user:
            self.client.username_pw_set(user, password)
        if parts.scheme == "mqtts" or options["tls_ca"] or options["tls_cert"]:
            self.client.tls_set(
                ca_certs=options["tls_ca"], certfile=options["tls_cert"], keyfile=options["tls_key"]
            )
        self.client.max_queued_messages_set(self.queue)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.will_set(availability, "offline", qos=1, retain=True)
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_publish = self._acknowledged
        self.availability = availability
        self.lock = threading.Lock()
        self.answer = threading.Event()
        self.refused = ""
        self.up = False
        self.lost_at: float | None = None
        self.sent = self.acked = self.dropped = 0
        self.pending: set[int] = set()  # message ids sent and not yet acknowledged
        self.early: set[int] = set()

    def connect(self, timeout: float) -> None:
        try:
            self.client.connect_async(self.host, self.port, keepalive=15)
        except (OSError, ValueError) as exc:
            raise StageError(f"cannot reach the broker at {self.shown}: {exc}") from None
        self.client.loop_start()
        if not self.answer.wait(timeout):  # CONNACK, or a refusal
            self.client.loop_stop()
            raise StageError(
                f"the broker at {self.shown} did not answer within {timeout:g} s; check the "
                "address and that it runs (mosquitto), or raise --timeout"
            )
        if self.refused:
            self.client.loop_stop()
            raise StageError(f"the broker at {self.shown} refused us: {self.refused}")

    def _connected(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            if not self.answer.is_set():
                self.refused = str(reason)
                self.answer.set()
                client.disconnect()
            else:
                log.warning("the broker at %s refused us: %s", self.shown, reason)
            return
        with self.lock:
            self.up = True
            if self.lost_at is not None:
                waiting = len(self.pending)
                log.warning(
                    "the broker at %s is back after %.1f s; sending %d queued messages",
                    self.shown,
                    time.monotonic() - self.lost_at,
                    waiting,
                )
                self.lost_at = None
        self.answer.set()
        client.publish(self.availability, "online", qos=1, retain=True)  # not counted

    def _disconnected(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        with self.lock:
            was_up, self.up = self.up, False
            if was_up and reason.is_failure:
                self.lost_at = time.monotonic()
                log.warning(
                    "lost the broker at %s (%s); reconnecting, keeping up to %d messages",
                    self.shown,
                    reason,
                    self.queue,
                )

    def _acknowledged(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self.lock:
            if mid in self.pending:
                self.pending.discard(mid)
                self.acked += 1
            else:  # acknowledged before publish() noted it, or a status message
                self.early.add(mid)

    def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        import paho.mqtt.client as paho

        # paho calls on_publish under its own lock: never hold ours across its publish()
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self.lock:
            if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
                if not self.dropped:
                    log.warning(
                        "%d messages wait for the broker (--queue); dropping new ones", self.queue
                    )
                self.dropped += 1
                return
            self.sent += 1
            if info.mid in self.early:
                self.early.discard(info.mid)
                self.acked += 1
            else:
                self.pending.add(info.mid)

    def finish(self, timeout: float) -> int:
        """Wait for the broker to acknowledge what was sent; the number still unacknowledged."""
        deadline = time.monotonic() + timeout
        with self.lock:
            left, up = len(self.pending), self.up
        if left and not up:
            log.warning(
                "waiting up to %g s for the broker at %s to take %d messages",
                timeout,
                self.shown,
                left,
            )
        while left and time.monotonic() < deadline:
            time.sleep(0.02)
            with self.lock:
                left = len(self.pending)
        if not left:
            info = self.client.publish(self.availability, "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # the broker is away
                info.wait_for_publish(min(2.0, max(0.1, deadline - time.monotonic())))
        self.client.disconnect()
        self.client.loop_stop()
        return left


class State:
    """Retained state topics: published when their value changes, not every frame; with
    `discovery`, counts are announced to Home Assistant when first seen."""

    def __init__(self, broker: Broker, discovery: str | None) -> None:
        self.broker = broker
        self.discovery = discovery
        self.values: dict[str, str] = {}

    def set(self, base: str, kind: str, name: str, value: Any) -> None:
        """BASE/KIND/NAME = value (BASE is TOPIC/CAMERA)."""
        topic = f"{base}/{kind}/{name}"
        text = value if isinstance(value, str) else json.dumps(value)
        if self.values.get(topic) != text:
            if topic not in self.values and self.discovery and kind in ("objects", "occupancy"):
                self._announce(base, kind, name)
            self.values[topic] = text
            self.broker.publish(topic, text, retain=True)

    def _announce(self, base: str, kind: str, name: str) -> None:
        """Home Assistant's MQTT discovery: DISCOVERY/sensor/ID/config, retained."""
        camera = base.rsplit("/", 1)[-1]
        ident = "_".join(("vflow", base.replace("/", "_"), kind, name))
        config = {
            "name": f"{name} in view" if kind == "objects" else f"{name} occupancy",
            "unique_id": ident,
            "object_id": ident,
            "state_topic": f"{base}/{kind}/{name}",
            "state_class": "measurement",
            "availability_topic": self.broker.availability,
            "device": {
                "identifiers": ["vflow_" + base.replace("/", "_")],
                "name": f"{camera} camera",
                "manufacturer": "vflow",
            },
        }
        self.broker.publish(f"{self.discovery}/sensor/{ident}/config", json.dumps(config), True)


def _frame_state(packet: Packet, base: str, state: State, labels: set[str]) -> None:
    """objects/LABEL: how many of each class are in view; occupancy/ZONE: people in a
    zone; line/NAME: {"in", "out"}, the crossings of a line so far."""
    objects = packet.get("objects")
    if isinstance(objects, list):
        counts: dict[str, int] = {}
        for obj in objects:
            if isinstance(obj, dict) and obj.get("label") is not None:
                label = topic_part(obj["label"])
                counts[label] = counts.get(label, 0) + 1
        labels.update(counts)
        for label in labels:  # a class no longer in view goes back to 0
            state.set(base, "objects", label, str(counts.get(label, 0)))
    zones = packet.get("zones")
    if isinstance(zones, dict):
        for name, info in zones.items():
            if isinstance(info, dict) and isinstance(info.get("occupancy"), int):
                state.set(base, "occupancy", topic_part(name), str(info["occupancy"]))
    lines = packet.get("lines")
    if isinstance(lines, dict):
        for name, info in lines.items():
            if isinstance(info, dict):
                counts = {k: info[k] for k in ("in", "out") if isinstance(info.get(k), int)}
                state.set(base, "line", topic_part(name), counts)


def _topic(ctx: Any, param: Any, value: str) -> str:
    if not value.strip("/") or any(c in value for c in "+#\0") or not value.isprintable():
        raise click.BadParameter(f"{value!r}: a topic to publish under, without + or #")
    return value.strip("/")


@consumer(pixels=lambda options: options["snapshot"], stateful=True)
@click.argument("url", metavar="URL")
@click.option(
    "--topic",
    default="vflow",
    callback=_topic,
    show_default=True,
    help="The first level of every topic: TOPIC/CAMERA/...",
)
@click.option(
    "--camera",
    default=None,
    metavar="NAME",
    help="CAMERA in the topics. Default: the stream's source name (camera --name).",
)
@click.option(
    "--snapshot/--no-snapshot",
    default=False,
    show_default=True,
    help="Also publish the frame of each event as a JPEG to TOPIC/CAMERA/snapshot (retained).",
)
@quality_option(80, "JPEG quality of snapshots")
@click.option(
    "--queue",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Messages kept while the broker is away (and until it acknowledges them); "
    "beyond, new ones are dropped and counted.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Wait this long for the broker at the start, and at the end for it to "
    "acknowledge what is queued.",
)
@click.option(
    "--discovery",
    metavar="PREFIX",
    default=None,
    callback=lambda ctx, param, value: value if value is None else _topic(ctx, param, value),
    help="Announce the counts (objects, occupancy) to Home Assistant's MQTT discovery "
    "under PREFIX (its default is homeassistant), so they appear as sensors.",
)
@click.option("--client-id", default=None, help="MQTT client id. Default: vflow-PID.")
@click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    metavar="FILE",
    help="Trust brokers whose certificate this CA signed (implies TLS).",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    metavar="FILE",
    help="Client certificate for TLS (with --tls-key).",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    metavar="FILE",
    help="The client certificate's private key.",
)
def mqtt(
    packets: Iterator[Packet],
    url: str,
    topic: str,
    camera: str | None,
    snapshot: bool,
    quality: int,
    queue: int,
    timeout: float,
    discovery: str | None,
    client_id: str | None,
    tls_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Publish events, counts and occupancy to an MQTT broker (QoS 1), for home automation.

    URL is mqtt://[USER:PASSWORD@]HOST[:PORT] (1883) or mqtts://... (TLS, 8883); the
    environment's VFLOW_MQTT_USER and VFLOW_MQTT_PASSWORD keep a password out of `ps`.
    Topics, with CAMERA the stream's source name (or --camera):

    \b
      TOPIC/status                  online / offline (retained; offline is the will)
      TOPIC/CAMERA/EVENT            each event as JSON: cross, enter, exit (line, zone)
      TOPIC/CAMERA/KIND             other packets that are not frames: gap, summary
                                    (summary retained)
      TOPIC/CAMERA/objects/LABEL    how many LABEL (person, car...) are in view (retained)
      TOPIC/CAMERA/occupancy/ZONE   how many are in the zone (retained)
      TOPIC/CAMERA/line/NAME        {"in": N, "out": N}: crossings so far (retained)
      TOPIC/CAMERA/snapshot         JPEG of the last event's frame (--snapshot; retained)

    State topics are published when they change. While the broker is away, messages wait
    (up to --queue, then new ones are dropped and counted) and are sent when it is back;
    one line says it was lost, one that it is back. At the end, exit 1 if the broker did
    not acknowledge everything within --timeout.

    \b
      vflow camera rtsp://door/live --name door | vflow detect | vflow track \\
        | vflow zone porch 0,300 640,300 640,480 0,480 | vflow mqtt mqtt://hub
    """
    if tls_cert and not tls_key:
        raise click.UsageError("--tls-cert and --tls-key go together (a certificate and its key)")
    root = topic
    options = {
        "queue": queue,
        "client_id": client_id,
        "tls_ca": tls_ca,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
    }
    broker = Broker(url, options, f"{root}/status")
    broker.connect(timeout)
    state = State(broker, discovery)
    labels: set[str] = set()
    name = topic_part(camera) if camera else "camera"
    picture: Any = None
    events = 0
    try:
        for packet in packets:
            kind = packet.get("kind")
            base = f"{root}/{name}"
            if kind == "stream":
                if camera is None and packet.get("source"):
                    name = topic_part(packet["source"])
                continue
            if kind == "frame":
                _frame_state(packet, base, state, labels)
                if snapshot and packet.get("image") is not None:
                    picture = packet
                continue
            from vflow_cli.packets import to_json

            if kind == "event":
                events += 1
                what = topic_part(packet.get("event", "event"))
                broker.publish(f"{base}/{what}", to_json(packet))
                if snapshot and picture is not None:
                    _snapshot(broker, f"{base}/snapshot", picture, quality)
                    picture = None  # one snapshot per frame, however many events it has
            else:
                retain = kind == "summary"
                broker.publish(f"{base}/{topic_part(kind)}", to_json(packet), retain=retain)
    finally:
        left = broker.finish(timeout)
    if broker.dropped:
        log.warning("%d messages were dropped while the broker was away", broker.dropped)
    if left:
        raise StageError(
            f"the broker at {broker.shown} did not acknowledge {left} messages within {timeout:g} s"
        )
    log.info("%d events, %d messages acknowledged", events, broker.acked)


def _snapshot(broker: Broker, topic: str, packet: Packet, quality: int) -> None:
    from vflow_cli.images import jpeg, viewable_picture

    broker.publish(topic, bytes(jpeg(viewable_picture(packet), quality).data), retain=True)
