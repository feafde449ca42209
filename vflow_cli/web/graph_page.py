"""web.graph_page: the live page of a running graph: serve_graph(status, dot, ...).

    the graph runner ──status()──> Sampler (every `interval` s, one thread)
                                     │  rates from successive snapshots
                                     ▼
                                   view ──> Feed ──> /events (SSE) ──> the page's script
                                     └────────────> /status.json, /metrics

    /              the page: the graph drawn by Graphviz (`dot -Tsvg`, once, at start), each
                   node coloured by its state with its rates under it; tables of every
                   node and edge; the last stderr lines of each failed node
    /graph.svg     the drawing alone
    /status.json   the view below, as JSON
    /events        Server-Sent Events: `status`, the view, each time it is sampled
    /metrics       the same numbers in Prometheus text format

status() is the runner's; it returns a dict of this shape (None: not observable, e.g. the
packet counts of a node whose edges are direct pipes):

    {"graph": {"spec": str,                    the spec's path, as shown in the title
               "started": float,               Unix time the graph started
               "state": "running" | "stopping" | "done",
               "exit": int | None},            the graph's exit status once done
     "nodes": [{"name": str,                   as in the spec and in `dot` (the node's id)
                "label": str,                  its command, for people (secrets are masked here:
                                               vflow_cli.redact)
                "kind": "producer" | "processor" | "consumer",
                "workers": int,
                "state": "running" | "done" | "failed" | "stopped",
                "status": str | None,          "exit status 1", "killed by SIGKILL"
                "packets_in": int | None,      counters since the start, never reset
                "packets_out": int | None,
                "stderr": [str, ...]}],        its last stderr lines (shown when failed)
     "edges": [{"from": str, "to": str,        node names
                "transport": "pipe" | "queue",
                "size": int | None,            the queue's capacity
                "leaky": str | None,           "no" (blocks), "old", "new" (drops)
                "fill": int | None,            packets in the queue now
                "received": int | None,        counters: into the queue,
                "delivered": int | None,       out of it to the reader,
                "dropped": int | None}]}       dropped by a leaky queue

It is called from one thread of this module only, every `interval` seconds; it should
return at once (copy the counters, no I/O). If it raises, the error is logged once and the
previous view stays. The view that the page, /status.json and /events get is the same
dict with numbers added: "time" and "uptime" (seconds), and per node "rate_in" and
"rate_out", per edge "rate_received", "rate_delivered" and "rate_dropped" (packets a
second over the last `window` seconds; None until two samples exist, or where the
counter is None).
"""

from __future__ import annotations

import copy
import html
import logging
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from vflow_cli.redact import redact_line
from vflow_cli.web import metrics, pages
from vflow_cli.web.events import Feed, stream_events, to_json
from vflow_cli.web.server import Request, WebServer

Status = Callable[[], dict[str, Any]]
NODE_STATES = ("running", "done", "failed", "stopped")
GRAPH_STATES = ("running", "stopping", "done")
NODE_RATES = (("packets_in", "rate_in"), ("packets_out", "rate_out"))
EDGE_RATES = (
    ("received", "rate_received"),
    ("delivered", "rate_delivered"),
    ("dropped", "rate_dropped"),
)


