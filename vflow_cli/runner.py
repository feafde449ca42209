"""runner: the only module that knows signals and exit codes (what people see: console).

    source ──> stage function ──> sink          source: PacketReader on stdin (default),
                                                or any iterable of packets;
                                                sink: PacketWriter on stdout (default),
                                                or anything with its methods (vflow_cli.io)

    stdin ──PacketReader──> stage ──PacketWriter──> stdout
             (on_idle = writer.push: output leaves whenever input would block)

Ctrl-C reaches every stage of a shell pipeline. Producers stop (after the packet they are
writing) and end their output cleanly; processors and consumers drain until EOF so that
nothing already produced is lost; a second Ctrl-C aborts. A closed downstream is exit 141,
quietly. A stage's output ends with the stream's trailer only when the stage finished (or,
for a producer, was asked to stop): a reader can tell a finished stream from a cut one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import click

from vflow_cli.busy import Meter
from vflow_cli.console import (
    command_path,
    configure_logging,
    debugging,
    human_bytes,
    internal_error,
    log,
    one_line,
    progress_bar,
    quiet_libraries,
    refuse_terminals,
)
from vflow_cli.errors import StageError
from vflow_cli.framing.pipes import widen_pipe
from vflow_cli.framing.wire import OutputError, Packet, StreamCut, StreamError
from vflow_cli.status import Exit

__all__ = ["Exit", "Progress", "Sink", "StageError", "log", "output_buffer", "run_stage"]


class Terminated(BaseException):
    """SIGTERM arrived."""


class Progress:
    """Yielded by a producer (never sent): the number of packets it is about to produce."""

    def __init__(self, total: int | None, unit: str = "packets") -> None:
        self.total = total
        self.unit = unit


class Sink(Protocol):
    """Where a stage's packets go: a PacketWriter, or a network publisher with its methods."""

    packets: int
    bytes: int
    busy: bool

    def write(self, packet: Packet) -> None: ...
    def push(self) -> None: ...
    def flush(self) -> None: ...
    def close(self, *, end: bool = True) -> None: ...


class _State:
    """What the signal handlers and the send loop share."""

    def __init__(self) -> None:
        self.writer: Sink | None = None
        self.meter: Meter | None = None
        self.pending: type[BaseException] | None = None  # raise once the current write is done
        self.presses = 0
        self.calm = 0  # inside calm(): signals wait for the stage to ask (stop_if_asked)


_state = _State()


@contextlib.contextmanager
def calm() -> Iterator[None]:
    """A producer whose bookkeeping must not be cut in the middle (a durable receiver: which
    messages it handed out, acknowledged, gave back) runs inside calm(): Ctrl-C and SIGTERM
    are noted, not raised, and take effect when it calls stop_if_asked() at a safe point,
    or after the packet being written. A second signal is raised at once."""
    _state.calm += 1
    try:
        yield
    finally:
        _state.calm -= 1


def stop_if_asked() -> None:
    """Raise the Ctrl-C (KeyboardInterrupt) or SIGTERM noted while calm()."""
    if _state.pending is not None:
        raise _state.pending


def before_sleep(seconds: float = 0.0) -> None:
    """Producers call this (through vflow_cli.clock) before they wait: pending packets leave
    now, and the wait counts as waiting for input (the pace), not as work."""
    if _state.meter is not None:
        _state.meter.input += seconds
    writer = _state.writer
    if writer is not None:
        writer.flush()


def output_buffer(shape: tuple[int, ...], dtype: Any = "uint8") -> Any:
    """A writable array the stage's output can carry without a copy (a slot of its shared
    memory), or None: `cv2.flip(image, 1, dst=output_buffer(image.shape, image.dtype))`.
    The stage fills it, sends it in its next image packet, and never touches it again."""
    slot = getattr(_state.writer, "slot", None)
    return None if slot is None else slot(shape, dtype)


def stopping() -> bool:
    """True once a producer has been asked to stop (it may finish what it is doing)."""
    return _state.pending is not None


