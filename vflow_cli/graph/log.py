"""graph.log: lines for people on stderr, one writer at a time, each naming the graph."""

from __future__ import annotations

import sys
import threading


class Log:
    """Lines for people on stderr, one writer at a time."""

    def __init__(self, verbosity: int) -> None:
        self.verbosity = verbosity
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            try:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def say(self, text: str) -> None:
        if self.verbosity >= 0:
            self.line(f"vflow graph: {text}")

    def info(self, text: str) -> None:
        if self.verbosity >= 1:
            self.line(f"vflow graph: {text}")