def render_svg(dot: str, timeout: float = 20.0) -> str:
    """Graphviz's drawing of `dot` as inline SVG markup, or a note saying why there is
    none (the tables then carry every number)."""
    program = shutil.which("dot")
    if program is None:
        return _note("Graphviz's dot is not installed (apt install graphviz): no drawing.")
    try:
        result = subprocess.run(
            [program, "-Tsvg"], input=dot.encode(), capture_output=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return _note(f"dot could not draw the graph: {exc}")
    svg = result.stdout.decode("utf-8", "replace")
    start = svg.find("<svg")
    if result.returncode or start < 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        return _note(f"dot could not draw the graph: {reason[-1] if reason else 'no output'}")
    return svg[start:]  # without the XML prolog and doctype, to sit inside the page


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


class Rates:
    """Packets a second from counters sampled over time: (newest - oldest in the window)
    / the time between them. A counter that went down was restarted: its history goes."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._samples: dict[Any, deque[tuple[float, int]]] = {}

    def rate(self, key: Any, now: float, value: int | None) -> float | None:
        if value is None:
            self._samples.pop(key, None)
            return None
        samples = self._samples.setdefault(key, deque())
        if samples and value < samples[-1][1]:
            samples.clear()
        samples.append((now, value))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        if len(samples) < 2:
            return None
        (t0, v0), (t1, v1) = samples[0], samples[-1]
        return (v1 - v0) / (t1 - t0) if t1 > t0 else None

    def forget(self, keep: set[Any]) -> None:
        for key in set(self._samples) - keep:
            del self._samples[key]


def view_of(snapshot: dict[str, Any], rates: Rates, now: float, wall: float) -> dict[str, Any]:
    """The runner's snapshot with time, uptime and rates added (a copy)."""
    view = copy.deepcopy(snapshot)
    graph = view.setdefault("graph", {})
    started = graph.get("started")
    view["time"] = wall
    view["uptime"] = max(0.0, wall - started) if isinstance(started, (int, float)) else 0.0
    keys: set[Any] = set()
    key: tuple[Any, ...]
    for node in view.setdefault("nodes", []):
        # whoever reads the page may not read the secrets a command was given
        if isinstance(node.get("label"), str):
            node["label"] = redact_line(node["label"])
        if isinstance(node.get("stderr"), list):
            node["stderr"] = [redact_line(str(line)) for line in node["stderr"]]
        for counter, name in NODE_RATES:
            key = ("node", node.get("name"), counter)
            keys.add(key)
            node[name] = rates.rate(key, now, node.get(counter))
            if node.get("state") != "running" and node[name] is not None:
                node[name] = 0.0  # a node that ended moves nothing, whatever the window says
    for edge in view.setdefault("edges", []):
        for counter, name in EDGE_RATES:
            key = ("edge", edge.get("from"), edge.get("to"), counter)
            keys.add(key)
            edge[name] = rates.rate(key, now, edge.get(counter))
    rates.forget(keys)
    return view


def families(view: dict[str, Any]) -> list[metrics.Family]:
    """The graph's numbers for Prometheus: counters as counters (Prometheus takes its own
    rates of them), states as one gauge per state (1 for the current one), and this page's
    own rates as gauges for whoever reads the text directly."""
    counter, gauge = metrics.counter, metrics.gauge
    graph = view.get("graph", {})
    spec = str(graph.get("spec", ""))
    info = gauge("vflow_graph_info", "The graph this page shows (always 1).").add(1, spec=spec)
    state = gauge("vflow_graph_state", "1 for the graph's current state.")
    for name in GRAPH_STATES:
        state.add(int(graph.get("state") == name), state=name)
    started = gauge("vflow_graph_start_time_seconds", "When the graph started (Unix time).")
    started.add(graph.get("started"))
    exit_code = gauge("vflow_graph_exit_code", "The graph's exit status, once it is done.")
    exit_code.add(graph.get("exit"))
    node_state = gauge("vflow_node_state", "1 for each node's current state.")
    workers = gauge("vflow_node_workers", "Processes the node runs as.")
    p_in = counter("vflow_node_packets_in_total", "Packets the node has read.")
    p_out = counter("vflow_node_packets_out_total", "Packets the node has written.")
    r_in = gauge("vflow_node_packets_in_per_second", "Packets read a second, lately.")
    r_out = gauge("vflow_node_packets_out_per_second", "Packets written a second, lately.")
    busy = gauge("vflow_stage_busy_ratio", "Share of its node's run a stage was busy.")
    waiting = gauge("vflow_node_waiting_ratio", "Share of its run a node waited (input, output).")
    for node in view.get("nodes", []):
        shares = node.get("busy")
        if isinstance(shares, dict):
            for stage, share in shares.get("stages", []):
                busy.add(share, node=str(node.get("name")), stage=str(stage))
            for side in ("input", "output"):
                waiting.add(shares.get(side), node=str(node.get("name")), on=side)
        name = str(node.get("name"))
        for s in NODE_STATES:
            node_state.add(int(node.get("state") == s), node=name, state=s)
        workers.add(node.get("workers"), node=name)
        p_in.add(node.get("packets_in"), node=name)
        p_out.add(node.get("packets_out"), node=name)
        r_in.add(node.get("rate_in"), node=name)
        r_out.add(node.get("rate_out"), node=name)
    fill = gauge("vflow_edge_queue_fill", "Packets waiting in the edge's queue.")
    size = gauge("vflow_edge_queue_size", "Capacity of the edge's queue.")
    received = counter("vflow_edge_received_total", "Packets into the edge.")
    delivered = counter("vflow_edge_delivered_total", "Packets out of the edge to its reader.")
    dropped = counter("vflow_edge_dropped_total", "Packets a leaky queue dropped.")
    r_recv = gauge("vflow_edge_received_per_second", "Packets into the edge a second, lately.")
    r_drop = gauge("vflow_edge_dropped_per_second", "Packets dropped a second, lately.")
    for edge in view.get("edges", []):
        labels = {"from": str(edge.get("from")), "to": str(edge.get("to"))}
        fill.add(edge.get("fill"), **labels)
        size.add(edge.get("size"), **labels)
        received.add(edge.get("received"), **labels)
        delivered.add(edge.get("delivered"), **labels)
        dropped.add(edge.get("dropped"), **labels)
        r_recv.add(edge.get("rate_received"), **labels)
        r_drop.add(edge.get("rate_dropped"), **labels)
    return [
        info,
        state,
        started,
        exit_code,
        node_state,
        workers,
        p_in,
        p_out,
        r_in,
        r_out,
        busy,
        waiting,
        fill,
        size,
        received,
        delivered,
        dropped,
        r_recv,
        r_drop,
    ]


class GraphPage:
    """A running graph page; `close()` stops it. `url` is where it is."""

    def __init__(
        self,
        status: Status,
        dot: str,
        *,
        bind: str,
        port: int,
        token: str | None,
        no_token: bool,
        allow_hosts: tuple[str, ...],
        interval: float,
        window: float,
        max_clients: int,
        timeout: float,
        log: logging.Logger,
    ) -> None:
        self._status = status
        self.interval = interval
        self.log = log
        self._rates = Rates(window)
        self._lock = threading.Lock()  # one sample at a time (the thread, or refresh())
        self._failed: str | None = None
        self.view: dict[str, Any] | None = None
        self.feed = Feed(to_json)
        self.svg = render_svg(dot)
        routes = {
            "/": self._page,
            "/graph.svg": self._drawing,
            "/status.json": self._json,
            "/events": self._events,
            "/metrics": self._metrics,
            **{path: self._asset for path in pages.ASSETS},
        }
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
        self.refresh()
        self._thread = threading.Thread(target=self._sample_loop, name="graph-page", daemon=True)
        self.server.start()
        self._thread.start()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def refresh(self) -> None:
        """Sample status() now (the runner may call this once more after the graph ended,
        so that the page shows the final states)."""
        with self._lock:
            try:
                snapshot = self._status()
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                if message != self._failed:
                    self.log.warning("graph page: the status could not be read: %s", message)
                    self._failed = message
                return
            self._failed = None
            self.view = view_of(snapshot, self._rates, time.monotonic(), time.time())
            self.feed.publish(self.view)

    def close(self) -> None:
        self.server.close()
        self.feed.close()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def __enter__(self) -> GraphPage:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _sample_loop(self) -> None:
        while not self.server.closing.wait(self.interval):
            self.refresh()

    # -- routes ----------------------------------------------------------------------------

    def _spec(self) -> str:
        return str((self.view or {}).get("graph", {}).get("spec", "graph"))

    def _page(self, request: Request) -> None:
        request.reply(pages.graph_page(self._spec(), self.svg), "text/html; charset=utf-8")

    def _drawing(self, request: Request) -> None:
        if not self.svg.startswith("<svg"):
            body = b"404 no drawing: Graphviz is missing or failed\n"
            request.reply(body, "text/plain; charset=utf-8", status=404)
            return
        request.reply(self.svg.encode(), "image/svg+xml")

    def _asset(self, request: Request) -> None:
        content_type, body = pages.asset(request.path)
        request.reply(body, content_type)

    def _json(self, request: Request) -> None:
        latest = self.feed.latest()
        if latest is None:
            request.reply(b'{"error": "no status yet"}\n', "application/json", status=503)
            return
        request.reply(latest[1] + b"\n", "application/json")

    def _events(self, request: Request) -> None:
        stream_events(request, {"status": self.feed}, rate=max(1.0, 1.0 / self.interval))

    def _metrics(self, request: Request) -> None:
        view = self.view or {}
        body = metrics.render(
            [
                *families(view),
                *self.server.families({"spec": self._spec()}),
                *metrics.process_families(),
            ]
        )
        request.reply(body, metrics.CONTENT_TYPE)


def serve_graph(
    status: Status,
    dot: str,
    *,
    bind: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    no_token: bool = False,
    allow_hosts: tuple[str, ...] = (),
    interval: float = 1.0,
    window: float = 3.0,
    max_clients: int = 32,
    timeout: float = 10.0,
    log: logging.Logger | None = None,
) -> GraphPage:
    """Serve the live page of a running graph; returns at once (the server has threads of
    its own). `status` is the runner's snapshot function (the module docstring gives its
    shape), `dot` the graph as Graphviz text (graph.dot.to_dot). port=0 picks a free port:
    the page is at `.url`. With a token every request needs it (web.auth). Close it with
    `.close()`, or use it as a context manager. web.server.BindError (a StageError, one
    line) when it cannot listen."""
    return GraphPage(
        status,
        dot,
        bind=bind,
        port=port,
        token=token,
        no_token=no_token,
        allow_hosts=allow_hosts,
        interval=interval,
        window=window,
        max_clients=max_clients,
        timeout=timeout,
        log=log or logging.getLogger("vflow"),
    )
