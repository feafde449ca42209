"""web.auth in process: every way a token can come, right and wrong; the session cookie; the
401 log's limits; --token-file; the access options as the man page documents them.

The headers are the very type the server hands to Auth (http.client.HTTPMessage, which
http.server parses requests into); the log's clock is a counter the test moves.
"""

from __future__ import annotations

import base64
import http.client
import http.cookies
import io
import json
import logging
import types

import click
import pytest

from tests.helpers import ROOT
from vflow_cli.errors import StageError
from vflow_cli.web import auth as auth_module
from vflow_cli.web.auth import REPORT_EVERY, REPORT_LINES, Auth, access_options, read_token

TOKEN = "s3cret-Token"
PORT = 8123
COOKIE = f"vflow_session_{PORT}"


def headers(*lines: str) -> http.client.HTTPMessage:
    raw = "".join(f"{line}\r\n" for line in lines) + "\r\n"
    return http.client.parse_headers(io.BytesIO(raw.encode("latin-1")))


def basic(user_and_password: str | bytes) -> str:
    if isinstance(user_and_password, str):
        user_and_password = user_and_password.encode()
    return "Authorization: Basic " + base64.b64encode(user_and_password).decode()


class Lines(logging.Handler):
    """The messages a logger was given, formatted (a bad format argument fails the test)."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def log():
    logger = logging.getLogger("vflow.test.auth")
    lines = Lines(logger)
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    yield lines
    logger.removeHandler(lines)


@pytest.fixture
def clock(monkeypatch):
    """The monotonic clock auth.py reads, standing still until the test moves it."""
    now = [0.0]  # as just after boot: the first refusal of an address is still logged
    monkeypatch.setattr(auth_module, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    return now


def guarded(log: Lines) -> Auth:
    return Auth(TOKEN, PORT, log.logger)


def session_cookie(auth: Auth) -> str:
    assert auth.session is not None
    return auth.session.decode()


# --- who gets in -------------------------------------------------------------------------


def test_without_a_token_everyone_is_let_in_and_nothing_is_handed_out(log):
    auth = Auth(None, PORT, log.logger)
    assert not auth.required
    assert auth.session is None  # no session to give away: none is needed
    assert auth.check(headers(), {}) == "open"
    assert auth.check(headers("Authorization: Bearer anything"), {"token": "x"}) == "open"
    assert Auth("", PORT, log.logger).check(headers(), {}) == "open"  # empty: no token


def test_a_token_is_required_and_nothing_without_it_gets_in(log):
    auth = guarded(log)
    assert auth.required
    assert auth.check(headers(), {}) is None
    assert auth.check(headers("Authorization: "), {}) is None
    assert auth.check(headers("Cookie: other=1"), {"other": TOKEN}) is None


@pytest.mark.parametrize(
    ("line", "how"),
    [
        (f"Authorization: Bearer {TOKEN}", "header"),
        (f"Authorization: bearer {TOKEN}", "header"),  # the scheme's case does not matter
        (f"Authorization: BEARER   {TOKEN}  ", "header"),  # 1*SP before the credentials
        (basic(f"anyone:{TOKEN}"), "basic"),
        (basic(f":{TOKEN}"), "basic"),  # no user name at all
        (basic(f"user:{TOKEN}").replace("Basic", "basic"), "basic"),
    ],
)
def test_the_right_token_in_a_header_gets_in(log, line, how):
    assert guarded(log).check(headers(line), {}) == how


@pytest.mark.parametrize(
    "line",
    [
        "Authorization: Bearer wrong",
        f"Authorization: Bearer {TOKEN}x",
        f"Authorization: Bearer {TOKEN[:-1]}",
        f"Authorization: Bearer {TOKEN.upper()}",
        "Authorization: Bearer ",
        f"Authorization: Token {TOKEN}",  # another scheme
        f"Authorization: {TOKEN}",
        f"Authorization: Bearer{TOKEN}",
        basic(f"{TOKEN}:wrong"),  # the token as the user name is not the password
        basic(f"user:{TOKEN}x"),
        basic(TOKEN),  # no colon: no password
        basic("user:"),
        basic(b"user:" + TOKEN.encode() + b"\xff"),  # not UTF-8
        f"Authorization: Basic {TOKEN}",  # not base64
        # the right credentials with a character base64 does not have: strict decoding
        "Authorization: Basic *" + base64.b64encode(f"u:{TOKEN}".encode()).decode(),
        f"Authorization: Digest {base64.b64encode(f'u:{TOKEN}'.encode()).decode()}",
    ],
)
def test_a_wrong_header_is_refused(log, line):
    assert guarded(log).check(headers(line), {}) is None


def test_a_password_may_hold_colons_the_user_name_may_not(log):
    auth = Auth("tok:en:3", PORT, log.logger)
    assert auth.check(headers(basic("user:tok:en:3")), {}) == "basic"
    assert auth.check(headers(basic("user:tok:en")), {}) is None
    assert auth.check(headers(basic("tok:en:3")), {}) is None


def test_the_token_in_the_query(log):
    auth = guarded(log)
    assert auth.check(headers(), {"token": TOKEN}) == "query"
    assert auth.check(headers(), {"token": TOKEN, "other": "1"}) == "query"
    for wrong in ("", "wrong", TOKEN + "x", TOKEN[1:], f" {TOKEN}"):
        assert auth.check(headers(), {"token": wrong}) is None, wrong
    assert auth.check(headers(), {"Token": TOKEN}) is None  # the name is exact
    assert auth.check(headers(), {"tokens": TOKEN}) is None


def test_a_value_that_is_no_text_is_refused_not_a_crash(log):
    # a lone surrogate (what a decoder's surrogateescape leaves of a byte that is no UTF-8)
    auth = guarded(log)
    assert auth.check(headers(), {"token": "\udcff"}) is None
    assert auth.check(headers(), {"token": TOKEN + "\udcff"}) is None
    assert auth._matches(None) is False  # nothing given matches nothing


def test_a_wrong_header_does_not_hide_a_right_query_or_cookie(log):
    auth = guarded(log)
    wrong = "Authorization: Bearer wrong"
    assert auth.check(headers(wrong), {"token": TOKEN}) == "query"
    assert auth.check(headers(basic("u:wrong")), {"token": TOKEN}) == "query"
    assert auth.check(headers(wrong, f"Cookie: {COOKIE}={session_cookie(auth)}"), {}) == "cookie"


def test_the_session_cookie_gets_in_and_nothing_else_in_a_cookie_does(log):
    auth = guarded(log)
    session = session_cookie(auth)
    assert auth.check(headers(f"Cookie: {COOKIE}={session}"), {}) == "cookie"
    assert auth.check(headers(f"Cookie: a=1; {COOKIE}={session}; b=2"), {}) == "cookie"
    # a browser may send its cookies in more than one header
    assert auth.check(headers("Cookie: a=1", f"Cookie: {COOKIE}={session}"), {}) == "cookie"
    refused = [
        f"Cookie: {COOKIE}=wrong",
        f"Cookie: {COOKIE}={TOKEN}",  # the cookie holds a session, never the token
        f"Cookie: {COOKIE}={session}x",
        f"Cookie: {COOKIE}=",
        f"Cookie: {COOKIE}",
        f"Cookie: vflow_session_{PORT + 1}={session}",  # another port's name
        f"Cookie: x{COOKIE}={session}",
        f"Cookie: token={TOKEN}",
    ]
    for line in refused:
        assert auth.check(headers(line), {}) is None, line
    # a session of another run of the server is worth nothing
    assert guarded(log).check(headers(f"Cookie: {COOKIE}={session}"), {}) is None


def test_the_cookie_set_after_a_link_with_the_token(log):
    auth = guarded(log)
    value = auth.set_cookie()
    jar = http.cookies.SimpleCookie()
    jar.load(value)
    assert list(jar) == [COOKIE]
    morsel = jar[COOKIE]
    assert morsel.value == session_cookie(auth)
    assert TOKEN not in value
    assert morsel["httponly"] is True  # no script of the page can read it
    assert morsel["samesite"] == "Strict"  # no other site's page can send it
    attributes = [a.strip() for a in value.split(";")[1:]]
    assert attributes == ["HttpOnly", "SameSite=Strict"]  # no Domain, no long Max-Age
    # and the browser that sends it back is let in
    assert auth.check(headers(f"Cookie: {value.split(';')[0]}"), {}) == "cookie"


def test_sessions_are_random_and_long(log):
    sessions = {session_cookie(guarded(log)) for _ in range(20)}
    assert len(sessions) == 20
    assert all(len(s) >= 43 for s in sessions)  # 32 random bytes, base64: 256 bits


def test_every_comparison_is_in_constant_time(log, monkeypatch):
    import hmac

    compared: list[tuple[bytes, bytes]] = []

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(auth_module, "hmac", types.SimpleNamespace(compare_digest=compare_digest))
    auth = guarded(log)
    session = session_cookie(auth).encode()
    cases = [
        (headers("Authorization: Bearer abc"), {}, (b"abc", TOKEN.encode()), None),
        (headers(f"Authorization: Bearer {TOKEN}"), {}, (TOKEN.encode(),) * 2, "header"),
        (headers(basic("u:pw")), {}, (b"pw", TOKEN.encode()), None),
        (headers(basic(f"u:{TOKEN}")), {}, (TOKEN.encode(),) * 2, "basic"),
        (headers(), {"token": "q"}, (b"q", TOKEN.encode()), None),
        (headers(), {"token": TOKEN}, (TOKEN.encode(),) * 2, "query"),
        (headers(f"Cookie: {COOKIE}=c"), {}, (b"c", session), None),
        (headers(f"Cookie: {COOKIE}={session.decode()}"), {}, (session, session), "cookie"),
    ]
    for request, query, pair, how in cases:
        compared.clear()
        assert auth.check(request, query) == how
        assert compared == [pair]


# --- the log of refusals -----------------------------------------------------------------


def refuse(auth: Auth, client: str = "10.0.0.1:5000", request=None, query=None, path="/"):
    auth.refuse(client, "GET", path, request if request is not None else headers(), query or {})


def test_a_refusal_says_whether_a_token_was_given(log, clock):
    auth = guarded(log)
    refuse(auth, "10.0.0.1:1", path="/a")
    refuse(auth, "10.0.0.2:1", headers("Authorization: Bearer x"), path="/b")
    refuse(auth, "10.0.0.3:1", query={"token": "x"}, path="/c")
    refuse(auth, "10.0.0.4:1", headers(f"Cookie: {COOKIE}=x"), path="/d")
    refuse(auth, "10.0.0.5:1", headers("Cookie: other=x"), query={"x": "1"}, path="/e")
    assert log.messages == [
        "401 GET /a from 10.0.0.1:1: no token",
        "401 GET /b from 10.0.0.2:1: a wrong token",
        "401 GET /c from 10.0.0.3:1: a wrong token",
        "401 GET /d from 10.0.0.4:1: a wrong token",
        "401 GET /e from 10.0.0.5:1: no token",
    ]
    assert all(r.levelno == logging.WARNING for r in log.records)
    assert auth.refused == 5


def test_a_logged_path_shows_no_secret_and_no_control_character(log, clock):
    auth = guarded(log)
    refuse(auth, path="/x\x1b[2J?token=abc")
    (message,) = log.messages
    assert "\x1b" not in message and "abc" not in message
    assert message.startswith("401 GET /x") and message.endswith(": no token")


def test_one_line_a_minute_per_address_whatever_its_port(log, clock):
    auth = guarded(log)
    refuse(auth, "10.0.0.1:5000")
    refuse(auth, "10.0.0.1:5001")  # a scanner's next port
    refuse(auth, "10.0.0.1:5002")
    clock[0] += REPORT_EVERY - 0.5
    refuse(auth, "10.0.0.1:5003")
    assert log.messages == ["401 GET / from 10.0.0.1:5000: no token"]
    clock[0] += 0.5  # a minute after the line
    refuse(auth, "10.0.0.1:5004")
    assert log.messages[1:] == [
        "401 GET / from 10.0.0.1:5004: no token (3 more refused since the last report)"
    ]
    clock[0] += REPORT_EVERY
    refuse(auth, "10.0.0.1:5005")  # the count starts again after a line
    assert log.messages[2:] == ["401 GET / from 10.0.0.1:5005: no token"]
    assert auth.refused == 6


def test_ipv6_addresses_are_one_client_too(log, clock):
    auth = guarded(log)
    refuse(auth, "::1:40000")
    refuse(auth, "::1:40001")
    refuse(auth, "fe80::2:40000")
    assert log.messages == [
        "401 GET / from ::1:40000: no token",
        "401 GET / from fe80::2:40000: no token",
    ]


def test_at_most_report_lines_a_minute_in_all(log, clock):
    auth = guarded(log)
    for i in range(REPORT_LINES + 2):  # two more addresses than lines allowed
        refuse(auth, f"10.0.1.{i}:1")
        clock[0] += 1.0
    assert log.messages == [f"401 GET / from 10.0.1.{i}:1: no token" for i in range(REPORT_LINES)]
    clock[0] = REPORT_EVERY - 0.5  # the first line is not yet a minute old
    refuse(auth, "10.0.2.1:1")
    assert len(log.messages) == REPORT_LINES
    clock[0] = REPORT_EVERY  # now it is
    refuse(auth, "10.0.2.2:1")
    assert log.messages[REPORT_LINES:] == [
        "401 GET / from 10.0.2.2:1: no token (3 from other addresses not reported)"
    ]
    clock[0] += 1.0
    refuse(auth, "10.0.2.3:1")  # the silenced count was told once, and starts again
    assert log.messages[REPORT_LINES + 1 :] == ["401 GET / from 10.0.2.3:1: no token"]
    assert auth.refused == REPORT_LINES + 5


def test_the_two_counts_in_one_line(log, clock):
    auth = guarded(log)
    refuse(auth, "10.0.0.1:1")
    refuse(auth, "10.0.0.1:2")
    for i in range(REPORT_LINES):  # fills the lines (one is taken) and silences one
        refuse(auth, f"10.0.3.{i}:1")
    clock[0] += REPORT_EVERY
    refuse(auth, "10.0.0.1:3")
    assert log.messages[-1] == (
        "401 GET / from 10.0.0.1:3: no token (1 more refused since the last report)"
        " (1 from other addresses not reported)"
    )


def test_the_addresses_remembered_are_bounded(log, clock):
    auth = guarded(log)
    most = 0
    for i in range(1100):
        refuse(auth, f"10.{i // 250}.{i % 250}.1:1")
        most = max(most, len(auth._reported))
        clock[0] += REPORT_EVERY / REPORT_LINES  # slow enough that every one is logged
    assert len(log.messages) == 1100
    assert 1000 <= most <= 1001


# --- the token itself: --token, --token-file ---------------------------------------------


def stage_error(*args) -> str:
    with pytest.raises(StageError) as caught:
        read_token(*args)
    return str(caught.value)


def test_a_token_on_the_command_line():
    assert read_token(None, None) is None
    assert read_token(None, None, True) is None
    assert read_token(TOKEN, None) == TOKEN
    assert read_token(f"  {TOKEN}\n", None) == TOKEN
    empty = "the token is empty; give a non-empty --token or --token-file"
    assert stage_error("", None) == empty
    assert stage_error("  ", None) == empty
    spaces = "the token has spaces or control characters; use letters and digits"
    for bad in ("two words", "tab\there", "bell\x07", "del\x7f", "nbsp\u00a0x", "é\u200b"):
        assert stage_error(bad, None) == spaces, repr(bad)
    assert read_token("é-ü:;!", None) == "é-ü:;!"  # printable is enough


def test_token_and_no_token_do_not_go_together(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(0o600)
    both = "give --token or --token-file, not both"
    assert stage_error(TOKEN, str(path)) == both
    clash = (
        "--no-token, yet a token is given (--token, --token-file or $VFLOW_SERVE_TOKEN): "
        "give one or the other"
    )
    assert stage_error(TOKEN, None, True) == clash
    assert stage_error(None, str(path), True) == clash
    assert stage_error("", None, True) == clash  # an empty $VFLOW_SERVE_TOKEN is still given


@pytest.fixture
def vflow_log():
    logger = logging.getLogger("vflow")
    lines = Lines(logger)
    level = logger.level  # another test may have set it (a stage's -q)
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    yield lines
    logger.removeHandler(lines)
    logger.setLevel(level)


def test_a_token_file(tmp_path, vflow_log):
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}  \nsecond line ignored\n")
    path.chmod(0o600)
    assert read_token(None, str(path)) == TOKEN
    assert vflow_log.messages == []
    path.write_text("\nsecond line\n")
    assert stage_error(None, str(path)) == (
        "the token is empty; give a non-empty --token or --token-file"
    )


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_token_file_others_can_read_is_used_and_warned_of(tmp_path, vflow_log, mode):
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(mode)
    assert read_token(None, str(path)) == TOKEN
    assert vflow_log.messages == [f"{path} can be read by other users; chmod 600 it"]
    assert vflow_log.records[0].levelno == logging.WARNING


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_a_private_token_file_is_not_warned_of(tmp_path, vflow_log, mode):
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(mode)
    assert read_token(None, str(path)) == TOKEN
    assert vflow_log.messages == []


def test_a_token_file_that_cannot_be_read(tmp_path):
    missing = tmp_path / "missing"
    assert stage_error(None, str(missing)) == (
        f"cannot read the token file {missing}: No such file or directory"
    )
    assert stage_error(None, str(tmp_path)) == (
        f"cannot read the token file {tmp_path}: Is a directory"
    )
    latin = tmp_path / "latin"
    latin.write_bytes(b"caf\xe9\n")
    latin.chmod(0o600)
    try:
        b"caf\xe9\n".decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = str(exc)
    assert stage_error(None, str(latin)) == f"cannot read the token file {latin}: {reason}"


# --- the options, as man/vflow-serve.1 documents them ------------------------------------


def command() -> click.Command:
    @click.command()
    @access_options
    def serve(**kwargs):
        click.echo(json.dumps(kwargs))

    return serve


def test_the_access_options_parse(runner):
    def parsed(args, env=None):
        result = runner.invoke(command(), args, env=env or {"VFLOW_SERVE_TOKEN": None})
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    assert parsed([]) == {
        "bind": "127.0.0.1",
        "token": None,
        "token_file": None,
        "no_token": False,
        "allow_host": [],
    }
    given = parsed(
        [
            *("--bind", "0.0.0.0", "--token", "t", "--token-file", "f", "--no-token"),
            *("--allow-host", "a.example", "--allow-host", "b.example"),
        ]
    )
    assert given == {
        "bind": "0.0.0.0",
        "token": "t",
        "token_file": "f",
        "no_token": True,
        "allow_host": ["a.example", "b.example"],
    }
    assert parsed([], {"VFLOW_SERVE_TOKEN": "from-env"})["token"] == "from-env"


def test_the_access_options_say_what_the_man_page_says():
    page = (ROOT / "man" / "vflow-serve.1").read_text().splitlines()
    serve = command()
    ctx = click.Context(serve)
    params = [p for p in serve.params if isinstance(p, click.Option)]
    assert [p.name for p in params] == ["bind", "token", "token_file", "no_token", "allow_host"]
    for param in params:
        opts, text = param.get_help_record(ctx) or ("", "")
        heading = "\\fB" + opts.replace("-", "\\-").replace(" ", "\\fP ", 1)
        if " " not in opts:
            heading += "\\fP"
        assert heading in page, heading
        assert page[page.index(heading) + 1] == text, param.name
