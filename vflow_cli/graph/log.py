"""graph.log: what the graph runner tells people on stderr: its own lines through the console's
log (each naming `vflow graph`, -q and -v as for every command), and its nodes' lines passed on
whole, one writer at a time."""

from __future__ import annotations

import sys
import threading

from vflow_cli.console import configure_logging, log


class Log:
    """The runner's lines (say: shown unless -q; info: with -v) and its nodes' (line)."""

    def __init__(self, verbosity: int) -> None:
        self.verbosity = verbosity
        self._lock = threading.Lock()
        configure_logging(verbosity, "vflow graph")

    def line(self, text: str) -> None:
        """A line as it is (a node's stderr, prefixed with the node's name)."""
        with self._lock:
            try:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def say(self, text: str) -> None:
        log.warning("%s", text)

    def info(self, text: str) -> None:
        log.info("%s", text)
