"""runner: the only module that knows signals, exit codes, terminals and stderr.

    stdin ──PacketReader──> stage function ──PacketWriter──> stdout
             (on_idle = writer.flush: output leaves whenever input would block)

Ctrl-C reaches every stage of a shell pipeline. Producers stop (after the packet they are
writing) and close their output; processors and consumers drain until EOF so that nothing
already produced is lost; a second Ctrl-C aborts. A closed downstream is exit 141, quietly.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import click

from vflow_cli.framing import Packet, PacketReader, PacketWriter, StreamError, widen_pipe

log = logging.getLogger("vflow")


class Exit(enum.IntEnum):
    OK = 0
    ERROR = 1  # a problem the user can fix: bad input, missing file, broken stream
    USAGE = 2  # a bad command line (click) or a terminal where packets should be
    BUG = 70  # an unexpected exception inside vflow (sysexits EX_SOFTWARE)
    INTERRUPTED = 130  # 128 + SIGINT
    DOWNSTREAM_CLOSED = 141  # 128 + SIGPIPE: the reader left first; not a crash
    TERMINATED = 143  # 128 + SIGTERM


class StageError(Exception):
    """A problem the user can fix: "what went wrong; what to try". Printed as one line."""


class Terminated(BaseException):
    """SIGTERM arrived."""


class Progress:
    """Yielded by a producer (never sent): the number of packets it is about to produce."""

    def __init__(self, total: int | None, unit: str = "packets") -> None:
        self.total = total
        self.unit = unit


class _State:
    """What the signal handlers and the send loop share."""

    def __init__(self) -> None:
        self.writer: PacketWriter | None = None
        self.pending: type[BaseException] | None = None  # raise once the current write is done
        self.presses = 0
        self.draining = False


_state = _State()


def before_sleep() -> None:
    """Producers call this (through vflow_cli.clock) before they wait: pending packets leave now."""
    writer = _state.writer
    if writer is not None:
        writer.flush()


def stopping() -> bool:
    """True once a producer has been asked to stop (it may finish what it is doing)."""
    return _state.pending is not None


def _binary(name: str) -> Any:
    stream = getattr(sys, name)
    return getattr(stream, "buffer", stream)


def refuse_terminals(*, reads: bool, writes: bool) -> None:
    """Packets are binary: never read them from a keyboard nor write them to a screen."""
    if reads and _isatty(sys.stdin):
        raise click.UsageError(
            "stdin is a terminal, not a packet stream; pipe a producer into this stage, "
            "e.g. `vflow testcard --frames 10 | vflow print`"
        )
    if writes and _isatty(sys.stdout):
        raise click.UsageError(
            "stdout is a terminal and this stage writes binary packets; pipe it into a "
            "consumer, e.g. `... | vflow print`, or redirect it to a file"
        )


def _isatty(stream: Any) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _command_path() -> str:
    ctx = click.get_current_context(silent=True)
    return ctx.command_path if ctx else "vflow"


def configure_logging(verbosity: int) -> None:
    """-q: errors only; default: warnings; -v: info; -vv: debug. Every line names the stage."""
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
        max(-1, min(verbosity, 2)), logging.DEBUG
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{_command_path()}: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _progress_bar(total: int | None, unit: str):
    """A tqdm bar on stderr when stderr is a terminal and logging is not quiet, else None."""
    if not _isatty(sys.stderr) or log.level > logging.WARNING:
        return None
    from tqdm import tqdm

    try:
        size = os.get_terminal_size(sys.stderr.fileno())
        sized = size.columns > 0 and size.lines > 0
    except (OSError, ValueError, AttributeError):
        sized = False
    # a terminal that reports no size (a bare pty, `script`) would hide the bar: assume 80x24
    shape = {"dynamic_ncols": True} if sized else {"ncols": 80, "nrows": 24}
    return tqdm(
        total=total, unit=" " + unit, desc=_command_path(), leave=False, file=sys.stderr, **shape
    )


def _send(writer: PacketWriter, packets: Iterable[Any], *, producer: bool) -> None:
    state = _state
    write = writer.write
    if not producer:
        for packet in packets:
            write(packet)
            if state.pending is not None:
                raise state.pending
        return
    bar = None
    try:
        for packet in packets:
            if type(packet) is Progress:
                if bar is None:
                    bar = _progress_bar(packet.total, packet.unit)
                continue
            if bar is None and packet.get("kind") == "stream" and packet.get("length"):
                bar = _progress_bar(packet["length"], "frames")
            write(packet)
            if bar is not None and packet.get("kind") != "stream":
                bar.update()
            if state.pending is not None:
                raise state.pending
    finally:
        if bar is not None:
            bar.close()


def _install_signals(kind: str) -> tuple[Any, Any]:
    state = _state

    def on_signal(exc: type[BaseException], first_drains: bool) -> None:
        if exc is KeyboardInterrupt:
            state.presses += 1
            if first_drains and state.presses == 1:
                state.draining = True  # keep reading until upstream's EOF
                return
        writer = state.writer
        if writer is not None and writer.busy and state.pending is None:
            state.pending = exc  # finish the packet being written, then stop
            return
        raise exc

    drain = kind != "producer"
    old_int = signal.signal(signal.SIGINT, lambda s, f: on_signal(KeyboardInterrupt, drain))
    old_term = signal.signal(signal.SIGTERM, lambda s, f: on_signal(Terminated, False))
    return old_int, old_term


def _point_stdout_at_devnull() -> None:
    # Python flushes stdout at exit; on a closed pipe that would fail a second time
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def run_stage(
    kind: str,
    fn: Callable[..., Any],
    options: dict[str, Any],
    *,
    verbosity: int = 0,
    debug: bool = False,
    lazy: bool = False,
) -> None:
    """Run one stage function with stdin/stdout as packet streams; exits with an Exit code."""
    configure_logging(verbosity)
    debug = debug or bool(os.environ.get("VFLOW_DEBUG"))
    refuse_terminals(reads=kind != "producer", writes=kind != "consumer")
    state = _state
    state.writer, state.pending, state.presses, state.draining = None, None, 0, False
    old = _install_signals(kind)
    started = time.monotonic()
    reader = writer = None
    code = Exit.OK
    try:
        if kind != "consumer":
            out = _binary("stdout")
            _widen(out)
            writer = state.writer = PacketWriter(out)
        if kind != "producer":
            src = _binary("stdin")
            _widen(src)
            idle = writer.push if writer is not None else _flush_text_stdout
            reader = PacketReader(src, on_idle=idle, lazy=lazy)
            packets: Iterator[Packet] = iter(reader)
        if kind == "producer":
            assert writer is not None
            _send(writer, fn(**options), producer=True)
        elif kind == "processor":
            assert writer is not None
            _send(writer, fn(packets, **options), producer=False)
        else:
            fn(packets, **options)
            _flush_text_stdout()
    except BrokenPipeError:
        writer = None
        _point_stdout_at_devnull()
        code = Exit.DOWNSTREAM_CLOSED
    except KeyboardInterrupt:
        code = Exit.INTERRUPTED
    except Terminated:
        code = Exit.TERMINATED
    except click.ClickException:
        raise  # click prints it and exits with 1 or 2
    except (StageError, StreamError) as exc:
        click.echo(f"{_command_path()}: {exc}", err=True)
        code = Exit.ERROR
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"{_command_path()}: internal error: {type(exc).__name__}: {exc} "
            "(run with --debug or VFLOW_DEBUG=1 for a traceback)",
            err=True,
        )
        code = Exit.BUG
    finally:
        signal.signal(signal.SIGINT, old[0])  # CliRunner tests run in this same process
        signal.signal(signal.SIGTERM, old[1])
        state.writer = None
    if writer is not None:
        try:
            writer.close()  # complete packets already produced are never lost
        except BrokenPipeError:
            _point_stdout_at_devnull()
            code = code or Exit.DOWNSTREAM_CLOSED
        except OSError:
            pass
    if code in (Exit.OK, Exit.INTERRUPTED, Exit.TERMINATED):
        _report(reader, writer, time.monotonic() - started)
    if code:
        sys.exit(code)


def _flush_text_stdout() -> None:
    sys.stdout.flush()


def _widen(stream: Any) -> None:
    # CliRunner's streams have no file descriptor
    with contextlib.suppress(AttributeError, OSError, ValueError):
        widen_pipe(stream.fileno())


def _report(reader: PacketReader | None, writer: PacketWriter | None, seconds: float) -> None:
    """-v: what went through this stage."""
    if not log.isEnabledFor(logging.INFO):
        return
    seconds = max(seconds, 1e-9)
    parts = []
    if reader is not None:
        parts.append(
            f"in {reader.packets} packets, {_human(reader.bytes)} "
            f"({reader.packets / seconds:,.1f} packets/s, {_human(reader.bytes / seconds)}/s)"
        )
    if writer is not None:
        parts.append(f"out {writer.packets} packets, {_human(writer.bytes)}")
    log.info("%s in %.2f s", "; ".join(parts) or "done", seconds)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"
