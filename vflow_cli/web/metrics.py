"""web.metrics: the Prometheus text exposition format (version 0.0.4), written by hand.

The format is a handful of rules (HELP and TYPE lines, escaped label values, one sample a
line), so it costs less than a dependency: prometheus-client would bring a registry and
global state that two servers in one process (a graph and its page) would have to share.

    # HELP vflow_serve_frames_total Frames that arrived on the input.
    # TYPE vflow_serve_frames_total counter
    vflow_serve_frames_total{stream="cam"} 1234
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
KINDS = ("counter", "gauge", "untyped")


@dataclass
class Family:
    """One metric: its name, type, help text and samples (labels, value)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float | None, **labels: str) -> Family:
        """Add a sample; None (a number nobody can observe) adds nothing."""
        if value is not None:
            self.samples.append((labels, value))
        return self


def counter(name: str, help: str) -> Family:
    return Family(name, "counter", help)


def gauge(name: str, help: str) -> Family:
    return Family(name, "gauge", help)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render(families: Iterable[Family]) -> bytes:
    """The exposition of these families, in the order given (a family with no sample is
    left out: Prometheus would show an empty series)."""
    lines: list[str] = []
    for family in families:
        if not family.samples:
            continue
        if family.kind not in KINDS:
            raise ValueError(f"{family.name}: unknown metric type {family.kind!r}")
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            if labels:
                inner = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
                lines.append(f"{family.name}{{{inner}}} {_value(value)}")
            else:
                lines.append(f"{family.name} {_value(value)}")
    return ("\n".join(lines) + "\n").encode()


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def process_families() -> list[Family]:
    """The process's own numbers under the names every Prometheus client library uses."""
    families = [
        gauge("process_start_time_seconds", "Start time of the process since the Unix epoch."),
        counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds."),
        gauge("process_resident_memory_bytes", "Resident memory size in bytes."),
        gauge("process_open_fds", "Number of open file descriptors."),
    ]
    start, cpu, rss, fds = families
    times = os.times()
    cpu.add(times.user + times.system)
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        started_ticks = int(fields[19])  # field 22 of stat(5), counted after the name
        rss.add(int(fields[21]) * _PAGE)
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime"))
        start.add(boot + started_ticks / _CLOCK_TICKS)
        fds.add(len(os.listdir("/proc/self/fd")))
    except (OSError, ValueError, IndexError, StopIteration):
        start.add(_STARTED)  # no /proc: when this module was imported
    return families


_STARTED = time.time()
