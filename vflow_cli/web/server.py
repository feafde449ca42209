"""web.server: the HTTP core of every vflow page: routes, limits, the token, logging.

    client ──TCP──> Listener: a slot (web.connections): over max_clients connections, a
                      │  503 at once; connections not yet let in hold at most half
                      └─ one thread per connection (Handler): the whole request head
                         within `timeout` seconds, a socket timeout on every send: a
                         client that stops reading a stream is dropped after `timeout`
                           request line <= 8 KiB, whole head <= 32 KiB, GET and HEAD only,
                           no body; at most 100 requests on one kept-alive connection
                           ─> Host check (web.hosts: this machine's names, --allow-host)
                           ─> token (web.auth): 401 and a log line
                           ─> the route of that exact path, else 404

Only the server's own paths exist: nothing is read from disk on a client's behalf.
ThreadingHTTPServer from the standard library: a thread per client is what a streaming
response needs anyway (it blocks in send() until the client takes the bytes), and the
streams here are few and long; an event loop would add a dependency or a rewrite of
http.server for no gain at tens of clients.

The listener, the per-connection handler and the request they share are one unit (what
a client may send and how it is answered); who gets a slot and how long a head may take
are web.connections; what the pages serve is elsewhere (stream.py, graph_page.py).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import select
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from vflow_cli.errors import StageError
from vflow_cli.redact import for_log
from vflow_cli.web import metrics
from vflow_cli.web.auth import Auth
from vflow_cli.web.connections import HeadReader, Slots, refuse_busy
from vflow_cli.web.hosts import Hosts, check_exposure

MAX_LINE = 8 << 10  # the request line
MAX_REQUESTS = 100  # on one kept-alive connection
MAX_QUERY = 16  # fields in a query string

# every answer carries these: nothing is cached, sniffed, framed by others or referred
HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'"
)


class BindError(StageError):
    """The server could not listen where it was asked to."""


class ClientGone(Exception):
    """The client closed the connection, reset it, or stopped reading for too long."""

    def __init__(self, reason: str, *, stalled: bool = False) -> None:
        super().__init__(reason)
        self.stalled = stalled  # it stopped reading: its socket stayed full for `timeout`


class Request:
    """What a route sees of one request, and how it answers."""

    def __init__(self, handler: Handler, path: str, query: dict[str, str]) -> None:
        self._handler = handler
        self.path = path
        self.query = query
        self.head = handler.command == "HEAD"
        self.client = handler.client

    @property
    def closing(self) -> threading.Event:
        """Set when the server shuts down: a streaming route ends then."""
        return self._handler.server.app.closing

    def reply(
        self,
        body: bytes,
        content_type: str,
        *,
        status: int = 200,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._handler.reply(status, body, content_type, headers)

    def start(self, content_type: str, headers: tuple[tuple[str, str], ...] = ()) -> bool:
        """Begin a response of unknown length (a stream): it ends when the connection
        closes. False for HEAD (the headers are all there is)."""
        handler = self._handler
        handler.close_connection = True
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Connection", "close")
        handler.send_header("X-Accel-Buffering", "no")  # nginx: do not hold the stream back
        for name, value in (*HEADERS, *headers):
            handler.send_header(name, value)
        handler.end_headers()
        handler.stats_code(200)
        if self.head:
            return False
        handler.wfile.flush()
        return True

    def gone(self) -> bool:
        """Has the client closed its side? (For a stream with nothing to send: a closed
        connection is otherwise found only by the next send.)"""
        sock = self._handler.connection
        try:
            if not select.select([sock], [], [], 0)[0]:
                return False
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def write(self, *pieces: bytes | memoryview) -> None:
        """Send bytes of a started stream; ClientGone when the client has left or has not
        taken them within the server's timeout."""
        handler = self._handler
        try:
            for piece in pieces:
                handler.wfile.write(piece)
        except TimeoutError:
            handler.server.app.timeouts += 1
            raise ClientGone("it took nothing for the whole timeout", stalled=True) from None
        except (OSError, ValueError) as exc:
            raise ClientGone(str(exc) or type(exc).__name__) from None
        handler.server.app.count_sent(sum(len(p) for p in pieces))


Route = Callable[[Request], None]


