"""web.stream: StreamServer, what `vflow serve` serves about the one stream it reads.

    stage ──packet()──> latest metadata (Feed, and the newest of each kind)
                   └──> frames: counted; read and handed to the Broadcaster only while
                        someone watches or waits for /frame.jpg (web.mjpeg)

    /              the page: the live picture (no script needed) and the packet's fields
    /stream.mjpg   the live picture: multipart/x-mixed-replace JPEG (web.mjpeg)
    /frame.jpg     the newest frame as one JPEG (the next one if none is encoded yet)
    /meta          the newest packet's metadata as JSON (?kind=K: the newest of kind K)
    /events        Server-Sent Events: `meta` (the newest packet, at most 10 a second)
                   and `status` (once a second: frames/s, frames, packets, viewers)
    /metrics       Prometheus text: frames, encodes, viewers, HTTP, the process

One server serves one stream: a pipeline has one stream at each point, and a graph runs
each stage as a process of its own, so each `serve` node listens on its own port. The
page's links are relative, so several of them can sit behind one reverse proxy
(/cam1/ -> :8081, /cam2/ -> :8082).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from vflow_cli.framing import Packet, Pending
from vflow_cli.packets import jsonable
from vflow_cli.web import metrics, pages
from vflow_cli.web.events import Feed, stream_events, to_json
from vflow_cli.web.mjpeg import BOUNDARY, CONTENT_TYPE, Broadcaster, Raw
from vflow_cli.web.server import ClientGone, Request, WebServer

EVENT_RATE = 10.0  # `meta` events a second, at most, per client: more than eyes can read
KINDS_KEPT = 32  # the newest packet of this many kinds is kept for /meta?kind=


class StreamServer:
    """The routes of `vflow serve`, fed one packet at a time by the stage."""

    def __init__(
        self,
        *,
        name: str | None = None,
        bind: str = "127.0.0.1",
        port: int = 8080,
        token: str | None = None,
        no_token: bool = False,
        allow_hosts: tuple[str, ...] = (),
        quality: int = 80,
        max_fps: float | None = None,
        max_clients: int = 64,
        timeout: float = 10.0,
        keep_last: bool = False,
        log: Any = None,
    ) -> None:
        self.name = name
        self.timeout = timeout
        self.keep_last = keep_last
        self.broadcaster = Broadcaster(quality=quality, max_fps=max_fps, log=log)
        self.broadcaster.keep_last = keep_last
        self.meta = Feed(to_json)
        self.status = Feed(to_json)
        self.by_kind: dict[Any, Packet] = {}
        self.packets = 0
        self.ended = False
        self.started = time.time()
        self.last_frame_wall: float | None = None
        self.streams = 0  # viewers' streams, now
        self.event_clients = 0
        routes = {
            "/": self._page,
            "/stream.mjpg": self._stream,
            "/frame.jpg": self._frame,
            "/meta": self._meta,
            "/events": self._events,
            "/metrics": self._metrics,
            **{path: self._asset for path in pages.ASSETS},
        }
        try:
            self.server = WebServer(
                routes,
                bind=bind,
                port=port,
                token=token,
                no_token=no_token,
                allow_hosts=allow_hosts,
                max_clients=max_clients,
                timeout=timeout,
                log=log,
            )
        except BaseException:
            self.broadcaster.close()
            raise
        self.log = self.server.log
        self._rates: deque[tuple[float, int]] = deque(maxlen=4)
        self._status_lock = threading.Lock()  # the ticker, the stage and viewers publish
        self._ticker = threading.Thread(target=self._tick, name="serve-status", daemon=True)
        self.server.start()
        self._ticker.start()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def title(self) -> str:
        if self.name:
            return self.name
        info = self.by_kind.get("stream")
        source = info.get("source") if info else None
        return str(source) if source else "vflow"

    # -- the stage's side ------------------------------------------------------------------

    def packet(self, packet: Packet) -> None:
        """One packet of the stream, as it passes. Cheap: no copy of pixels, no encoding,
        unless someone watches."""
        self.packets += 1
        image = packet.get("image")
        meta = packet if image is None else {**packet, "image": jsonable(image)}
        kind = packet.get("kind")
        by_kind = self.by_kind
        if len(by_kind) >= KINDS_KEPT and kind not in by_kind:
            by_kind.pop(next(iter(by_kind)))
        by_kind[kind] = meta
        self.meta.publish(meta)
        if image is None:
            return
        b = self.broadcaster
        b.seen += 1
        wall = packet.get("wall")
        self.last_frame_wall = wall if isinstance(wall, (int, float)) else time.time()
        if self.keep_last or b.wanted():
            picture = image.load() if type(image) is Pending else image
            colorspace = packet.get("colorspace")
            b.offer(
                Raw(
                    b.seen,
                    picture,
                    colorspace if isinstance(colorspace, str) else None,
                    packet.get("seq"),
                    wall,
                )
            )

    def end(self) -> None:
        """The input has ended."""
        self.ended = True
        self.broadcaster.end()
        self._publish_status()

    def close(self) -> None:
        self.server.close()
        self.broadcaster.close()
        self.meta.close()
        self.status.close()

    # -- status, once a second ---------------------------------------------------------------

    def _tick(self) -> None:
        while not self.server.closing.wait(1.0):
            self._publish_status()

    def _fps(self) -> float:
        now = time.monotonic()
        rates = self._rates
        rates.append((now, self.broadcaster.seen))
        if len(rates) < 2 or now - rates[0][0] <= 0:
            return 0.0
        return (rates[-1][1] - rates[0][1]) / (rates[-1][0] - rates[0][0])

    def _publish_status(self, *, now: bool = True) -> None:
        """The status, once a second, and at once when a viewer comes or goes (the page
        counts itself among them)."""
        b = self.broadcaster
        with self._status_lock:
            fps = self._fps() if now else (self.status.value or {}).get("fps", 0.0)
            self.status.publish(
                {
                    "name": self.title,
                    "fps": round(fps, 2),
                    "frames": b.seen,
                    "packets": self.packets,
                    "viewers": b.viewers,
                    "encoded": b.encoded + b.passed,
                    "ended": self.ended,
                }
            )

    # -- routes ----------------------------------------------------------------------------

    def _page(self, request: Request) -> None:
        request.reply(pages.serve_page(self.title), "text/html; charset=utf-8")

    def _asset(self, request: Request) -> None:
        content_type, body = pages.asset(request.path)
        request.reply(body, content_type)

    def _stream(self, request: Request) -> None:
        b = self.broadcaster
        if not request.start(CONTENT_TYPE, headers=(("Pragma", "no-cache"),)):
            return
        last: Any = None
        with _Counted(self, b):
            # a new viewer starts at the newest frame, not at one encoded for a viewer
            # that left long ago
            after = max(b.seen, 1) - 1
            try:
                request.write(b"--" + BOUNDARY + b"\r\n")
                shown = False  # the last frame, once the input has ended
                while not request.closing.is_set():
                    jpeg = b.next(last.number if last else after, 1.0)
                    if jpeg is None:
                        if b.closed or (self.ended and not self.keep_last):
                            return
                        if request.gone():  # no frame to send finds it out: look
                            return
                        if not shown and self.ended and last is not None and last.number >= b.seen:
                            # a browser shows a part only once the next one begins, and
                            # no frame comes any more: the next part's headers (the same
                            # picture's, never sent) make it show this one (--wait)
                            request.write(last.part())
                            shown = True
                        continue
                    if last is not None:
                        b.skipped += jpeg.index - last.index - 1
                    request.write(jpeg.part(), jpeg.data, b"\r\n--" + BOUNDARY + b"\r\n")
                    b.sent += 1
                    last = jpeg
            except ClientGone as gone:
                if gone.stalled:
                    b.dropped_stalled += 1
                    self.log.info(
                        "dropped viewer %s: it took no frame for %g s", request.client, self.timeout
                    )
                raise

    def _frame(self, request: Request) -> None:
        jpeg = self.broadcaster.snapshot(self.timeout)
        if jpeg is None:
            why = "the input has ended" if self.ended else f"within {self.timeout:g} s"
            request.reply(
                f"503 no frame {why}\n".encode(),
                "text/plain; charset=utf-8",
                status=503,
                headers=(("Retry-After", "1"),),
            )
            return
        headers = [("Content-Disposition", 'inline; filename="frame.jpg"')]
        if isinstance(jpeg.seq, int):
            headers.append(("X-Frame-Seq", str(jpeg.seq)))
        if isinstance(jpeg.wall, (int, float)):
            headers.append(("X-Timestamp", f"{jpeg.wall:.3f}"))
        request.reply(jpeg.data, "image/jpeg", headers=tuple(headers))

    def _meta(self, request: Request) -> None:
        kind = request.query.get("kind")
        if kind is None:
            packet = self.meta.value
            if packet is None:
                self._json_error(request, 503, "no packet has arrived yet")
                return
        elif kind not in self.by_kind:
            self._json_error(request, 404, f"no packet of kind {kind!r} has arrived")
            return
        else:
            packet = self.by_kind[kind]
        request.reply(to_json(packet) + b"\n", "application/json")

    @staticmethod
    def _json_error(request: Request, status: int, message: str) -> None:
        request.reply(to_json({"error": message}) + b"\n", "application/json", status=status)

    def _events(self, request: Request) -> None:
        self.event_clients += 1
        try:
            stream_events(request, {"meta": self.meta, "status": self.status}, rate=EVENT_RATE)
        finally:
            self.event_clients -= 1

    def _metrics(self, request: Request) -> None:
        request.reply(metrics.render(self.families()), metrics.CONTENT_TYPE)

    def families(self) -> list[metrics.Family]:
        b = self.broadcaster
        labels = {"stream": self.title}
        counter, gauge = metrics.counter, metrics.gauge
        return [
            counter("vflow_serve_packets_total", "Packets that arrived on the input.").add(
                self.packets, **labels
            ),
            counter("vflow_serve_frames_total", "Frames that arrived on the input.").add(
                b.seen, **labels
            ),
            counter(
                "vflow_serve_frames_encoded_total",
                "Frames encoded to JPEG: at most one encode per frame, however many viewers.",
            ).add(b.encoded, **labels),
            counter(
                "vflow_serve_frames_passed_total",
                "Frames that arrived as JPEG already and were sent without encoding.",
            ).add(b.passed, **labels),
            counter("vflow_serve_encode_seconds_total", "Time spent encoding JPEG.").add(
                b.encode_seconds, **labels
            ),
            gauge("vflow_serve_jpeg_bytes", "Size of the newest JPEG.").add(
                len(b.latest.data) if b.latest else None, **labels
            ),
            gauge("vflow_serve_viewers", "Clients watching the live picture now.").add(
                b.viewers, **labels
            ),
            gauge("vflow_serve_event_clients", "Clients reading the event stream now.").add(
                self.event_clients, **labels
            ),
            counter(
                "vflow_serve_frames_sent_total", "Frames sent to viewers, all viewers together."
            ).add(b.sent, **labels),
            counter(
                "vflow_serve_frames_skipped_total",
                "Frames a viewer missed because it was still taking an earlier one.",
            ).add(b.skipped, **labels),
            counter(
                "vflow_serve_viewers_dropped_total",
                "Viewers dropped because they took no frame within --timeout.",
            ).add(b.dropped_stalled, **labels),
            gauge(
                "vflow_serve_last_frame_timestamp_seconds",
                "Wall time of the newest frame (its 'wall' field, else when it arrived).",
            ).add(self.last_frame_wall, **labels),
            gauge("vflow_serve_input_ended", "1 once the input has ended.").add(
                int(self.ended), **labels
            ),
            *self.server.families(labels),
            *metrics.process_families(),
        ]


class _Counted:
    """A viewer's stream: counted by the broadcaster, and the status says so at once."""

    def __init__(self, server: StreamServer, broadcaster: Broadcaster) -> None:
        self.server = server
        self.watch = broadcaster.watching()

    def __enter__(self) -> None:
        self.watch.__enter__()
        self.server._publish_status(now=False)

    def __exit__(self, *exc: Any) -> None:
        self.watch.__exit__(*exc)
        self.server._publish_status(now=False)
