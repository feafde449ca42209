"""graph.run: start a plan as processes, relay what must be relayed, stop it organically.

    cam ──pipe──> det ──pipe──> view           a one-to-one edge is a plain OS pipe:
                                               the runner never touches its bytes

                      ┌─ Edge(queue 8, block) ──> NodeInbox(rec) ─ feeder ─pipe─> rec
    cam ─pipe─> Fanout┤                                                     (lossless)
      (reader thread) └─ Edge(queue 2, old) ───> NodeInbox(view) ─ feeder ─pipe─> view
                                                                            (leaky: drops
                                                                             counted)
    a ─pipe─> Fanout ─ Edge ─┐
                             ├─> NodeInbox(join) ─ feeder: merge (arrival order, "from" = a|b)
    b ─pipe─> Fanout ─ Edge ─┘                         or zip (by "seq") ─pipe─> join

                                   ┌─pipe─> slow.0 ─pipe─┐ collector ┐  Pool's reorder buffer
    NodeInbox(slow) ─ feeder ─ Pool ───┤  (hidden seq tag)   │           ├─ (original order) ─>
                                   └─pipe─> slow.1 ─pipe─┘ collector ┘  Fanout ─> ...

What is a pipe and what is relayed is the plan's decision (graph.plan); this module builds
the plan's objects (graph.queues, graph.joins, graph.pool), starts the processes
(graph.procs) and the relay threads (graph.relays), then watches.

The main thread only starts processes, watches them (polling), forwards signals and prints
statistics; signal handlers set flags and nothing else.

Stopping: the producers get SIGINT (Ctrl-C, or a node failed) or SIGTERM; every other node
drains until EOF. On Ctrl-C, a vflow stage given --wait (serve --wait: it goes on past the
end of its input, until Ctrl-C) gets SIGINT too, as in a shell pipe. After `grace` seconds
whatever is left gets SIGTERM, and SIGKILL 3 seconds later. A second Ctrl-C (or SIGTERM)
sends SIGTERM to every node at once.
"""

from __future__ import annotations

import resource
import signal
import time
from collections.abc import Callable
from typing import Any

from vflow_cli.graph.launch import Launch, StartError
from vflow_cli.graph.log import Log
from vflow_cli.graph.plan import Plan
from vflow_cli.graph.procs import Proc
from vflow_cli.graph.stats import Stats
from vflow_cli.status import CLEAN, STOPPED, Exit, describe, shell_code

KILL_AFTER = 3.0  # seconds between SIGTERM and SIGKILL
POLL = 0.02  # seconds between looks at the processes


