"""errors: the exception every layer may raise for a problem the user can fix.

The ground floor: it imports nothing of vflow, so vision/, web/ and net/ raise it without
importing the runner; the runner prints it as one line naming the stage (exit 1).
"""

from __future__ import annotations


class StageError(Exception):
    """A problem the user can fix: "what went wrong; what to try". Printed as one line."""
