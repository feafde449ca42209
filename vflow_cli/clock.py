"""clock: pacing for producers that run in real time (`--fps`, `--interval`)."""

from __future__ import annotations

import math
import time

from vflow_cli import runner


def timecode(t: object) -> str:
    """Media seconds as HH:MM:SS.mmm; '-' for a packet without a time."""
    if not isinstance(t, (int, float)) or not math.isfinite(t):
        return "-"
    minutes, seconds = divmod(float(t), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:06.3f}"


class Ticker:
    """Wait for evenly spaced ticks; a late tick is not made up for with a burst."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._next = time.monotonic()

    def wait(self) -> None:
        now = time.monotonic()
        if self._next > now:
            # what is already produced leaves before we sleep (and the sleep is no work)
            runner.before_sleep(self._next - now)
            time.sleep(self._next - now)
        elif now - self._next > self.period:
            self._next = now  # more than a tick late: start again from now
        self._next += self.period