class Graph:
    """A plan running: its Launch (what was built and started), watched until it ends."""

    def __init__(
        self,
        plan: Plan,
        *,
        verbosity: int = 0,
        grace: float | None = None,
        stats: float | None = None,
    ) -> None:
        self.plan = plan
        self.spec = plan.spec
        self.log = Log(verbosity)
        self.grace = plan.spec.grace if grace is None else grace
        self.stats_every = stats
        self.failures: list[Proc] = []
        self.forced = False  # every node was told to stop at once (a second Ctrl-C or SIGTERM)
        self.stop_reason: str | None = None  # interrupt | terminate | failure
        self.stop_at: float | None = None
        self.term_at: float | None = None
        self.kill_at: float | None = None
        self.presses = 0
        self.sigterms = 0
        self.want_stats = False
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.exit_code: int | None = None
        self.optional_failed: set[str] = set()
        self.stats = Stats(self)
        self.launch = Launch(plan, self.log, self.stats.report_path)

    # -- signals: handlers set flags, the watch loop acts ----------------------------------

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.presses += 1

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.sigterms += 1

    def _on_sigusr1(self, signum: int, frame: Any) -> None:
        self.want_stats = True

    # -- run: start, watch, stop, report ---------------------------------------------------

    def run(self) -> int:
        handlers = {
            signal.SIGINT: self._on_sigint,
            signal.SIGTERM: self._on_sigterm,
            signal.SIGUSR1: self._on_sigusr1,
        }
        old = {s: signal.signal(s, h) for s, h in handlers.items()}
        try:
            try:
                self.launch.start()
            except (StartError, OSError) as exc:
                self.log.say(f"{self.spec.path}: {exc}; nothing runs")
                self._stop_all(signal.SIGKILL)
                for proc in self.launch.all():
                    if proc.popen is not None:
                        proc.popen.wait()
                self.exit_code = Exit.ERROR
                return self.exit_code
            self._watch()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        for thread in self.launch.threads:
            thread.join(timeout=2)
        try:
            self.stats.busy()  # the final numbers stay for the live page once files go
            self.exit_code = self._finish()
        finally:
            self.stats.close()
        return self.exit_code

    def _watch(self) -> None:
        handled_presses = handled_terms = 0
        next_stats = self.started + self.stats_every if self.stats_every else None
        reported: set[int] = set()
        while True:
            live = [p for p in self.launch.all() if p.poll() is None]
            for proc in self.launch.all():
                if proc.code is not None and id(proc) not in reported:
                    reported.add(id(proc))
                    self._exited(proc)
            if not live:
                return
            now = time.monotonic()
            if self.presses > handled_presses:
                handled_presses = self.presses
                if self.stop_reason in (None, "failure") and handled_presses == 1:
                    self._stop("interrupt", signal.SIGINT)
                else:
                    self.log.say("interrupted again: stopping every node now")
                    self.stop_reason = self.stop_reason or "interrupt"
                    self.forced = True
                    self._stop_all(signal.SIGTERM)
            if self.sigterms > handled_terms:
                handled_terms = self.sigterms
                if self.stop_reason in (None, "failure") and handled_terms == 1:
                    self._stop("terminate", signal.SIGTERM)
                else:
                    self.forced = True
                    self._stop_all(signal.SIGTERM)
            if self.term_at is None and self.stop_at is not None and now >= self.stop_at:
                names = ", ".join(p.name for p in live)
                self.log.say(f"still running {self.grace:g} s after the stop: {names}; SIGTERM")
                self._stop_all(signal.SIGTERM)
            if self.kill_at is not None and now >= self.kill_at:
                self.log.say("SIGKILL: " + ", ".join(p.name for p in live))
                for proc in live:
                    proc.signal(signal.SIGKILL)
                self.kill_at = float("inf")
            if self.want_stats or (next_stats is not None and now >= next_stats):
                self.want_stats = False
                self.log.line("vflow graph: " + self.stats.report())
                if next_stats is not None:
                    next_stats = now + (self.stats_every or 1)
            time.sleep(POLL)

    def _stop(self, reason: str, signum: int) -> None:
        """Producers stop; the rest drains; after `grace` seconds, SIGTERM."""
        first = self.stop_reason is None
        self.stop_reason = reason if self.stop_reason in (None, "failure") else self.stop_reason
        if reason == "interrupt":
            self.log.info("interrupted: stopping the producers; the rest drains")
        elif reason == "terminate":
            self.log.info("terminated: stopping the producers; the rest drains")
        for proc in self.launch.all():
            if proc.node.kind == "producer" or (reason == "interrupt" and _waits(proc)):
                proc.signal(signum)
        if first or self.stop_at is None:
            self.stop_at = time.monotonic() + self.grace

    def _stop_all(self, signum: int) -> None:
        for proc in self.launch.all():
            proc.signal(signum)
        if signum != signal.SIGKILL and self.term_at is None:
            self.term_at = time.monotonic()
            self.kill_at = self.term_at + KILL_AFTER

    def ok(self, proc: Proc) -> bool:
        """Ended as a node should: done, its reader left first (141: no crash), or stopped
        by us (SIGINT or SIGTERM, or SIGKILL after the grace, which is reported when sent)."""
        return proc.code in CLEAN or (proc.signalled and proc.code in STOPPED)

    def _exited(self, proc: Proc) -> None:
        assert proc.code is not None
        if self.ok(proc):
            self.log.info(f"{proc.name}: {describe(proc.code)}")
            return
        if proc.stderr_thread is not None:
            proc.stderr_thread.join(timeout=1)  # its last words first
        if self.forced:
            # stopped all at once, a node may see its input cut mid-packet: that is the
            # stop the user asked for, not a failure of the graph
            self.log.info(f"{proc.name}: {describe(proc.code)} (stopped at once)")
            return
        if proc.node.optional:
            self.optional_failed.add(proc.node.name)
            self.log.say(
                f"node '{proc.name}' ({proc.node.label}) failed: {describe(proc.code)}; "
                "it is optional: the rest goes on"
            )
            for text in proc.tail:
                self.log.say(f"  {proc.name}| {text}")
            return
        cause = self._optional_upstream(proc.node.name)
        if cause is not None:  # its input was cut by an optional node's failure: no news
            self.log.info(
                f"{proc.name}: {describe(proc.code)} (its input came through '{cause}', an "
                "optional node that failed)"
            )
            return
        cause = self._stopped_upstream(proc.node.name)
        if cause is not None:  # Ctrl-C stopped a producer before it wrote a packet
            self.log.info(
                f"{proc.name}: {describe(proc.code)} (its input was cut when '{cause}' was stopped)"
            )
            return
        self.failures.append(proc)
        policy = self.spec.on_failure
        action = (
            "stopping the graph"
            if policy == "stop"
            else 'the rest goes on (on_failure = "continue")'
        )
        if self.stop_reason not in (None, "failure") or self.term_at is not None:
            action = "while stopping"
        self.log.say(
            f"node '{proc.name}' ({proc.node.label}) failed: {describe(proc.code)}; {action}"
        )
        for text in proc.tail:
            self.log.say(f"  {proc.name}| {text}")
        if policy == "stop" and self.stop_reason is None:
            # as if interrupted: the producers stop and everything else drains
            self.stop_reason = "failure"
            self._stop("failure", signal.SIGINT)

    def _stopped_upstream(self, name: str) -> str | None:
        """When the user stopped the graph: a node this node's input comes through that the
        stop ended, if any (stopped as it started, it may have written nothing at all)."""
        if self.stop_reason not in ("interrupt", "terminate"):
            return None
        return self._upstream(
            name, lambda source: any(p.code in STOPPED for p in self.launch.procs[source])
        )

    def _optional_upstream(self, name: str) -> str | None:
        """A failed optional node this node's input comes through, if any."""
        return self._upstream(
            name,
            lambda source: (
                source in self.optional_failed
                or (
                    self.spec.nodes[source].optional
                    and any(
                        p.poll() is not None and not self.ok(p) for p in self.launch.procs[source]
                    )
                )
            ),  # failed, whether or not the watch loop has reported it yet
        )

    def _upstream(self, name: str, found: Callable[[str], bool]) -> str | None:
        """The first node this node's input comes through (at any distance) that is found."""
        todo, seen = list(self.spec.nodes[name].inputs), set()
        while todo:
            source = todo.pop()
            if found(source):
                return source
            if source not in seen:
                seen.add(source)
                todo.extend(self.spec.nodes[source].inputs)
        return None

    def _finish(self) -> int:
        failed = bool(self.failures)
        for edge in self.launch.edges:
            if edge.dropped:
                self.log.say(
                    f"edge {edge.src} -> {edge.dst}: dropped {edge.dropped} of {edge.received} "
                    f'packets (leaky = "{edge.leaky}", size {edge.size})'
                )
        for name, zipper in self.launch.zips.items():
            if zipper.unmatched:
                self.log.say(
                    f"node '{name}': {zipper.unmatched} unmatched packets dropped by the zip join"
                )
        if self.log.verbosity >= 1:
            for line in self.stats.bottleneck():
                self.log.line("vflow graph: " + line)
        if self.log.verbosity >= 1 or failed:
            self.log.line("vflow graph: " + self.stats.report())
            usage = resource.getrusage(resource.RUSAGE_SELF)
            peak = usage.ru_maxrss  # KiB on Linux
            cpu = usage.ru_utime + usage.ru_stime
            summary = ", ".join(
                f"{p.name} {describe(p.code) if p.code is not None else '?'}"
                for p in self.launch.all()
            )
            self.log.line(
                f"vflow graph: done in {time.monotonic() - self.started:.2f} s: {summary}; "
                f"runner peak memory {peak / 1024:.1f} MiB, CPU {cpu:.2f} s"
            )
        if failed:
            first = self.failures[0]
            assert first.code is not None
            code = shell_code(first.code)
            ends = (Exit.OK, Exit.INTERRUPTED, Exit.DOWNSTREAM_CLOSED, Exit.TERMINATED)
            return code if code not in ends else Exit.ERROR
        if self.stop_reason == "interrupt":
            return Exit.INTERRUPTED
        if self.stop_reason == "terminate":
            return Exit.TERMINATED
        return Exit.OK


def _waits(proc: Proc) -> bool:
    """A vflow stage that goes on past the end of its input until Ctrl-C (--wait); it
    drains on SIGINT like any stage, then ends."""
    argv = proc.node.argv
    return argv[1:3] == ["-m", "vflow_cli"] and "--wait" in argv[4:]
