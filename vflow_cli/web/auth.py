"""web.auth: the access token of a vflow server, and the log of the requests without it.

A client may give the token four ways, so that every tool has one it can use:

    Authorization: Bearer TOKEN        curl -H, Prometheus `authorization: credentials`
    Authorization: Basic ANY:TOKEN     a browser's own login prompt (any user name)
    ?token=TOKEN                       a link; the page then sets a cookie and drops it
    Cookie: vflow_session_PORT=SESSION what the page's picture and event stream send

The cookie never holds the token: browsers send a host's cookies to every port of it (a
cookie is not scoped by port), so it holds a random session value of this server's run,
worth nothing to another server, or to this one once it restarts. Tokens and sessions are
compared in constant time. A wrong or missing token is a 401 with a Basic challenge (the
browser asks), and a line on stderr: at most one a minute per client address, whatever
its port (a scanner opens a new port per try), and at most REPORT_LINES a minute in all,
with counts of what went unreported. The address bar's ?token= is never logged
(vflow_cli.redact), not even at -vv.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from typing import Any

import click

from vflow_cli.errors import StageError
from vflow_cli.redact import for_log

REPORT_EVERY = 60.0  # seconds between two log lines about the same client address
REPORT_LINES = 10  # log lines about refused requests in REPORT_EVERY seconds, in all


def access_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--bind, --token, --token-file, --no-token and --allow-host: who may reach a server
    (serve, graph --serve)."""
    for option in reversed(
        [
            click.option(
                "--bind",
                default="127.0.0.1",
                show_default=True,
                metavar="ADDRESS",
                help="Address to listen on. The default lets only this machine in; 0.0.0.0 "
                "(or ::, or any address beyond loopback) opens it to the network, and then "
                "needs a token or --no-token.",
            ),
            click.option(
                "--token",
                envvar="VFLOW_SERVE_TOKEN",
                default=None,
                help="Every request must carry this token: `Authorization: Bearer TOKEN`, "
                "the password in the browser's prompt, or ?token=TOKEN once (the page then "
                "keeps a cookie). A wrong one gets 401 and is logged. A token on the command "
                "line shows in `ps` (graph pages mask it): prefer --token-file or "
                "$VFLOW_SERVE_TOKEN.",
            ),
            click.option(
                "--token-file",
                metavar="FILE",
                default=None,
                help="Read the token from the first line of FILE (keeps it out of `ps`).",
            ),
            click.option(
                "--no-token",
                is_flag=True,
                help="Serve anyone who can reach the address, without a token: needed to "
                "--bind beyond loopback without one.",
            ),
            click.option(
                "--allow-host",
                "allow_host",
                multiple=True,
                metavar="NAME",
                help="Also answer requests for NAME (the Host a browser or a reverse proxy "
                "sends), besides localhost and this machine's name and addresses; others "
                "get 403 (DNS rebinding). Repeatable.",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def read_token(token: str | None, token_file: str | None, no_token: bool = False) -> str | None:
    """The token from --token or --token-file (its first line); None: no token needed."""
    if token is not None and token_file is not None:
        raise StageError("give --token or --token-file, not both")
    if no_token and (token is not None or token_file is not None):
        raise StageError(
            "--no-token, yet a token is given (--token, --token-file or "
            "$VFLOW_SERVE_TOKEN): give one or the other"
        )
    if token_file is not None:
        try:
            with open(token_file, encoding="utf-8") as f:
                token = f.readline().strip()
            mode = os.stat(token_file).st_mode
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise StageError(f"cannot read the token file {token_file}: {reason}") from None
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            logging.getLogger("vflow").warning(
                "%s can be read by other users; chmod 600 it", token_file
            )
    if token is None:
        return None
    token = token.strip()
    if not token:
        raise StageError("the token is empty; give a non-empty --token or --token-file")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise StageError("the token has spaces or control characters; use letters and digits")
    return token


class Auth:
    """Decides whether a request carries the token; counts and logs those that do not."""

    def __init__(self, token: str | None, port: int, log: logging.Logger) -> None:
        self.token = token.encode() if token else None
        self.cookie = f"vflow_session_{port}"
        self.session = secrets.token_urlsafe(32).encode() if token else None
        self.log = log
        self.refused = 0
        self._lock = threading.Lock()
        self._reported: dict[str, tuple[float, int]] = {}  # address -> (last line, unreported)
        self._lines: list[float] = []  # when the last lines were logged
        self._silenced = 0  # refusals of other addresses not logged: too many lines

    @property
    def required(self) -> bool:
        return self.token is not None

    def _matches(self, given: str | None, secret: bytes | None = None) -> bool:
        secret = secret or self.token
        if given is None or secret is None:
            return False
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret)

    def set_cookie(self) -> str:
        """The Set-Cookie value that lets a browser in after a ?token= link."""
        assert self.session is not None
        return f"{self.cookie}={self.session.decode()}; HttpOnly; SameSite=Strict"

    def check(self, headers: Any, query: dict[str, str]) -> str | None:
        """How the request proved itself ('header', 'basic', 'query', 'cookie', or 'open'
        when no token is needed); None when it did not."""
        if self.token is None:
            return "open"
        header = headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and self._matches(value.strip()):
            return "header"
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            if self._matches(decoded.partition(":")[2]):
                return "basic"
        if "token" in query and self._matches(query["token"]):
            return "query"
        for part in headers.get_all("Cookie") or ():
            for item in part.split(";"):
                name, _, value = item.strip().partition("=")
                if name == self.cookie and self._matches(value, self.session):
                    return "cookie"
        return None

    def refuse(self, client: str, method: str, path: str, headers: Any, query: dict) -> None:
        """Count and (at most once a minute per client address) log a request without the
        token."""
        given = (
            "Authorization" in headers
            or "token" in query
            or self.cookie in str(headers.get_all("Cookie") or "")
        )
        what = "a wrong token" if given else "no token"
        now = time.monotonic()
        address = client.rpartition(":")[0] or client
        with self._lock:
            self.refused += 1
            last, unreported = self._reported.get(address, (-REPORT_EVERY, 0))
            self._lines = [t for t in self._lines if now - t < REPORT_EVERY]
            if now - last < REPORT_EVERY:
                self._reported[address] = (last, unreported + 1)
                return
            if len(self._lines) >= REPORT_LINES:
                self._silenced += 1
                return
            if len(self._reported) > 1000:  # forget old clients: bounded memory
                self._reported.clear()
            self._reported[address] = (now, 0)
            self._lines.append(now)
            silenced, self._silenced = self._silenced, 0
        more = f" ({unreported} more refused since the last report)" if unreported else ""
        if silenced:
            more += f" ({silenced} from other addresses not reported)"
        self.log.warning("401 %s %s from %s: %s%s", method, for_log(path), client, what, more)