class WebServer:
    """An HTTP server on its own threads over a table of routes (exact paths)."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        *,
        bind: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        max_clients: int = 64,
        timeout: float = 10.0,
        log: logging.Logger | None = None,
        page_paths: frozenset[str] = frozenset({"/"}),
        no_token: bool = False,
        allow_hosts: Iterable[str] = (),
    ) -> None:
        check_exposure(bind, token, no_token)
        self.routes = routes
        self.page_paths = page_paths  # pages: a ?token= there becomes a cookie
        self.max_clients = max_clients
        self.timeout = timeout
        self.log = log or logging.getLogger("vflow")
        self.closing = threading.Event()
        self.hosts = Hosts(bind, allow_hosts)
        self._lock = threading.Lock()
        self.slots = Slots(max_clients)
        self.requests: Counter[tuple[str, int]] = Counter()
        self.bytes_sent = 0
        self.timeouts = 0  # clients dropped for not sending or not reading
        self._refusals_logged = 0.0
        listener = _Listener6 if ":" in bind else _Listener
        try:
            self._httpd = listener((bind, port), Handler)
        except OSError as exc:
            hint = (
                "another program (another vflow serve?) listens there; choose another --port"
                if exc.errno == 98
                else "check --bind (an address of this machine) and --port"
            )
            raise BindError(
                f"cannot listen on {bind}:{port}: {exc.strerror or exc}; {hint}"
            ) from None
        self._httpd.app = self
        self.bind = bind
        self.port = self._httpd.server_address[1]
        self.auth = Auth(token, self.port, self.log)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where the server listens, as the kernel says (0.0.0.0: every address)."""
        host = str(self._httpd.server_address[0])
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def start(self) -> WebServer:
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.name = f"http:{self.port}"
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        """serve_forever, but woken at once by close() (it would poll for that instead:
        a pipeline's end, or a graph's, would wait for the next poll)."""
        httpd = self._httpd
        httpd.timeout = 0  # handle_request() after select said a connection waits
        with selectors.DefaultSelector() as selector:
            selector.register(httpd, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.closing.is_set():
                for key, _ in selector.select():
                    if key.fileobj is httpd and not self.closing.is_set():
                        httpd.handle_request()

    def close(self) -> None:
        """Stop accepting, end every stream, close every connection."""
        if self.closing.is_set():
            return
        self.closing.set()
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join(timeout=5)
            os.close(self._wake_r)
            os.close(self._wake_w)
        self._httpd.server_close()
        clients = self.slots.all()
        for sock in clients:  # a thread blocked in send() or recv() wakes with an error
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- bookkeeping (from the connection threads) ----------------------------------------

    def admit(self, sock: socket.socket) -> bool:
        if not self.closing.is_set() and self.slots.admit(sock):
            return True
        now = time.monotonic()
        with self._lock:
            report = now - self._refusals_logged >= 60
            if report:
                self._refusals_logged = now
        if report:
            self.log.warning(
                "%d clients already connected (--max-clients); refusing more "
                "(503; reported once a minute)",
                self.max_clients,
            )
        return False

    def leave(self, sock: socket.socket) -> None:
        self.slots.leave(sock)

    @property
    def clients(self) -> int:
        return len(self.slots)

    @property
    def refused(self) -> int:
        return self.slots.refused

    def count_sent(self, n: int) -> None:
        self.bytes_sent += n  # a race may lose a count under load; a gauge of traffic

    def families(self, labels: dict[str, str]) -> list[metrics.Family]:
        """The server's own numbers for /metrics."""
        requests = metrics.counter(
            "vflow_http_requests_total", "HTTP requests answered, by path and status code."
        )
        for (path, code), n in sorted(self.requests.items()):
            requests.add(n, **labels, path=path, code=str(code))
        return [
            requests,
            metrics.gauge("vflow_http_clients", "Open client connections.").add(
                self.clients, **labels
            ),
            metrics.counter(
                "vflow_http_refused_total",
                "Connections refused with 503: more than --max-clients at once.",
            ).add(self.refused, **labels),
            metrics.counter(
                "vflow_http_evicted_total",
                "Connections closed before their request was let in, to make room: at most "
                "half the slots wait for a request head or a token.",
            ).add(self.slots.evicted, **labels),
            metrics.counter(
                "vflow_http_unauthorized_total", "Requests refused with 401: no or a wrong token."
            ).add(self.auth.refused, **labels),
            metrics.counter(
                "vflow_http_timeouts_total",
                "Clients dropped for sending nothing or not reading within --timeout.",
            ).add(self.timeouts, **labels),
            metrics.counter("vflow_http_sent_bytes_total", "Bytes sent to clients.").add(
                self.bytes_sent, **labels
            ),
        ]


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # streams end when close() shuts their sockets, not by joining
    request_queue_size = 64
    app: WebServer

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.app.admit(request):
            refuse_busy(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.app.leave(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # the default prints a traceback on stderr; a bug here is one line at -vv
        import sys

        exc = sys.exc_info()[1]
        reason = for_log(str(exc))
        self.app.log.debug("http: %s: %s: %s", client_address, type(exc).__name__, reason)


class _Listener6(_Listener):
    address_family = socket.AF_INET6


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vflow"
    sys_version = ""
    server: _Listener
    error_message_format = "%(code)d %(message)s\n"
    error_content_type = "text/plain; charset=utf-8"

    def version_string(self) -> str:
        return "vflow"

    def setup(self) -> None:
        self.timeout = self.server.app.timeout  # type: ignore[misc]  # setup() applies it
        super().setup()
        self.rfile.close()  # the buffered file setup() made: a head has a deadline instead
        self.rfile = HeadReader(self.connection, self.timeout)  # type: ignore[assignment]
        self.handled = 0
        self.client = f"{self.client_address[0]}:{self.client_address[1]}"
        self._code_counted = False

    def handle_one_request(self) -> None:
        self.rfile.start()  # type: ignore[attr-defined]
        self._code_counted = False
        self.command, self.request_version, self.requestline = "", "", ""
        try:
            self.raw_requestline = self.rfile.readline(MAX_LINE + 1)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > MAX_LINE:
                self.close_connection = True
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.parse_request():
                self.close_connection = True
                return
            self.rfile.done()  # type: ignore[attr-defined]
            self.handled += 1
            if self.handled >= MAX_REQUESTS:
                self.close_connection = True
            self._dispatch()
            self.wfile.flush()
        except http.client.LineTooLong:  # the request line itself ate the head's budget
            self.close_connection = True
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        except TimeoutError:
            self.close_connection = True
            self.server.app.timeouts += 1
            self.log_error("no whole request head within %s s", self.timeout)
        except (ConnectionError, ClientGone, ValueError) as exc:
            self.close_connection = True
            self.log_error("client left: %s", exc)

    def handle_expect_100(self) -> bool:
        return True  # no body is ever read: answer (413) without inviting one

    def _dispatch(self) -> None:
        app = self.server.app
        if self.command not in ("GET", "HEAD"):
            self.close_connection = True
            self.reply(405, b"405 only GET and HEAD\n", headers=(("Allow", "GET, HEAD"),))
            return
        length = self.headers.get("Content-Length", "0").strip()
        if length not in ("", "0") or "Transfer-Encoding" in self.headers:
            self.close_connection = True  # the body is not read: the connection cannot go on
            self.reply(413, b"413 requests here have no body\n")
            return
        if not self.path.startswith("/"):
            self.close_connection = True
            self.reply(400, b"400 the target must be a path\n")
            return
        if not app.hosts.allows(self.headers.get("Host", "")):
            # DNS rebinding: a web page elsewhere must not read this server as its own
            self.close_connection = True
            self.reply(403, b"403 this server does not answer to that name (see --allow-host)\n")
            return
        target = urlsplit(self.path)
        try:
            query = dict(parse_qsl(target.query, max_num_fields=MAX_QUERY))
        except ValueError:
            self.reply(400, b"400 too many query fields\n")
            return
        path = target.path
        how = app.auth.check(self.headers, query)
        if how is None:
            app.auth.refuse(self.client, self.command, path, self.headers, query)
            self.reply(
                401,
                b"401 this server needs its token (Authorization: Bearer TOKEN, or ?token=)\n",
                headers=(("WWW-Authenticate", 'Basic realm="vflow", charset="UTF-8"'),),
            )
            return
        app.slots.trust(self.request)
        route = app.routes.get(path)
        if route is None:
            self.reply(404, b"404 not found\n")
            return
        if how == "query" and path in app.page_paths:
            # the token leaves the address bar (and the history) for a session cookie
            self.reply(
                303,
                b"303 see ./\n",
                headers=(("Location", "./"), ("Set-Cookie", app.auth.set_cookie())),
            )
            return
        route(Request(self, path, query))

    def reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        for name, value in (*HEADERS, *headers):
            self.send_header(name, value)
        if content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", PAGE_POLICY)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
            self.server.app.count_sent(len(body))
        self.stats_code(status)

    def stats_code(self, status: int) -> None:
        if self._code_counted:
            return
        self._code_counted = True
        app = self.server.app
        path = urlsplit(self.path).path if self.command else ""
        key = path if path in app.routes else "other"
        app.requests[(key, int(status))] += 1

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # parse_request's errors, answered like every other reply
        status = HTTPStatus(code)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.reply(code, f"{code} {message or status.phrase}\n".encode())

    # a ?token= in a request line is masked, control characters escaped, even at -vv
    def log_message(self, format: str, *args: Any) -> None:
        self.server.app.log.debug("http: %s %s", self.client, for_log(format % args))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        line = for_log(self.requestline)
        self.server.app.log.debug('http: %s "%s" %s', self.client, line, code)