def interrupted() -> bool:
    """True once Ctrl-C was pressed. A processor or consumer drains on the first one; one
    that goes on after its input ended (`serve --wait`), or whose input never ends (a
    network worker), stops when this turns true."""
    return _state.presses > 0


def _binary(name: str) -> Any:
    stream = getattr(sys, name)
    if stream is None or isinstance(stream, _Closed):  # closed when Python started (`>&-`)
        raise StageError(f"{name} is closed; give this stage a pipe or a file")
    return getattr(stream, "buffer", stream)


def _send(
    writer: Sink, packets: Iterable[Any], *, producer: bool, meter: Meter | None = None
) -> None:
    state = _state
    write = writer.write if meter is None else meter.writing(writer.write)
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
                    bar = progress_bar(packet.total, packet.unit)
                continue
            if bar is None and packet.get("kind") == "stream" and packet.get("length"):
                bar = progress_bar(packet["length"], "frames")
            write(packet)
            if bar is not None and packet.get("kind") != "stream":
                bar.update()
            if state.pending is not None:
                raise state.pending
    finally:
        if bar is not None:
            bar.close()
        close = getattr(packets, "close", None)
        if close is not None:  # a producer stopped between packets ends here, not at exit
            close()


def _install_signals(kind: str) -> tuple[Any, Any]:
    state = _state

    def on_signal(exc: type[BaseException], first_drains: bool) -> None:
        if exc is KeyboardInterrupt:
            state.presses += 1
            if first_drains and state.presses == 1:
                return  # keep reading until upstream's EOF
        writer = state.writer
        if (state.calm or (writer is not None and writer.busy)) and state.pending is None:
            state.pending = exc  # finish the packet being written, then stop
            return
        raise exc

    drain = kind != "producer"
    old_int = signal.signal(signal.SIGINT, lambda s, f: on_signal(KeyboardInterrupt, drain))
    old_term = signal.signal(signal.SIGTERM, lambda s, f: on_signal(Terminated, False))
    return old_int, old_term


class _Closed:
    """sys.stdout when file descriptor 1 was closed (`>&-`): writing is an OSError, which
    the runner reports in one line, not an AttributeError on None."""

    def write(self, text: str) -> int:
        import errno

        raise OSError(errno.EBADF, "stdout is closed; give this stage a pipe or a file")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


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
    source: Iterable[Packet] | None = None,
    sink: Sink | None = None,
    clock: Any = None,
) -> None:
    """Run one stage function over a packet source and sink (stdin and stdout unless given);
    exits with an Exit code. `clock`: a chain's, to report each of its stages."""
    configure_logging(verbosity)
    quiet_libraries()
    debug = debugging(debug)
    refuse_terminals(
        reads=kind != "producer" and source is None, writes=kind != "consumer" and sink is None
    )
    if sys.stdout is None:
        sys.stdout = _Closed()  # type: ignore[assignment]
    state = _state
    state.writer, state.pending, state.presses = None, None, 0
    old = _install_signals(kind)
    started = time.monotonic()
    meter = state.meter = Meter(command_path().removeprefix("vflow "), clock)
    reader: Any = None
    writer: Sink | None = None
    code = Exit.OK
    try:
        if kind != "consumer":
            if sink is None:
                out = _binary("stdout")
                _widen(out)
                from vflow_cli.framing.writer import PacketWriter  # not for consumers

                sink = PacketWriter(out, share=True)
            writer = state.writer = sink
        if kind != "producer":
            if source is None:
                src = _binary("stdin")
                _widen(src)
                idle = writer.push if writer is not None else _flush_text_stdout
                from vflow_cli.framing.reader import PacketReader  # not for producers

                # a processor that never looks at pixels splices them on from the pipe
                # instead, which costs less than a copy out of shared memory
                shared = not lazy or kind == "consumer"
                source = reader = PacketReader(src, on_idle=idle, lazy=lazy, shared=shared)
            else:
                reader = source
            packets: Iterator[Packet] = meter.reading(iter(source))
        if kind == "producer":
            assert writer is not None
            _send(writer, fn(**options), producer=True, meter=meter)
        elif kind == "processor":
            assert writer is not None
            _send(writer, fn(packets, **options), producer=False, meter=meter)
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
    except StreamCut as exc:
        if state.presses:  # Ctrl-C reached the stages before us too: a cut is what it does
            log.debug("%s", exc)
            code = Exit.INTERRUPTED
        else:
            click.echo(f"{command_path()}: {one_line(str(exc))}", err=True)
            code = Exit.ERROR
    except (StageError, StreamError, OutputError) as exc:
        click.echo(f"{command_path()}: {one_line(str(exc))}", err=True)
        code = Exit.ERROR
    except OSError as exc:  # the environment: a full disk, a closed descriptor, EIO
        where = f" ({exc.filename})" if exc.filename else ""
        click.echo(f"{command_path()}: {exc.strerror or exc}{where}", err=True)
        code = Exit.ERROR
    except Exception as exc:
        if debug:
            raise
        if type(exc).__module__ == "cv2" and hasattr(reader, "packets"):
            # an input OpenCV refuses that no stage check caught: the input's problem
            click.echo(
                f"{command_path()}: OpenCV cannot work on packet {reader.packets}: "
                f"{one_line(str(exc))} (--debug for a traceback)",
                err=True,
            )
            code = Exit.ERROR
        else:
            internal_error(exc)
            code = Exit.BUG
    finally:
        signal.signal(signal.SIGINT, old[0])  # CliRunner tests run in this same process
        signal.signal(signal.SIGTERM, old[1])
        state.writer = None
    if writer is not None:
        # a finished stage ends its stream; a producer asked to stop has finished too.
        # Anything else leaves it cut, and the next stage says so.
        end = code == Exit.OK or (
            kind == "producer" and code in (Exit.INTERRUPTED, Exit.TERMINATED)
        )
        try:
            writer.close(end=end)  # complete packets already produced are never lost
        except BrokenPipeError:
            _point_stdout_at_devnull()
            code = code or Exit.DOWNSTREAM_CLOSED
        except OutputError as exc:
            if not code:
                click.echo(f"{command_path()}: {exc}", err=True)
                code = Exit.ERROR
        except OSError:
            pass
    meter.save()
    if code in (Exit.OK, Exit.INTERRUPTED, Exit.TERMINATED):
        _report(reader, writer, time.monotonic() - started)
        _report_busy(meter, reader, writer)
    if code:
        sys.exit(code)


def _flush_text_stdout() -> None:
    if sys.stdout is not None:
        sys.stdout.flush()


def _widen(stream: Any) -> None:
    # CliRunner's streams have no file descriptor
    with contextlib.suppress(AttributeError, OSError, ValueError):
        widen_pipe(stream.fileno())


def _report(reader: Any, writer: Sink | None, seconds: float) -> None:
    """-v: what went through this stage."""
    if not log.isEnabledFor(logging.INFO):
        return
    seconds = max(seconds, 1e-9)
    parts = []
    if reader is not None and hasattr(reader, "bytes"):
        parts.append(
            f"in {reader.packets} packets, {human_bytes(reader.bytes)} "
            f"({reader.packets / seconds:,.1f} packets/s, {human_bytes(reader.bytes / seconds)}/s)"
        )
    if writer is not None:
        parts.append(f"out {writer.packets} packets, {human_bytes(writer.bytes)}")
    log.info("%s in %.2f s", "; ".join(parts) or "done", seconds)


def _report_busy(meter: Meter, reader: Any, writer: Sink | None) -> None:
    """-v, a second line: where the time went, and the images that skipped the pipe."""
    if not log.isEnabledFor(logging.INFO):
        return
    shared = []
    rings = getattr(reader, "rings", None)
    if rings is not None and rings.shared:
        shared.append(f"{rings.shared} images in")
    if getattr(writer, "shared", 0):
        shared.append(f"{getattr(writer, 'shared', 0)} out")
    tail = f"; by shared memory: {', '.join(shared)}" if shared else ""
    log.info("%s%s", meter.line(), tail)
